"""The model: a transformers ``Wav2Vec2PreTrainedModel`` whose head outputs the anti-noise waveform, causally."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Wav2Vec2Model, Wav2Vec2PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .config import HEAD_DEFAULTS, REGRESSION_OVERRIDES, SCRATCH_CONFIGS, NoiseCancellationConfig, hears_the_ear, warmup_samples
from .head import BANK_ERROR_SHARPNESS, FIRFilterHead, normalised_mse
from .signal_path import (
    bank_error_logits,
    block_ends,
    causal_fir,
    filter_parts,
    guard_gains,
    mix_parts,
    past_windows,
    ramp_blocks,
    waveform_dtype,
)


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


class Wav2Vec2ForNoiseCancellation(Wav2Vec2PreTrainedModel):
    """wav2vec2 encoder with a regression head that outputs the anti-noise waveform, causally.

    Every ``encoder_update_blocks`` blocks of ``block_samples`` the encoder hears the last ``context_samples`` of
    input that are at least ``latency_samples`` (D) plus ``update_lag_samples`` old (time for a live system to
    compute the update on a worker), and each block the head turns its mean-pooled features, with the bank's own up-to-date
    errors where it has a bank, into a FIR control filter. The filter runs sample by sample on the input delayed by D:
    ``y[n] = Σₖ hₙ[k]·x[n−D−k]``. At inference two safety gains, judged on the last
    ``safety_window_samples`` (``safety_gains``), scale each block: one keeps the encoder's correction
    only as far as it improved on the shared filter, the other keeps the output only as far as it
    cancelled, so a prediction that stops working is turned down instead of amplifying the noise. Every output
    sample depends only on ``x[m]`` with ``m ≤ n − D``, the output is sample-aligned and exactly as
    long as the input, and it is linear in the input's level (wav2vec2 normalises amplitude away; the
    level comes back through the waveform path). At D = 0 the filter can be ``[−1, 0, …]``: exact
    negation is within reach, as it should be.

    Its settings are ``NoiseCancellationConfig``'s (``HEAD_DEFAULTS``). What a run decides about it, the
    validation gate's verdict on the encoder's correction, is the model's own state (``encoder_correction``, a
    buffer saved with the weights), not its config.
    """

    config_class = NoiseCancellationConfig

    # The loss is a mean over the batch, already right under DDP: the Trainer must not pass
    # num_items_in_batch, nor multiply the loss by the number of processes as it does for models
    # whose loss is a sum it normalises.
    accepts_loss_kwargs = False

    def __init__(self, config: NoiseCancellationConfig):
        super().__init__(config)
        config.check_head()
        self.wav2vec2 = Wav2Vec2Model(config)
        self.register_buffer("encoder_gate", torch.ones(()))  # the validation gate's verdict: 1 keeps the correction
        self.filter_head = FIRFilterHead(config.hidden_size, config.filter_taps, config.adaptive_rank, config.filter_bank,
                                         bank_errors=config.bank_error_window_samples > 0)
        self.post_init()

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
    def update_lag(self) -> int:
        """How much older than the block's own past the encoder's input ends, samples (``update_lag_samples``)."""
        return int(getattr(self.config, "update_lag_samples", 0))

    @property
    def update_blocks(self) -> int:  # how many blocks each encoder update serves (encoder_update_blocks)
        return int(getattr(self.config, "encoder_update_blocks", 1))

    @property
    def update_period(self) -> int:  # update_blocks blocks, samples, counted from the signal's start
        return self.update_blocks * self.block

    @property
    def safety_window(self) -> int:  # samples of its own recent past the model judges its output by (0: none)
        return int(self.config.safety_window_samples)

    @property
    def warmup(self) -> int:
        """Past samples needed before the first fully informed output at inference (whole blocks)."""
        return warmup_samples(self.filter_taps, self.latency, self.block, self.context, self.safety_window,
                              self.update_lag, self.update_blocks)

    @property
    def training_warmup(self) -> int:
        """Past samples each training pair carries: the safety gains are not used in training."""
        return warmup_samples(self.filter_taps, self.latency, self.block, self.context, 0, self.update_lag,
                              self.update_blocks)

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
        if module is self:  # a checkpoint saved before the verdict was the model's state holds it in its config
            init.constant_(self.encoder_gate, float(getattr(self.config, "encoder_correction", True)))

    def freeze_feature_encoder(self):
        """Stop gradient updates of the convolutional feature encoder."""
        self.wav2vec2.feature_extractor._freeze_parameters()

    def encoder_features(self, windows: torch.Tensor) -> torch.Tensor:
        """Mean-pooled encoder features of level-normalised windows: ``(n, samples)`` → ``(n, hidden)``."""
        # The processor of wav2vec2-base-960h normalises each input to zero mean, unit variance.
        mean = windows.mean(-1, keepdim=True)
        std = windows.std(-1, keepdim=True).clamp_min(1e-7)
        normalised = (windows - mean) / std
        shortfall = self.receptive_field - normalised.shape[-1]
        if shortfall > 0:
            normalised = F.pad(normalised, (0, shortfall))
        return self.wav2vec2(normalised).last_hidden_state.mean(1)

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
        if not (use_encoder and self.encoder_correction):
            return signal.new_zeros(len(signal), len(ends), self.filter_head.projection.shape[0])
        return self.gains_from(self.update_features(signal, ends), signal, ends, ear_noise)

    def update_features(self, signal: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        """The encoder's part of each update (the heavy part: a worker's, live): ``(batch, samples)`` → ``(batch,
        blocks, hidden)``. Block b's is the update of block ``u = b − b mod encoder_update_blocks``, from the
        ``context`` samples ending ``update_lag`` before u's window end; ``signal`` starts at an update (``ends``
        are ``block_ends``'), and each update is computed once."""
        update_ends = ends - (ends + self.latency - 1) % self.update_period - self.update_lag  # (b mod m)·block back
        update_ends, which = torch.unique(update_ends, return_inverse=True)
        windows = past_windows(signal, update_ends, self.context)
        batch, updates, context = windows.shape
        return self.encoder_features(windows.reshape(batch * updates, context)).reshape(batch, updates, -1)[:, which]

    def gains_from(self, features: torch.Tensor, signal: torch.Tensor, ends: torch.Tensor,
                   ear_noise: torch.Tensor | None = None) -> torch.Tensor:
        """Gains from ``update_features`` and the bank's errors up to ``ends``: ``(batch, blocks, hidden)`` → ``(…, rank)``."""
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
        x = input_values.to(waveform_dtype(input_values.device, self.latency))
        return causal_fir(x, torch.cat([head.shared[None], head.basis.T]), self.latency)

    def guard_gains(self, x: torch.Tensor, shared: torch.Tensor, correction: torch.Tensor, ends: torch.Tensor
                    ) -> torch.Tensor:
        """The two safety gains of the blocks whose past windows end at ``ends``, judged on this model's safety
        window (``signal_path.guard_gains``), shape ``(batch, blocks, 2)``."""
        return guard_gains(x, shared, correction, ends, self.safety_window)

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
        x = input_values.to(waveform_dtype(input_values.device, self.latency))
        outputs = self.filter_outputs(x)
        shared, correction = filter_parts(outputs, ramp_blocks(gains, self.block, samples))
        if not self.training and self.safety_window:
            # A deployment safeguard, not trained through: an untrained head (silent) would get no gradient.
            per_sample = ramp_blocks(self.guard_gains(x, shared, correction, ends), self.block, samples)
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
        return None if self.config.loudspeaker_eta is None else float(self.config.loudspeaker_eta)

    def shape_drive(self, drive: torch.Tensor) -> torch.Tensor:
        """Before a saturating loudspeaker, the drive through the identified curve's inverse (``acoustics.inverse_sef``
        at η̂), so that the loudspeaker plays, as far as its identified curve knows, the linear anti-noise the filters
        made; pointwise, so streaming applies it the same way. Without one, the drive itself."""
        if self.loudspeaker_eta is None:
            return drive
        from .acoustics import inverse_sef

        return inverse_sef(drive, self.loudspeaker_eta)

    def through_plant(self, drive: torch.Tensor) -> torch.Tensor:
        """What the drive becomes at the ear as the model believes it: ``Ŝ∗f(drive)``; the drive itself with no scene.

        Args:
            drive: shape ``(batch, samples)``.
        """
        if self.config.secondary_path is None and self.loudspeaker_eta is None:
            return drive
        from .acoustics import secondary_path_torch

        return secondary_path_torch(drive, self.config.secondary_path or [1.0], self.loudspeaker_eta)

    @property
    def encoder_correction(self) -> bool:
        """Whether the encoder's correction plays: False once validation showed it does not help."""
        return bool(self.encoder_gate.item())

    def set_encoder_correction(self, keep: bool) -> None:
        """Keep (True) or switch off the encoder's correction: the validation gate's verdict, saved with the model."""
        with torch.no_grad():
            self.encoder_gate.fill_(float(keep))

    def start_shared_filter(self, mode: str, wiener_filter: np.ndarray | None = None) -> bool:
        """Set the shared filter's start: ``"learned"`` (zero, then learned) or ``"wiener"`` (closed form, held fixed).

        Args:
            mode: ``"learned"`` or ``"wiener"``.
            wiener_filter: for ``"wiener"``, the optimal linear control filter of the training audio at this
                latency (``recipe.start_filters``' ``shared``), shape ``(filter_taps,)``.

        Returns:
            Whether fine-tuning should train the shared filter.
        """
        if mode not in ("wiener", "learned"):
            raise ValueError(f"shared filter mode must be 'wiener' or 'learned', got {mode!r}")
        if mode == "wiener" and wiener_filter is None:
            raise ValueError("shared filter mode 'wiener' needs the fitted wiener_filter")
        self.set_shared_filter(wiener_filter if mode == "wiener" else np.zeros(self.filter_taps))
        return mode == "learned"

    def set_shared_filter(self, taps: np.ndarray) -> None:
        """Overwrite the shared filter's taps, shape ``(filter_taps,)``."""
        with torch.no_grad():
            self.filter_head.shared.copy_(torch.as_tensor(taps, dtype=self.filter_head.shared.dtype))

    def start_filter_bank(self, bank, trainable: bool = True) -> None:
        """Start the encoder's basis at a bank of control filters, one per noise, for the encoder to mix.

        The model must have been built for one (``config.bank_settings``). Basis filter j becomes
        ``bank[j] − shared``, the gains softmax weights (``FIRFilterHead.gains``) and the projection zero: the
        model starts at the bank's mean filter, and weights of one-hot ``j`` give ``bank[j]`` exactly; fine-tuning
        teaches the encoder which filter the noise calls for. Call it after ``start_shared_filter``.

        Args:
            bank: shape ``(adaptive_rank, filter_taps)``, or ``fit_filter_bank``'s ``{name: taps}``.
            trainable: False holds the bank's filters (and the shared filter) as fitted (GFANC's
                pre-trained filters): only their choice trains.
        """
        if not self.config.filter_bank:
            raise ValueError("this model was not built for a filter bank: build it with config.bank_settings(bank)")
        head = self.filter_head
        bank = torch.as_tensor(np.stack(list(bank.values())) if isinstance(bank, dict) else np.asarray(bank),
                               dtype=head.basis.dtype)
        if bank.shape != (head.basis.shape[1], self.filter_taps):
            raise ValueError(f"a bank of shape {tuple(bank.shape)} does not fit adaptive_rank {head.basis.shape[1]} "
                             f"× filter_taps {self.filter_taps}")
        with torch.no_grad():
            head.basis.copy_(bank.T - head.shared[:, None])
            head.projection.zero_()
        head.basis.requires_grad_(trainable)
        # bank[j] is shared + basis[j]: a shared filter that trained would move every held filter.
        head.shared.requires_grad_(trainable)


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
        return Wav2Vec2ForNoiseCancellation(NoiseCancellationConfig(**SCRATCH_CONFIGS[size], **REGRESSION_OVERRIDES, **head))
    config = NoiseCancellationConfig.from_pretrained(model_name, **REGRESSION_OVERRIDES, **head)
    # float32 whatever the checkpoint stores (transformers 5 would otherwise keep its dtype): the
    # Trainer's autocast picks the precision of the compute, and the waveform path needs float32 or wider.
    return Wav2Vec2ForNoiseCancellation.from_pretrained(model_name, config=config, dtype=torch.float32)


def describe_model(model: Wav2Vec2ForNoiseCancellation) -> str:
    """One line: parameter counts, trainable and total."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"{type(model).__name__}: {total / 1e6:.2f} M parameters, {trainable / 1e6:.2f} M trainable"
