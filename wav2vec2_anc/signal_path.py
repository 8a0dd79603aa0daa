"""The waveform path of the model: causal FIR filtering, block windows, glides and the safety gains.

All functions are pure tensor maps; shapes are in their docstrings, times in samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def waveform_dtype(device: torch.device, latency: int) -> torch.dtype:
    """The waveform path's precision: float64 at zero latency, float32 otherwise (and on Apple's MPS, which lacks float64).

    At zero latency the anti-noise is ``−x`` itself; float32 FFTs would leave rounding noise in it where the
    closed form (``fit_wiener_predictor``) is exact. With any latency the prediction's own error is far above
    float32's rounding, and a GPU like Colab's T4 runs float64 at 1/32 of its float32 rate.
    """
    if torch.device(device).type == "mps" or latency > 0:
        return torch.float32
    return torch.float64


def clipped_gain(x_windows: torch.Tensor, y_windows: torch.Tensor) -> torch.Tensor:
    """The gain in [0, 1] that would have minimised the residual ``x + g·y`` over each window.

    Args:
        x_windows, y_windows: input and anti-noise, shape ``(..., window)``.

    Returns:
        shape ``(...)``: ``clip(−Σxy / Σy², 0, 1)``; 0 where the anti-noise was silent.
    """
    power = (y_windows * y_windows).sum(-1)
    return least_squares_gain((x_windows * y_windows).sum(-1), power).clamp(0.0, 1.0)


def least_squares_gain(cross: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """``−cross / power``: the gain minimising ``Σ(x + g·y)²``, from ``cross = Σxy`` and ``power = Σy²``; 0 where y is silent."""
    return torch.where(power > 0, -cross / power.clamp_min(1e-30), torch.zeros_like(power))


def safety_gains(
    x_windows: torch.Tensor, shared_windows: torch.Tensor, correction_windows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """"Do no harm", judged on the last window: how much to trust the encoder's correction, then the whole output.

    The correction is kept only as far as it cancelled what the shared filter left
    (``clipped_gain(x + shared, correction)``); the mixed output only as far as it cancelled ``x``.

    Args:
        x_windows, shared_windows, correction_windows: the input and the two parts of the raw
            anti-noise (``filter_parts``) over each block's past window, shape ``(..., window)``.

    Returns:
        ``(correction_gain, output_gain)``, each shape ``(...)`` in [0, 1].
    """
    correction_gain = clipped_gain(x_windows + shared_windows, correction_windows)
    mixed = shared_windows + correction_gain[..., None] * correction_windows
    return correction_gain, clipped_gain(x_windows, mixed)


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


def guard_gains(x: torch.Tensor, shared: torch.Tensor, correction: torch.Tensor, ends: torch.Tensor, window: int
                ) -> torch.Tensor:
    """The two safety gains (``safety_gains``) of the blocks whose past windows end at ``ends`` (``window_ends``).

    Args:
        x, shared, correction: the input and the two raw parts of its anti-noise, shape ``(batch, samples)``.
        ends: shape ``(blocks,)``.
        window: the safety window, samples.

    Returns:
        shape ``(batch, blocks, 2)``: the correction's gain, then the output's, each in [0, 1].
    """
    correction_gain, output_gain = safety_gains(*(past_windows(signal, ends, window) for signal in (x, shared, correction)))
    return torch.stack([correction_gain, output_gain], -1)
