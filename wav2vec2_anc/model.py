"""The model: a transformers ``Wav2Vec2PreTrainedModel`` whose head outputs the anti-noise waveform, causally."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import Wav2Vec2Config, Wav2Vec2Model, Wav2Vec2PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .audio_io import SAMPLE_RATE
from .baselines import fit_wiener_predictor
from .signal_path import (
    SAFETY_BATCHES,
    GainSums,
    bank_error_logits,
    block_ends,
    causal_fir,
    mix_parts,
    own_filter_sums,
    past_windows,
    ramp_blocks,
    remembered_output_gain,
    safety_gains,
    waveform_dtype,
)

# Randomly initialised encoders for offline runs and tests. "tiny" keeps the 320-sample
# (20 ms) frame hop of wav2vec2-base with a fraction of its compute; "base" is the
# architecture of facebook/wav2vec2-base-960h.
SCRATCH_CONFIGS = {
    "tiny": dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 8, 8),
        conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    ),
    "base": dict(),
}
# SpecAugment masking and layer drop were chosen for speech recognition; both corrupt a
# sample-exact regression target, so they are off for this task.
REGRESSION_OVERRIDES = dict(apply_spec_augment=False, mask_time_prob=0.0, layerdrop=0.0)
# Head defaults, stored in the model's config so a saved model knows its own timing.
HEAD_DEFAULTS = dict(
    filter_taps=512, latency_samples=0, block_samples=800, context_samples=4000, adaptive_rank=8,
    safety_window_samples=4000,
    # The safety gains' significance test, in standard errors (signal_path.clipped_gain): 0 is off, the
    # notebook's default with its 0.25-s window, and the switching benchmark's with its 10 ms (there it cost more
    # than it saved; the safety memory below guards those short windows instead).
    safety_confidence=0.0,
    # A safety memory (signal_path.remembered_output_gain): where the newest window shows no working prediction,
    # the block's own filter is judged over this many past samples too, and the output gain is held to a cautious
    # share of what it earned there. 0 is off, the notebook's default with its 0.25-s window; short windows (the switching
    # benchmark's 10 ms) need it on barely predictable noise.
    safety_memory_samples=0,
    # How many of the context's newest encoder frames the head pools (their mean): 0 pools them all. Fewer
    # frames hear a change of noise sooner; every frame still attends to the whole context.
    pooled_frames=0,
    # The plant the loss is taken through (an acoustic scene): None is today's task, the anti-noise
    # added straight to the input. secondary_path is the estimate Ŝ (a list of taps); loudspeaker_eta
    # the η of a saturating loudspeaker (SEF); output_stage_hidden the width of the learned pointwise
    # stage before it (0: none).
    secondary_path=None, loudspeaker_eta=None, output_stage_hidden=0,
    # False once validation showed the encoder's correction does not help (evaluation.gate_encoder_correction).
    encoder_correction=True,
    # True once the basis started at a bank of filters (start_filter_bank): the encoder then mixes them
    # with softmax weights, a classifier's output, instead of adding free multiples of each.
    filter_bank=False,
    # With a filter bank: the newest samples of each context on which the bank's filters' own errors join
    # the encoder's logits (signal_path.bank_error_logits); 0 is the encoder alone. In an acoustic scene
    # the errors are at the ear, judged on the noise the error microphone heard (``forward``'s ear_noise).
    bank_error_window_samples=0,
)
# Where the weight of the bank's errors in the mixing logits starts (it is learned): softmax weights ∝
# error power^−2. The switching suite's bank, picked by its errors alone on 10-ms blocks from the newest
# 10 ms (median segment NR, 1 / 5 ms latency): weights ∝ power^−1 20.5 / 18.4 dB, ^−2 20.6 / 18.5, ^−4
# 20.1 / 18.7, the single best filter switched at the block edge 21.6 / 16.4 (its worst segment −1.1 dB at
# 5 ms). Exploratory runs with the fitted bank, not a committed command.
BANK_ERROR_SHARPNESS = 2.0


def latency_samples(latency_ms: float) -> int:
    """Latency in ms → whole samples at 16 kHz: D = round(ms · 16)."""
    if latency_ms < 0:
        raise ValueError(f"latency must be ≥ 0 ms, got {latency_ms}")
    return int(round(latency_ms * SAMPLE_RATE / 1000))


def head_settings(latency_ms: float, block_ms: float, context_seconds: float, **others) -> dict:
    """The head's timing in samples from the notebook's units (ms, s): ``build_model(name, **head_settings(...))``.

    ``others`` (``filter_taps``, ``adaptive_rank``, …) pass through unchanged.
    """
    return dict(
        latency_samples=latency_samples(latency_ms),
        block_samples=latency_samples(block_ms),
        context_samples=int(context_seconds * SAMPLE_RATE),
        **others,
    )


# Width of the learned output stage in front of a saturating loudspeaker.
OUTPUT_STAGE_HIDDEN = 16


def plant_settings(plant) -> dict:
    """The head settings that train a model through an acoustic plant (``acoustics.Plant``): ``build_model(**…)``.

    None for today's task (the plant is the identity). In a scene the loss goes through what the system
    measured, never the true plant: the identified Ŝ and the loudspeaker's identified curve (``eta_estimate``);
    a loudspeaker found saturating gets a learned output stage, and the safety gains are off: they judge
    the output against the input, which is not what reaches the ear.
    """
    if plant is None or plant.is_identity:
        return {}
    settings = dict(secondary_path=[float(tap) for tap in plant.secondary_estimate], safety_window_samples=0)
    if plant.eta_estimate is not None:
        settings.update(loudspeaker_eta=float(plant.eta_estimate), output_stage_hidden=OUTPUT_STAGE_HIDDEN)
    return settings


def bank_settings(filter_bank: dict | None, bank_error_ms: float = 0.0, plant=None) -> dict:
    """The head settings for a model whose basis starts at ``filter_bank`` (``fit_filter_bank``'s): one basis filter each.

    Args:
        bank_error_ms: the newest ms of each context on which the bank's own errors join the encoder's
            logits (``bank_error_window_samples``). Without a scene they are judged on the input; in
            one, at the ear (the model then needs the error microphone's noise, ``forward``'s
            ``ear_noise``), which a saturating loudspeaker would make nonlinear in the drive: there
            they are left out.
    """
    if not filter_bank:
        return {}
    settings = {"adaptive_rank": len(filter_bank)}
    if bank_error_ms and (plant is None or plant.eta_estimate is None):
        settings["bank_error_window_samples"] = latency_samples(bank_error_ms)
    return settings


def bank_hears_the_ear(filter_bank: dict | None, bank_error_ms: float, plant) -> bool:
    """Whether a model of ``bank_settings(filter_bank, bank_error_ms, plant)`` in ``plant`` hears the error microphone.

    Such a model (``needs_ear_noise``) trains on pairs that carry the noise at the ear
    (``build_dataset(with_ear_noise=True)``) and runs in the scene's closed loop (``closed_loop_drive``).
    """
    settings = {**bank_settings(filter_bank, bank_error_ms, plant), **plant_settings(plant)}
    return hears_the_ear(settings.get("bank_error_window_samples", 0), bool(filter_bank), settings.get("secondary_path"))


def hears_the_ear(bank_error_window_samples: int, filter_bank: bool, secondary_path) -> bool:
    """The one rule for whether a model hears the error microphone: a bank judged by its errors, in an acoustic scene.

    Takes the head settings of those names (``HEAD_DEFAULTS``); ``secondary_path`` None is no scene.
    """
    return bool(bank_error_window_samples and filter_bank and secondary_path is not None)


def warmup_samples(
    filter_taps: int, latency_samples: int, block_samples: int, context_samples: int, safety_window_samples: int = 0,
    safety_memory_samples: int = 0, **_
) -> int:
    """Past samples the model needs before its first fully informed output, rounded up to whole blocks.

    Takes the ``HEAD_DEFAULTS`` settings by name: ``warmup_samples(**head)``.
    """
    # The first kept block glides from the previous block's filter, whose window must be inside too.
    need = block_samples + latency_samples + context_samples + filter_taps
    if safety_window_samples:
        # The safety gains judge raw outputs up to D before its block (gliding from the block before),
        # and each of those outputs needed the warm-up above.
        need += safety_window_samples + latency_samples + 2 * block_samples
    if safety_window_samples and safety_memory_samples:
        # The memory re-runs the previous block's filter over its window, which starts D + memory before
        # that block; the filter's output there reaches D + taps further back.
        need = max(need, 2 * block_samples + 2 * latency_samples + safety_memory_samples + filter_taps)
    return -(-need // block_samples) * block_samples


@dataclasses.dataclass
class NoiseCancellationOutput(ModelOutput):
    """Output of ``Wav2Vec2ForNoiseCancellation``.

    Attributes:
        loss: mean normalised squared error against ``labels``, scalar (only with labels).
        inverse: predicted anti-noise, shape ``(batch, samples)``, same length and scale as the input.
        block_filters: the control filter of each block, shape ``(batch, blocks, filter_taps)`` (for inspection).
    """

    loss: torch.Tensor | None = None
    inverse: torch.Tensor | None = None
    block_filters: torch.Tensor | None = None


class FIRFilterHead(nn.Module):
    """The control filter of each block: ``h_b = shared + basis @ (projection @ features_b)``.

    ``shared`` (``K`` taps) serves every block; the encoder steers ``rank`` filters of ``basis`` on top
    of it through ``projection``. ``shared`` and ``basis`` start at zero, so an untrained model outputs
    silence; a low rank keeps long filters cheap (one convolution per basis filter).
    """

    def __init__(self, hidden_size: int, filter_taps: int, rank: int, mixing: bool = False, bank_errors: bool = False):
        super().__init__()
        self.shared = nn.Parameter(torch.zeros(filter_taps))
        self.basis = nn.Parameter(torch.zeros(filter_taps, rank))
        self.projection = nn.Parameter(torch.zeros(rank, hidden_size))
        if bank_errors:
            self.error_sharpness = nn.Parameter(torch.tensor(BANK_ERROR_SHARPNESS))
        self.mixing = mixing

    @property
    def bank(self) -> torch.Tensor:
        """The filters the gains mix, ``shared + basisⱼ``, shape ``(rank, filter_taps)`` (with ``mixing``, the bank)."""
        return self.shared[None] + self.basis.T

    def gains(self, features: torch.Tensor, error_logits: torch.Tensor | None = None) -> torch.Tensor:
        """How much of each basis filter to add: ``(..., hidden)`` → ``(..., rank)``.

        Free multiples, or with ``mixing`` (a filter bank, basis ``bank[j] − shared``) softmax weights
        that sum to one, so the block's filter is a convex mix ``Σⱼ wⱼ·bank[j]``. ``error_logits``
        (``signal_path.bank_error_logits``, shape ``(..., rank)``), the bank's own recent errors,
        join the encoder's logits, scaled by the learned ``error_sharpness``.
        """
        logits = features @ self.projection.T
        if error_logits is not None:
            logits = logits + self.error_sharpness * error_logits.to(logits.dtype)
        return torch.softmax(logits, -1) if self.mixing else logits

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The filter taps themselves: ``(..., hidden)`` → ``(..., filter_taps)``."""
        return self.shared + self.gains(features) @ self.basis.T


class OutputStage(nn.Module):
    """A learned pointwise map of the drive before a saturating loudspeaker: ``y + η·MLP(y/η)``.

    It starts as the identity (the outer layer at zero) and can learn to pre-distort the drive so
    that the loudspeaker's output follows the linear anti-noise, which a linear filter cannot.
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.inner = nn.Linear(1, hidden)
        self.outer = nn.Linear(hidden, 1)

    def forward(self, drive: torch.Tensor, eta: float) -> torch.Tensor:
        """``drive``: any shape, any float dtype; the same shape back."""
        scaled = (drive / eta)[..., None]
        inner = torch.tanh(scaled * self.inner.weight[:, 0].to(drive.dtype) + self.inner.bias.to(drive.dtype))
        return drive + eta * (inner @ self.outer.weight[0].to(drive.dtype) + self.outer.bias.to(drive.dtype))


class Wav2Vec2ForNoiseCancellation(Wav2Vec2PreTrainedModel):
    """wav2vec2 encoder with a regression head that outputs the anti-noise waveform, causally.

    Every ``block_samples`` (50 ms by default) the encoder hears the last ``context_samples`` of
    input that are at least ``latency_samples`` (D) old, and the head turns its mean-pooled features
    into a FIR control filter. The filter runs sample by sample on the input delayed by D:
    ``y[n] = Σₖ hₙ[k]·x[n−D−k]``. At inference two safety gains, judged on the last
    ``safety_window_samples`` (``safety_gains``), scale each block: one keeps the encoder's correction
    only as far as it improved on the shared filter, the other keeps the output only as far as it
    cancelled, so a prediction that stops working is turned down instead of amplifying the noise. Every output
    sample depends only on ``x[m]`` with ``m ≤ n − D``, the output is sample-aligned and exactly as
    long as the input, and it is linear in the input's level (wav2vec2 normalises amplitude away; the
    level comes back through the waveform path). At D = 0 the filter can be ``[−1, 0, …]``: exact
    negation is within reach, as it should be.

    Config attributes beyond ``Wav2Vec2Config``: ``filter_taps``, ``latency_samples``,
    ``block_samples``, ``context_samples``, ``adaptive_rank``, ``safety_window_samples``,
    ``safety_confidence``, ``pooled_frames``, ``filter_bank``, ``bank_error_window_samples``, and for an acoustic scene
    ``secondary_path``, ``loudspeaker_eta``, ``output_stage_hidden``, and ``encoder_correction``
    (defaults in ``HEAD_DEFAULTS``).
    """

    # The loss is a mean over the batch, already right under DDP: the Trainer must not pass
    # num_items_in_batch, nor multiply the loss by the number of processes as it does for models
    # whose loss is a sum it normalises.
    accepts_loss_kwargs = False

    def __init__(self, config: Wav2Vec2Config):
        super().__init__(config)
        for name, value in HEAD_DEFAULTS.items():
            if not hasattr(config, name):
                setattr(config, name, value)
        if config.pooled_frames < 0:
            raise ValueError(f"pooled_frames must be ≥ 0 (0 pools every frame), got {config.pooled_frames}")
        self.wav2vec2 = Wav2Vec2Model(config)
        self._check_bank_errors(config)
        self._check_safety_memory(config)
        self.filter_head = FIRFilterHead(config.hidden_size, config.filter_taps, config.adaptive_rank, config.filter_bank,
                                         bank_errors=config.bank_error_window_samples > 0)
        if config.output_stage_hidden:
            self.output_stage = OutputStage(config.output_stage_hidden)
        self.post_init()

    @staticmethod
    def _check_safety_memory(config) -> None:
        """Refuse a safety memory too short to cut into its ``SAFETY_BATCHES`` parts of two samples or more."""
        memory = int(config.safety_memory_samples)
        if memory < 0 or 0 < memory < 2 * SAFETY_BATCHES:
            raise ValueError(f"safety_memory_samples must be 0 (off) or at least {2 * SAFETY_BATCHES}, got {memory}")

    @staticmethod
    def _check_bank_errors(config) -> None:
        """Refuse a bank-error window the model cannot judge: negative, too long for the context, or nonlinear."""
        window = int(config.bank_error_window_samples)
        if window < 0:
            raise ValueError(f"bank_error_window_samples must be ≥ 0 (0 is off), got {window}")
        if not window:
            return
        if config.loudspeaker_eta is not None:
            raise ValueError("bank_error_window_samples judges the bank's errors at the ear through a linear "
                             "loudspeaker: use it without loudspeaker_eta")
        # Within the context: a stream keeps the past the model needs (its warm-up, sized from the context), so
        # the errors it judges must lie inside it. In a scene the filters reach the ear through Ŝ, and the errors
        # end a sample earlier (bank_errors).
        in_scene = config.secondary_path is not None
        span = window + config.latency_samples + config.filter_taps - 1 + (len(config.secondary_path) if in_scene else 0)
        if config.context_samples < span:
            raise ValueError(f"bank_error_window_samples={window} needs context_samples ≥ {span} (the window, the "
                             f"latency, the filters' taps and in a scene Ŝ's), got {config.context_samples}")

    @property
    def filter_taps(self) -> int:
        return int(self.config.filter_taps)

    @property
    def latency(self) -> int:
        """D, in samples."""
        return int(self.config.latency_samples)

    @property
    def block(self) -> int:
        return int(self.config.block_samples)

    @property
    def context(self) -> int:
        return int(self.config.context_samples)

    @property
    def safety_window(self) -> int:
        """Samples of its own recent past the model judges its output by (0: no safety gains)."""
        return int(self.config.safety_window_samples)

    @property
    def safety_memory(self) -> int:
        """Samples over which each block's own filter is judged too (0: no safety memory)."""
        return int(self.config.safety_memory_samples) if self.safety_window else 0

    @property
    def warmup(self) -> int:
        """Past samples needed before the first fully informed output at inference (whole blocks)."""
        return warmup_samples(self.filter_taps, self.latency, self.block, self.context, self.safety_window,
                              self.safety_memory)

    @property
    def training_warmup(self) -> int:
        """Past samples each training pair carries: the safety gains are not used in training."""
        return warmup_samples(self.filter_taps, self.latency, self.block, self.context)

    @property
    def receptive_field(self) -> int:
        """Samples the feature encoder needs for one frame."""
        field = 1
        for kernel, stride in reversed(list(zip(self.config.conv_kernel, self.config.conv_stride))):
            field = (field - 1) * stride + kernel
        return field

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, FIRFilterHead):
            init.zeros_(module.shared)
            init.zeros_(module.basis)
            # Non-zero so the basis gets a gradient from the first step.
            init.normal_(module.projection, std=module.projection.shape[1] ** -0.5)
            if hasattr(module, "error_sharpness"):
                init.constant_(module.error_sharpness, BANK_ERROR_SHARPNESS)
        if isinstance(module, OutputStage):
            # Units spread over the drive's range (a few η), and an identity start.
            init.normal_(module.inner.weight, std=1.0)
            init.uniform_(module.inner.bias, -2.0, 2.0)
            init.zeros_(module.outer.weight)
            init.zeros_(module.outer.bias)

    def freeze_feature_encoder(self):
        """Stop gradient updates of the convolutional feature encoder."""
        self.wav2vec2.feature_extractor._freeze_parameters()

    def encoder_features(self, windows: torch.Tensor) -> torch.Tensor:
        """Mean-pooled encoder features of level-normalised windows: ``(n, samples)`` → ``(n, hidden)``.

        The mean is over every frame, or over the newest ``config.pooled_frames``.
        """
        # The processor of wav2vec2-base-960h normalises each input to zero mean, unit variance.
        mean = windows.mean(-1, keepdim=True)
        std = windows.std(-1, keepdim=True).clamp_min(1e-7)
        normalised = (windows - mean) / std
        shortfall = self.receptive_field - normalised.shape[-1]
        if shortfall > 0:
            normalised = F.pad(normalised, (0, shortfall))
        frames = self.wav2vec2(normalised).last_hidden_state
        newest = int(self.config.pooled_frames)
        return (frames[:, -newest:] if newest else frames).mean(1)

    @property
    def needs_ear_noise(self) -> bool:
        """Whether ``forward`` needs ``ear_noise``: a bank judged by its errors at the ear, in an acoustic scene."""
        config = self.config
        return hears_the_ear(config.bank_error_window_samples, config.filter_bank, config.secondary_path)

    def block_gains(self, signal: torch.Tensor, ends: torch.Tensor, use_encoder: bool = True,
                    ear_noise: torch.Tensor | None = None) -> torch.Tensor:
        """Basis-filter gains of the blocks whose past ends at ``ends``: ``(batch, samples)`` → ``(batch, blocks, rank)``.

        Args:
            signal: the input, shape ``(batch, samples)``: from its start (zeros before it), or a stream's
                buffer holding the model's warm-up before the earliest end.
            ends: shape ``(blocks,)``: each block's past ends just before it (``window_ends``); the encoder
                hears the ``context`` samples before it.
            ear_noise: the noise at the error microphone over the same samples (same shape as ``signal``),
                needed where ``needs_ear_noise``.
        """
        if not (use_encoder and self.config.encoder_correction):
            return signal.new_zeros(len(signal), len(ends), self.filter_head.projection.shape[0])
        windows = past_windows(signal, ends, self.context)
        batch, blocks, context = windows.shape
        features = self.encoder_features(windows.reshape(batch * blocks, context)).reshape(batch, blocks, -1)
        return self.filter_head.gains(features, self.bank_errors(signal, ends, ear_noise))

    def bank_errors(self, signal: torch.Tensor, ends: torch.Tensor, ear_noise: torch.Tensor | None = None
                    ) -> torch.Tensor | None:
        """The bank's own errors before each of ``ends`` (``bank_error_logits``), shape ``(batch, blocks, rank)``.

        None where they do not join the mix (no bank, or ``bank_error_window_samples`` 0).
        """
        head, window = self.filter_head, int(self.config.bank_error_window_samples)
        if not (window and head.mixing):
            return None
        if not self.needs_ear_noise:
            return bank_error_logits(signal, head.bank, self.latency, window, ends)
        if ear_noise is None:
            raise ValueError("this model judges its bank at the ear: pass the error microphone's noise "
                             "(ear_noise) with the input")
        # Not trained through (their weight, error_sharpness, is): in training the microphone hears P∗x, in
        # the loop also its own anti-noise, so the errors are evidence of the loop, not a function to fit;
        # and no gradient runs back through the bank's filtering. What the microphone hears at b·block − D holds the
        # anti-noise played then (at D = 0, the block's own): the errors end one sample before it.
        with torch.no_grad():
            return bank_error_logits(signal, self.bank_at_ear(head.bank), self.latency, window, ends - 1, ear_noise)

    def bank_at_ear(self, filters: torch.Tensor) -> torch.Tensor:
        """``Ŝ∗hⱼ``, each filter of the bank as it reaches the ear: ``(filters, taps)`` → ``(filters, taps + len(Ŝ) − 1)``."""
        estimate = torch.as_tensor(self.config.secondary_path, dtype=filters.dtype, device=filters.device)
        return causal_fir(F.pad(filters, (0, len(estimate) - 1)), estimate[None])[:, 0]

    def filter_outputs(self, input_values: torch.Tensor) -> torch.Tensor:
        """Each of the head's filters on the delayed input: ``shared∗x_D``, then every ``basisⱼ∗x_D``.

        Args:
            input_values: shape ``(batch, samples)``.

        Returns:
            shape ``(batch, 1 + rank, samples)``, in ``waveform_dtype``.
        """
        head = self.filter_head
        x = input_values.to(waveform_dtype(input_values.device))
        return causal_fir(x, torch.cat([head.shared[None], head.basis.T]), self.latency)

    @staticmethod
    def filter_parts(outputs: torch.Tensor, gains: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two parts of the anti-noise: ``shared∗x_D`` and the encoder's correction ``Σⱼ gains[:, :, j]·(basisⱼ∗x_D)``.

        Args:
            outputs: ``filter_outputs``', shape ``(batch, 1 + rank, samples)``.
            gains: shape ``(batch, samples, rank)``.

        Returns:
            ``(shared, correction)``, each shape ``(batch, samples)``, in ``outputs``' dtype.
        """
        return outputs[:, 0], (outputs[:, 1:] * gains.to(outputs.dtype).transpose(1, 2)).sum(1)

    def guard_gains(self, x: torch.Tensor, shared: torch.Tensor, correction: torch.Tensor, ends: torch.Tensor,
                    outputs: torch.Tensor | None = None, basis_gains: torch.Tensor | None = None) -> torch.Tensor:
        """The two safety gains of the blocks whose past windows end at ``ends`` (``window_ends``).

        With a safety memory the output's gain is ``remembered_output_gain``'s: each block's own filter as the
        encoder chose it (the shared one plus its ``basis_gains`` of the basis) judged over the newest safety
        window and over the memory's parts (``judged_windows``). The choice is judged, not the correction's
        short-window gain: that gain is the kind of estimate the memory is there to doubt (judging the filter
        at that gain measured worse, benchmarks/README.md).

        Args:
            x, shared, correction: the input and the two raw parts of its anti-noise, shape ``(batch, samples)``.
            ends: shape ``(blocks,)``.
            outputs: ``filter_outputs(x)``, shape ``(batch, 1 + rank, samples)``; needed with a safety memory.
            basis_gains: the blocks' basis gains (``block_gains``), shape ``(batch, blocks, rank)``; likewise.

        Returns:
            shape ``(batch, blocks, 2)``: the correction's gain, then the output's, each in [0, 1].
        """
        past = [past_windows(signal, ends, self.safety_window) for signal in (x, shared, correction)]
        correction_gain, output_gain = safety_gains(*past, float(self.config.safety_confidence))
        if self.safety_memory:
            if outputs is None or basis_gains is None:
                raise ValueError("a safety memory judges each block's own filter: pass its filter outputs and basis gains")
            mixed = GainSums.of_windows(past[0], past[1] + correction_gain[..., None] * past[2])
            weights = torch.cat([torch.ones_like(basis_gains[..., :1]), basis_gains], -1).to(outputs.dtype)
            judged = own_filter_sums(x, outputs, weights, *self.judged_windows(ends))
            own_memory, own_newest = (GainSums(*(field[..., part] for field in judged)) for part in (slice(-1), -1))
            output_gain = remembered_output_gain(output_gain, mixed, own_newest, own_memory)
        return torch.stack([correction_gain, output_gain], -1)

    def judged_windows(self, ends: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where a safety memory judges each block's own filter: the memory's ``SAFETY_BATCHES`` consecutive parts
        (for its gain's standard error), then the newest safety window.

        Args:
            ends: shape ``(blocks,)``, each block's past window's end (``window_ends``).

        Returns:
            ``(starts, ends)``, each shape ``(blocks, SAFETY_BATCHES + 1)``.
        """
        part_length = self.safety_memory // SAFETY_BATCHES
        part_ends = ends[:, None] - part_length * torch.arange(SAFETY_BATCHES - 1, -1, -1, device=ends.device)
        starts = torch.cat([part_ends - part_length, (ends - self.safety_window)[:, None]], 1)
        return starts, torch.cat([part_ends, ends[:, None]], 1)

    def forward(
        self, input_values: torch.Tensor, labels: torch.Tensor | None = None, use_encoder: bool = True,
        ear_noise: torch.Tensor | None = None,
    ) -> NoiseCancellationOutput:
        """Predict the anti-noise of ``input_values``.

        Args:
            input_values: noisy waveform, shape ``(batch, samples)``, any level.
            labels: target anti-noise for the *last* ``labels.shape[-1]`` samples (the earlier ones are
                warm-up context), shape ``(batch, ≤ samples)``; gives ``loss`` when set. In an acoustic
                scene the target is at the ear (−P∗x), and the loss is taken on ``through_plant`` of the
                output, the drive.
            use_encoder: ``False`` zeroes the encoder's features, leaving the shared filter alone;
                the benchmark uses it to show what the encoder adds.
            ear_noise: the noise the error microphone heard over the same samples, shape ``(batch, samples)``:
                ``d̂ = e − Ŝ∗y``, the residual less the model's own anti-noise; in training ``P∗x``.
                Needed where ``needs_ear_noise``; block b reads it only before ``b·block − D``.
        """
        samples = input_values.shape[-1]
        ends = block_ends(samples, self.block, self.latency)
        gains = self.block_gains(input_values, ends, use_encoder, ear_noise)
        x = input_values.to(waveform_dtype(input_values.device))
        outputs = self.filter_outputs(x)
        shared, correction = self.filter_parts(outputs, ramp_blocks(gains, self.block, samples))
        if not self.training and self.safety_window:
            # A deployment safeguard, not trained through: an untrained head (silent) would get no gradient.
            per_sample = ramp_blocks(self.guard_gains(x, shared, correction, ends, outputs, gains), self.block, samples)
            inverse = mix_parts(shared, correction, per_sample[..., 0], per_sample[..., 1])
        else:
            inverse = shared + correction
        inverse = self.shape_drive(inverse)
        loss = None
        if labels is not None:
            at_ear = self.through_plant(inverse)
            loss = normalised_mse(at_ear[..., samples - labels.shape[-1] :], labels)
        inverse = inverse.to(input_values.dtype)
        block_filters = self.filter_head.shared + gains @ self.filter_head.basis.T
        return NoiseCancellationOutput(loss=loss, inverse=inverse, block_filters=block_filters)

    @property
    def loudspeaker_eta(self) -> float | None:
        eta = self.config.loudspeaker_eta
        return None if eta is None else float(eta)

    def shape_drive(self, drive: torch.Tensor) -> torch.Tensor:
        """The learned output stage, if the model has one (pointwise, so streaming applies it the same way)."""
        if self.config.output_stage_hidden and self.loudspeaker_eta:
            return self.output_stage(drive, self.loudspeaker_eta)
        return drive

    def through_plant(self, drive: torch.Tensor) -> torch.Tensor:
        """What the drive becomes at the ear as the model believes it: ``Ŝ∗f(drive)``; the drive itself with no scene.

        Args:
            drive: shape ``(batch, samples)``.
        """
        if self.config.secondary_path is None and self.loudspeaker_eta is None:
            return drive
        from .acoustics import secondary_path_torch

        return secondary_path_torch(drive, self.config.secondary_path or [1.0], self.loudspeaker_eta)

    def start_shared_filter(self, mode: str, wiener_filter: np.ndarray | None = None) -> bool:
        """Set the shared filter's start: ``"learned"`` (zero, then learned) or ``"wiener"`` (closed form, held fixed).

        Args:
            mode: ``"learned"`` or ``"wiener"``.
            wiener_filter: for ``"wiener"``, the optimal linear control filter of the training audio at
                this latency (``fit_wiener_controller``; without a scene, the negated
                ``fit_wiener_predictor``), shape ``(filter_taps,)``.

        Returns:
            Whether fine-tuning should train the shared filter.
        """
        if mode == "wiener":
            if wiener_filter is None:
                raise ValueError("shared filter mode 'wiener' needs the fitted wiener_filter")
            self.set_shared_filter(wiener_filter)
            return False
        if mode == "learned":
            self.set_shared_filter(np.zeros(self.filter_taps))
            return True
        raise ValueError(f"shared filter mode must be 'wiener' or 'learned', got {mode!r}")

    def start_filter_bank(self, bank: np.ndarray, trainable: bool = True) -> None:
        """Start the encoder's basis at a bank of control filters, one per noise, for the encoder to mix.

        Basis filter j becomes ``bank[j] − shared``, the gains softmax weights (``FIRFilterHead.gains``)
        and the projection zero: the model starts at the bank's mean filter, and weights of one-hot
        ``j`` give ``bank[j]`` exactly. Fine-tuning then teaches the encoder which filter the noise it
        hears calls for (and adjusts the filters); without the encoder (``use_encoder=False``) the
        model is its shared filter alone. Call it after ``start_shared_filter``.

        Args:
            bank: shape ``(adaptive_rank, filter_taps)``, or ``fit_filter_bank``'s ``{name: taps}``.
            trainable: False holds the bank's filters (and the shared filter) as fitted (GFANC's
                pre-trained filters): only their choice trains.
        """
        head = self.filter_head
        if isinstance(bank, dict):
            bank = np.stack(list(bank.values()))
        bank = torch.as_tensor(np.asarray(bank), dtype=head.basis.dtype)
        if bank.shape != (head.basis.shape[1], self.filter_taps):
            raise ValueError(f"a bank of shape {tuple(bank.shape)} does not fit adaptive_rank {head.basis.shape[1]} "
                             f"× filter_taps {self.filter_taps}")
        with torch.no_grad():
            head.basis.copy_(bank.T - head.shared[:, None])
            head.projection.zero_()
        head.basis.requires_grad_(trainable)
        # bank[j] is shared + basis[j]: a shared filter that trained would move every held filter.
        head.shared.requires_grad_(trainable)
        head.mixing = self.config.filter_bank = True

    def set_shared_filter(self, taps: np.ndarray) -> None:
        """Overwrite the shared filter's taps, shape ``(filter_taps,)``."""
        with torch.no_grad():
            self.filter_head.shared.copy_(torch.as_tensor(taps, dtype=self.filter_head.shared.dtype))

    def init_shared_filter_from_wiener(self, train: np.ndarray) -> None:
        """Start the shared filter at the optimal linear predictor of ``train`` for this latency, negated.

        The closed form (``fit_wiener_predictor``) is exact where gradient descent on a long filter
        converges slowly, on tones above all; the encoder then learns what varies around it.
        """
        self.set_shared_filter(-fit_wiener_predictor(train, self.latency, self.filter_taps))


def normalised_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``Σ(prediction − target)² / Σtarget²``; −10·log10 of it is the NR in dB."""
    error = (prediction.float() - target.float()).pow(2).sum(-1)
    power = target.float().pow(2).sum(-1).clamp_min(1e-12)
    return (error / power).mean()


def build_model(model_name: str, seed: int = 0, **head) -> Wav2Vec2ForNoiseCancellation:
    """Make the model from a hub name, a local ``save_pretrained`` folder, or ``scratch:tiny`` / ``scratch:base``.

    A ``scratch:`` encoder is randomly initialised from a config (no download), for offline runs and tests.

    Args:
        head: any of ``HEAD_DEFAULTS`` (``filter_taps``, ``latency_samples``, ``block_samples``,
            ``context_samples``). A folder we saved keeps its own values unless they are given here.
    """
    unknown = set(head) - set(HEAD_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown head settings {sorted(unknown)}; choose from {sorted(HEAD_DEFAULTS)}")
    if model_name.startswith("scratch:"):
        size = model_name.split(":", 1)[1]
        if size not in SCRATCH_CONFIGS:
            raise ValueError(f"unknown scratch model {model_name!r}; choose from {sorted(SCRATCH_CONFIGS)}")
        torch.manual_seed(seed)
        config = Wav2Vec2Config(**SCRATCH_CONFIGS[size], **REGRESSION_OVERRIDES, **{**HEAD_DEFAULTS, **head})
        return Wav2Vec2ForNoiseCancellation(config)
    config = Wav2Vec2Config.from_pretrained(model_name, **REGRESSION_OVERRIDES)
    for name, value in head.items():
        setattr(config, name, value)
    # float32 whatever the checkpoint stores (transformers 5 would otherwise keep its dtype): the
    # Trainer's autocast picks the precision of the compute, and the waveform path needs float32 or wider.
    return Wav2Vec2ForNoiseCancellation.from_pretrained(model_name, config=config, dtype=torch.float32)


def describe_model(model: Wav2Vec2ForNoiseCancellation) -> str:
    """One line: parameter counts, trainable and total."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"{type(model).__name__}: {total / 1e6:.2f} M parameters, {trainable / 1e6:.2f} M trainable"
