"""The waveform path of the model: causal FIR filtering, block windows, glides and the safety gains.

All functions are pure tensor maps; shapes are in their docstrings, times in samples.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


def waveform_dtype(device: torch.device) -> torch.dtype:
    """float64 for the waveform path where the device has it (not Apple's MPS).

    At zero latency the anti-noise is ``−x`` itself; float32 FFTs would leave rounding noise in it
    where the closed form (``fit_wiener_predictor``) is exact.
    """
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


# The parts of a safety window (or memory) whose sums estimate the gain's standard error (batch means). Each
# part of a 25-ms window is 50 samples (3 ms): longer than a broadband noise's correlation, shorter than a
# hum's or brown noise's, where σ comes out low and the test lenient, which errs towards keeping a gain.
SAFETY_BATCHES = 8


def clipped_gain(x_windows: torch.Tensor, y_windows: torch.Tensor, confidence: float = 0.0) -> torch.Tensor:
    """The gain in [0, 1] that would have minimised the residual ``x + g·y`` over each window.

    With ``confidence`` z > 0 the gain is kept only where it is significant, ``ĝ > z·σ``, and is 0
    elsewhere: σ is the standard error of ``ĝ`` from ``SAFETY_BATCHES`` batch means of ``(x + ĝ·y)·y``.
    On noise nothing predicts, ``ĝ`` scatters around 0 and the plain clip keeps its positive half, a
    small gain that only adds noise; the test turns most of those off and leaves a gain estimated
    with confidence (a working prediction, ``ĝ ≈ 1`` with a small σ) exactly as it was.

    Args:
        x_windows, y_windows: input and anti-noise, shape ``(..., window)``.
        confidence: z, in standard errors; 0 is the plain clipped gain.

    Returns:
        shape ``(...)``: ``clip(−Σxy / Σy², 0, 1)``, zeroed where not significant; 0 where the anti-noise was silent.
    """
    power = (y_windows * y_windows).sum(-1)
    gain = least_squares_gain((x_windows * y_windows).sum(-1), power)
    if confidence > 0:
        gain = torch.where(gain > confidence * gain_standard_error(x_windows, y_windows, gain), gain, torch.zeros_like(gain))
    return gain.clamp(0.0, 1.0)


def least_squares_gain(cross: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """``−cross / power``: the gain minimising ``Σ(x + g·y)²``, from ``cross = Σxy`` and ``power = Σy²``; 0 where y is silent."""
    return torch.where(power > 0, -cross / power.clamp_min(1e-30), torch.zeros_like(power))


def gain_standard_error(x_windows: torch.Tensor, y_windows: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """The standard error of the least-squares gain ``ĝ`` of each window, by batch means.

    The window is cut into ``SAFETY_BATCHES`` consecutive parts (as equal as the length allows);
    ``cⱼ = Σ (x + ĝ·y)·y`` over part j, which sum to 0 at ``ĝ``, and ``σ = √(B/(B−1)·Σⱼ cⱼ²) / Σy²``
    (B parts), which holds for correlated samples as long as a part outlasts their correlation.

    Args:
        x_windows, y_windows: shape ``(..., window)``, window ≥ 2·``SAFETY_BATCHES`` samples.
        gain: ``ĝ``, shape ``(...)``.

    Returns:
        σ, shape ``(...)``.

    Raises:
        ValueError: a window too short to cut into parts of two samples or more.
    """
    batches = SAFETY_BATCHES
    if x_windows.shape[-1] < 2 * batches:
        raise ValueError(f"a safety window of {x_windows.shape[-1]} samples is too short for the significance "
                         f"test: it needs at least {2 * batches}")
    products = (x_windows + gain[..., None] * y_windows) * y_windows
    sums = torch.stack([part.sum(-1) for part in torch.tensor_split(products, batches, dim=-1)], -1)
    return batch_means_error(sums, (y_windows * y_windows).sum(-1))


def batch_means_error(part_sums: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """``σ = √(B/(B−1)·Σⱼ cⱼ²) / Σy²``: a least-squares gain's standard error from its B parts' ``cⱼ = Σ (x + ĝ·y)·y``.

    Args:
        part_sums: the ``cⱼ``, shape ``(..., B)``.
        power: ``Σy²`` over the whole window, shape ``(...)``.
    """
    batches = part_sums.shape[-1]
    return torch.sqrt((part_sums * part_sums).sum(-1) * batches / (batches - 1)) / power.clamp_min(1e-30)


def safety_gains(
    x_windows: torch.Tensor, shared_windows: torch.Tensor, correction_windows: torch.Tensor, confidence: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """"Do no harm", judged on the last window: how much to trust the encoder's correction, then the whole output.

    The correction is kept only as far as it cancelled what the shared filter left
    (``clipped_gain(x + shared, correction)``); the mixed output only as far as it cancelled ``x``.

    Args:
        x_windows, shared_windows, correction_windows: the input and the two parts of the raw
            anti-noise (``filter_parts``) over each block's past window, shape ``(..., window)``.
        confidence: ``clipped_gain``'s z, for both gains.

    Returns:
        ``(correction_gain, output_gain)``, each shape ``(...)`` in [0, 1].
    """
    correction_gain = clipped_gain(x_windows + shared_windows, correction_windows, confidence)
    mixed = shared_windows + correction_gain[..., None] * correction_windows
    return correction_gain, clipped_gain(x_windows, mixed, confidence)


class GainSums(NamedTuple):
    """``Σx²``, ``Σxy`` and ``Σy²`` of an input x and an anti-noise y over windows: all that a gain's residual needs.

    Each field has the windows' shape ``(...)``.
    """

    input_power: torch.Tensor
    cross: torch.Tensor
    power: torch.Tensor

    @classmethod
    def of_windows(cls, x_windows: torch.Tensor, y_windows: torch.Tensor) -> GainSums:
        """The sums of windows of x and y, shape ``(..., window)`` each."""
        return cls((x_windows * x_windows).sum(-1), (x_windows * y_windows).sum(-1), (y_windows * y_windows).sum(-1))

    def residual_ratio(self, gain: torch.Tensor) -> torch.Tensor:
        """``Σ(x + g·y)² / Σx²`` for the gain g of each window; 1 where the input is silent."""
        residual = self.input_power + 2 * gain * self.cross + gain * gain * self.power
        return torch.where(self.input_power > 0, residual / self.input_power.clamp_min(1e-30), torch.ones_like(residual))


# Where the anti-noise over the newest safety window left a residual this far below the input (the one
# that played, or the block's own filter's), the prediction works and its gain is kept as it is; elsewhere a
# safety memory bounds it (remembered_output_gain). Chosen on the switching benchmark's trained 5-ms models
# (exploratory, benchmarks/README.md): at 3 dB chance let the rock slide's outputs through, at 6 dB not.
WORKING_PREDICTION_DB = 6.0
# The memory's lower bound on g*, in standard errors (batch means over SAFETY_BATCHES parts of the memory).
MEMORY_CONFIDENCE = 2.0


def remembered_output_gain(
    output_gain: torch.Tensor, mixed: GainSums, own_newest: GainSums, own_memory: GainSums
) -> torch.Tensor:
    """The output gain with a safety memory: kept where the prediction works, else held to a cautious share of the memory's.

    Applying a gain g to an output y whose best gain is g* changes the residual's energy by
    ``Σy²·(g² − 2g·g*)``: it cancels for any g in (0, 2g*) and amplifies beyond. On noise that is
    barely predictable the newest window's gain (``safety_gains``) is mostly chance, so a gain kept on
    it adds noise. The block's own filter judged over a long past (``own_filter_sums``) estimates g*
    as ĝ with far less scatter, and two gains derived from it stay below 2g*: half of ĝ, while ĝ is within
    ±100 % of g* (it keeps three quarters of what g* cancels), and ``ĝ − MEMORY_CONFIDENCE·σ``, below g*
    itself with about 96 % confidence (σ its standard error by batch means over the memory's parts, as
    ``gain_standard_error``: a t with 7 degrees of freedom; less where the parts correlate). The output's
    gain is held to the larger of the two: where ĝ is well measured, the bound is close to it. Neither
    is a guarantee on noise that changes within the memory. Where the newest window's residual is ``WORKING_PREDICTION_DB``
    or more below its input, for the raw anti-noise at its output gain or for the block's own filter at its best
    gain there, g* is not in doubt and the short window's gain stands: the long window holds the old
    noise for a while after a change, and the block's own filter on the newest window lets a new
    noise's filter through as soon as it works.

    Args:
        output_gain: ``safety_gains``' output gain, shape ``(...)``.
        mixed: the raw anti-noise over each block's newest safety window, after the correction's gain.
        own_newest: the block's own filter over that window, each field shape ``(...)``.
        own_memory: the same filter over the consecutive parts of its memory, each field shape ``(..., parts)``.

    Returns:
        shape ``(...)``, in [0, 1].
    """
    own_gain = least_squares_gain(own_newest.cross, own_newest.power).clamp(0.0, 1.0)
    threshold = 10 ** (-WORKING_PREDICTION_DB / 10)
    working = (mixed.residual_ratio(output_gain) <= threshold) | (own_newest.residual_ratio(own_gain) <= threshold)
    memory = GainSums(*(field.sum(-1) for field in own_memory))
    estimate = least_squares_gain(memory.cross, memory.power)
    error = batch_means_error(own_memory.cross + estimate[..., None] * own_memory.power, memory.power)
    bound = torch.maximum(estimate.clamp(0.0, 1.0) / 2, (estimate - MEMORY_CONFIDENCE * error).clamp(0.0, 1.0))
    return torch.where(working, output_gain, torch.minimum(output_gain, bound))


def windowed_sums(products: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """Sums of ``products`` over ``[start, end)`` for each pair of ``starts`` and ``ends`` (zeros outside the signal).

    One cumulative sum serves every window, however long the windows and however many. In float32 (Apple's
    MPS) the difference of two long running sums keeps fewer digits than a direct sum would.

    Args:
        products: shape ``(..., samples)``.
        starts, ends: integer, any one shape ``W`` (on ``products``' device).

    Returns:
        shape ``(..., *W)``.
    """
    total = F.pad(products.cumsum(-1), (1, 0))
    samples = products.shape[-1]
    return total[..., ends.clamp(0, samples)] - total[..., starts.clamp(0, samples)]


def own_filter_sums(
    x: torch.Tensor, outputs: torch.Tensor, weights: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor
) -> GainSums:
    """Each block's own filter judged over windows of its past, ``[start, end)``.

    Block b's filter is ``Σⱼ weights[b, j]·filterⱼ``; run over that past, its output is
    ``y = Σⱼ weights[b, j]·outputs[j]``. Unlike ``safety_gains``, which judge the outputs that actually
    played, this judges the filter about to play, so a mix that changed at this block (a new noise, or
    chance) is judged as it is now.

    Args:
        x: the input, shape ``(batch, samples)``, from its start or a buffer holding the ``D + taps − 1``
            samples before the earliest start.
        outputs: each filter's output over the same samples (``causal_fir``), shape ``(batch, filters, samples)``.
        weights: each block's filter, shape ``(batch, blocks, filters)``.
        starts, ends: shape ``(blocks, windows)``, integer: the windows each block's filter is judged on.

    Returns:
        ``GainSums`` of x and y, each shape ``(batch, blocks, windows)``.
    """
    filters = outputs.shape[1]
    starts, ends = starts.to(x.device), ends.to(x.device)
    weights = weights[:, :, None]  # (batch, blocks, 1, filters): the same filter on each of a block's windows
    # Σxy and Σy² are linear and quadratic in the weights: one windowed sum per filter and per pair.
    cross = (windowed_sums(x[:, None] * outputs, starts, ends).movedim(1, -1) * weights).sum(-1)
    power = torch.zeros_like(cross)
    for j in range(filters):
        for k in range(j, filters):
            pair = windowed_sums(outputs[:, j] * outputs[:, k], starts, ends)
            power = power + (1 if j == k else 2) * weights[..., j] * weights[..., k] * pair
    return GainSums(windowed_sums(x * x, starts, ends), cross, power)


def mix_parts(
    shared: torch.Tensor, correction: torch.Tensor, correction_gain: torch.Tensor, output_gain: torch.Tensor
) -> torch.Tensor:
    """The anti-noise after the safety gains; all arguments per sample, same shape."""
    return output_gain * (shared + correction_gain * correction)


def causal_fir(x: torch.Tensor, kernels: torch.Tensor, delay: int = 0) -> torch.Tensor:
    """Filter ``x`` with several FIR kernels, delayed: ``out[b, c, n] = Σₖ kernels[c, k]·x[b, n − delay − k]``.

    Uses FFTs sized for linear (not circular) convolution, so long kernels stay cheap. The first tap
    is applied directly: FFT rounding, scaled to the loudest samples, would otherwise leak onto quiet
    passages, and a pure gain-and-delay filter (exact negation above all) stays bit-exact.

    Args:
        x: shape ``(batch, samples)``.
        kernels: shape ``(channels, K)``.

    Returns:
        shape ``(batch, channels, samples)``, in the wider of the two dtypes (at least float32); zero
        input is assumed before the start.
    """
    samples, taps = x.shape[-1], kernels.shape[-1]
    dtype = torch.promote_types(torch.promote_types(x.dtype, kernels.dtype), torch.float32)
    x, kernels = x.to(dtype), kernels.to(dtype)
    delayed = F.pad(x, (delay, 0))[:, None, :samples]
    direct = kernels[None, :, :1] * delayed
    if taps == 1:
        return direct
    size = 1 << (samples + delay + taps - 1).bit_length()
    spectrum = torch.fft.rfft(x, size)[:, None] * torch.fft.rfft(F.pad(kernels[:, 1:], (delay + 1, 0)), size)
    return direct + torch.fft.irfft(spectrum, size)[..., :samples]


def past_windows(x: torch.Tensor, ends: torch.Tensor, length: int) -> torch.Tensor:
    """Windows of ``x`` of ``length`` samples ending just before each of ``ends``, zeros before the start.

    Args:
        x: shape ``(batch, samples)``.
        ends: shape ``(windows,)``, integer: window ``j`` is ``x[:, ends[j] − length : ends[j]]``.

    Returns:
        shape ``(batch, windows, length)``.
    """
    lead = max(0, -int(ends.min())) if len(ends) else 0
    padded = F.pad(x, (length + lead, 0))  # x[i] is padded[i + length + lead]
    return padded[:, ends.to(x.device)[:, None] + lead + torch.arange(length, device=x.device)]


def window_ends(blocks: torch.Tensor, block: int, delay: int, offset: int = 0) -> torch.Tensor:
    """Where each block's past window ends (exclusive): one past ``b·block − delay``, less ``offset``.

    Args:
        blocks: block indices, shape ``(windows,)``.
        offset: the absolute sample index of the signal's first sample (a stream's buffer).
    """
    return blocks * block - delay + 1 - offset


def block_ends(samples: int, block: int, delay: int) -> torch.Tensor:
    """Where the past each block's filter is computed from ends, for a signal of ``samples``.

    Block ``b`` covers samples ``[b·block, (b+1)·block)``; its past ends at ``b·block − delay``
    inclusive (``window_ends``), so the filter of every sample ``n`` in the block depends only on
    ``x[m]`` with ``m ≤ n − delay``. ``past_windows(x, block_ends(…), context)`` are the encoder's windows.

    Returns:
        shape ``(blocks,)``, integer, with ``blocks = ceil(samples / block)``.
    """
    return window_ends(torch.arange(-(-samples // block)), block, delay)


def ramp_blocks(per_block: torch.Tensor, block: int, samples: int) -> torch.Tensor:
    """Per-sample values: across block ``b`` they glide from block ``b−1``'s to block ``b``'s.

    The glide avoids clicks at block edges and stays causal (it never looks at block ``b+1``);
    before the first block the first block's values hold.

    Args:
        per_block: shape ``(batch, blocks, channels)``.

    Returns:
        shape ``(batch, samples, channels)``.
    """
    before = torch.cat([per_block[:, :1], per_block[:, :-1]], dim=1)
    ramp = torch.arange(1, block + 1, device=per_block.device, dtype=per_block.dtype) / block
    glide = before[:, :, None] + (per_block - before)[:, :, None] * ramp[:, None]
    return glide.flatten(1, 2)[:, :samples]


# The floor of a filter's error power relative to its window's power (−60 dB): filters that both cancel
# more than that are equally right, and a silent window gives every filter the same evidence.
BANK_ERROR_FLOOR = 1e-6


def bank_error_logits(
    x: torch.Tensor, filters: torch.Tensor, delay: int, length: int, ends: torch.Tensor, heard: torch.Tensor | None = None
) -> torch.Tensor:
    """How well each filter of a bank cancelled the ``length`` samples before each of ``ends``: a fast noise classifier.

    Filter j's error is ``eⱼ[m] = x[m] + Σₖ hⱼ[k]·x[m−D−k]``, the residual it would have left at
    sample m, and its evidence is ``−log(mean eⱼ² / mean x² + BANK_ERROR_FLOOR)`` over
    ``[end − length, end)``. A canceller knows these errors up to that end, so they tell which noise
    is playing within ``length`` samples of a change, where an encoder needs its context to fill.
    In an acoustic scene the residual is at the ear: ``eⱼ[m] = d̂[m] + Σₖ (Ŝ∗hⱼ)[k]·x[m−D−k]``, with
    ``d̂`` the noise at the error microphone (``heard``) and ``filters`` already convolved with Ŝ.
    The errors of every end come from one filtering of the signal, which the windows share.

    The filtering runs over the whole signal at once, so its FFT rounding scales with the signal's loudest
    samples (about 110 dB down in float32); ``BANK_ERROR_FLOOR`` (60 dB down) is far above it.

    Args:
        x: the input, shape ``(batch, samples)``: from its start (zeros before it), or any stretch of it that
            holds the ``length + delay + taps − 1`` samples before the earliest end (a stream's buffer).
        filters: the bank, shape ``(filters, taps)``.
        delay: D, samples.
        length: the samples judged before each end.
        ends: shape ``(blocks,)``, integer, exclusive (``window_ends``'s, for instance).
        heard: the noise at the ear over the same samples, shape ``(batch, samples)``; None: the input is.

    Returns:
        shape ``(batch, blocks, filters)``, in the wider of the two dtypes (at least float32).
    """
    if not len(ends):
        return x.new_zeros(len(x), 0, filters.shape[0])
    heard = x if heard is None else heard
    # Samples more than the filters' reach before the earliest judged one, or after the last end, change nothing.
    first = max(0, int(ends.min()) - length - delay - filters.shape[-1] + 1)
    stop = max(first + 1, int(ends.max()))
    x, heard, ends = x[:, first:stop], heard[:, first:stop], ends - first
    dtype = torch.promote_types(torch.promote_types(x.dtype, filters.dtype), torch.float32)
    heard = heard.to(dtype)
    error = heard[:, None] + causal_fir(x, filters, delay)
    error_power = past_windows(error.pow(2).flatten(0, 1), ends, length).mean(-1)
    power = past_windows(heard.pow(2), ends, length).mean(-1)
    # A silent window is no evidence: every filter gets the same logit. A nearly silent one must not overflow the
    # ratio to inf in float32 either, or every logit would be −inf and the softmax's mix NaN.
    heard_power = power[:, None]
    audible = heard_power > 0
    relative = torch.where(audible, error_power.reshape(len(x), filters.shape[0], -1)
                           / torch.where(audible, heard_power, torch.ones_like(heard_power)), torch.zeros_like(heard_power))
    relative = relative.clamp(max=torch.finfo(dtype).max)
    return -torch.log(relative + BANK_ERROR_FLOOR).transpose(1, 2)


def filter_parts(outputs: torch.Tensor, gains: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two parts of the anti-noise: ``shared∗x_D`` and the encoder's correction ``Σⱼ gains[:, :, j]·(basisⱼ∗x_D)``.

    Args:
        outputs: the model's ``filter_outputs``', shape ``(batch, 1 + rank, samples)``.
        gains: shape ``(batch, samples, rank)``.

    Returns:
        ``(shared, correction)``, each shape ``(batch, samples)``, in ``outputs``' dtype.
    """
    return outputs[:, 0], (outputs[:, 1:] * gains.to(outputs.dtype).transpose(1, 2)).sum(1)


def guard_gains(x: torch.Tensor, shared: torch.Tensor, correction: torch.Tensor, ends: torch.Tensor, window: int,
                confidence: float = 0.0, memory: int = 0, outputs: torch.Tensor | None = None,
                basis_gains: torch.Tensor | None = None) -> torch.Tensor:
    """The two safety gains of the blocks whose past windows end at ``ends`` (``window_ends``), judged on ``window``.

    With a safety memory the output's gain is ``remembered_output_gain``'s: each block's own filter as the
    encoder chose it (the shared one plus its ``basis_gains`` of the basis) judged over the newest safety
    window and over the memory's parts (``judged_windows``). The choice is judged, not the correction's
    short-window gain: that gain is the kind of estimate the memory is there to doubt (judging the filter
    at that gain measured worse, benchmarks/README.md).

    Args:
        x, shared, correction: the input and the two raw parts of its anti-noise, shape ``(batch, samples)``.
        ends: shape ``(blocks,)``.
        window: the safety window, samples.
        confidence: the significance test's z (``clipped_gain``; 0 is off).
        memory: the safety memory, samples (0: none).
        outputs: the model's ``filter_outputs(x)``, shape ``(batch, 1 + rank, samples)``; needed with a safety memory.
        basis_gains: the blocks' basis gains (``block_gains``), shape ``(batch, blocks, rank)``; likewise.

    Returns:
        shape ``(batch, blocks, 2)``: the correction's gain, then the output's, each in [0, 1].
    """
    past = [past_windows(signal, ends, window) for signal in (x, shared, correction)]
    correction_gain, output_gain = safety_gains(*past, confidence)
    if memory:
        if outputs is None or basis_gains is None:
            raise ValueError("a safety memory judges each block's own filter: pass its filter outputs and basis gains")
        mixed = GainSums.of_windows(past[0], past[1] + correction_gain[..., None] * past[2])
        weights = torch.cat([torch.ones_like(basis_gains[..., :1]), basis_gains], -1).to(outputs.dtype)
        judged = own_filter_sums(x, outputs, weights, *judged_windows(ends, window, memory))
        own_memory, own_newest = (GainSums(*(field[..., part] for field in judged)) for part in (slice(-1), -1))
        output_gain = remembered_output_gain(output_gain, mixed, own_newest, own_memory)
    return torch.stack([correction_gain, output_gain], -1)


def judged_windows(ends: torch.Tensor, window: int, memory: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where a safety memory judges each block's own filter: the memory's ``SAFETY_BATCHES`` consecutive parts
    (for its gain's standard error), then the newest safety window.

    Args:
        ends: shape ``(blocks,)``, each block's past window's end (``window_ends``).
        window, memory: the safety window and the memory, samples.

    Returns:
        ``(starts, ends)``, each shape ``(blocks, SAFETY_BATCHES + 1)``.
    """
    part_length = memory // SAFETY_BATCHES
    part_ends = ends[:, None] - part_length * torch.arange(SAFETY_BATCHES - 1, -1, -1, device=ends.device)
    starts = torch.cat([part_ends - part_length, (ends - window)[:, None]], 1)
    return starts, torch.cat([part_ends, ends[:, None]], 1)
