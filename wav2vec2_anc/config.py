"""The model's config and the head settings a run derives from the notebook's units and the plant.

``NoiseCancellationConfig`` is a ``Wav2Vec2Config`` with the head's settings (``HEAD_DEFAULTS``), so a saved model
knows its own timing and plant. The ``*_settings`` functions turn the notebook's parameters (ms, s, a plant, a
filter bank) into those settings: ``build_model(name, **head_settings(...), **plant_settings(plant), ...)``.
"""

from __future__ import annotations

from transformers import Wav2Vec2Config

from .audio_io import SAMPLE_RATE

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
    # The plant the loss is taken through (an acoustic scene): None is today's task, the anti-noise
    # added straight to the input. secondary_path is the estimate Ŝ (a list of taps); loudspeaker_eta
    # the identified η of a saturating loudspeaker (SEF), whose inverse pre-distorts the drive (model.shape_drive).
    secondary_path=None, loudspeaker_eta=None,
    # A basis that starts at a bank of filters (start_filter_bank; bank_settings sets it): the encoder then mixes
    # them with softmax weights, a classifier's output, instead of adding free multiples of each.
    filter_bank=False,
    # With a filter bank: the newest samples of each context on which the bank's filters' own errors join
    # the encoder's logits (signal_path.bank_error_logits); 0 is the encoder alone. In an acoustic scene
    # the errors are at the ear, judged on the noise the error microphone heard (``forward``'s ear_noise).
    bank_error_window_samples=0,
    # How much older the input the encoder's update is computed from than the block's own past: the update that
    # takes effect at block b hears the context ending update_lag_samples before b's window end, so a live system
    # computes it on a worker while the blocks between play (inference.StreamingCanceller). The bank's own errors
    # stay on the audio path, up to date. 0 (the encoder on the audio path) for checkpoints saved before it existed.
    update_lag_samples=0,
    # How many blocks each encoder update serves: the encoder computes the update of every encoder_update_blocks-th
    # block (counted from the signal's start), and the blocks between reuse it, their own gains still following the
    # bank's errors each block. A live worker then has that many block periods per update. 1 for checkpoints saved
    # before it existed.
    encoder_update_blocks=1,
)


class NoiseCancellationConfig(Wav2Vec2Config):
    """A ``Wav2Vec2Config`` with the head's settings (``HEAD_DEFAULTS``): its timing in samples, its filters, its plant.

    It holds what the model is, never what a run decided about it (the gate's verdict on the encoder's correction
    is the model's own state, ``Wav2Vec2ForNoiseCancellation.encoder_correction``). A wav2vec2 checkpoint's
    config (``facebook/wav2vec2-base-960h``'s) loads into it, the head's settings at their defaults.
    """

    model_type = "wav2vec2-noise-cancellation"

    def __init__(self, **kwargs):
        head = {name: kwargs.pop(name, default) for name, default in HEAD_DEFAULTS.items()}
        super().__init__(**kwargs)
        for name, value in head.items():
            setattr(self, name, value)

    def check_head(self) -> None:
        """Refuse head settings the model cannot run, before any weight is made.

        Raises:
            ValueError: a bank-error window that is negative, too long for the context, or judged through a
                saturating loudspeaker.
        """
        window = int(self.bank_error_window_samples)
        if window < 0:
            raise ValueError(f"bank_error_window_samples must be ≥ 0 (0 is off), got {window}")
        if not window:
            return
        if self.loudspeaker_eta is not None:
            raise ValueError("bank_error_window_samples judges the bank's errors at the ear through a linear "
                             "loudspeaker: use it without loudspeaker_eta")
        # Within the context: a stream keeps the past the model needs (its warm-up, sized from the context), so
        # the errors it judges must lie inside it. In a scene the filters reach the ear through Ŝ, and the errors
        # end a sample earlier (bank_errors).
        in_scene = self.secondary_path is not None
        span = window + self.latency_samples + self.filter_taps - 1 + (len(self.secondary_path) if in_scene else 0)
        if self.context_samples < span:
            raise ValueError(f"bank_error_window_samples={window} needs context_samples ≥ {span} (the window, the "
                             f"latency, the filters' taps and in a scene Ŝ's), got {self.context_samples}")


def latency_samples(latency_ms: float) -> int:
    """Latency in ms → whole samples at 16 kHz: D = round(ms · 16)."""
    if latency_ms < 0:
        raise ValueError(f"latency must be ≥ 0 ms, got {latency_ms}")
    return int(round(latency_ms * SAMPLE_RATE / 1000))


def head_settings(latency_ms: float, block_ms: float, context_seconds: float, update_lag_ms: float = 0.0,
                  encoder_update_ms: float | None = None, **others) -> dict:
    """The head's timing in samples from the notebook's units (ms, s): ``build_model(name, **head_settings(...))``.

    ``encoder_update_ms`` (None: ``block_ms``, an update every block) must be a whole number of blocks.
    ``others`` (``filter_taps``, ``adaptive_rank``, …) pass through unchanged.

    Raises:
        ValueError: an encoder update period that is not a whole, positive number of blocks.
    """
    block = latency_samples(block_ms)
    period = block if encoder_update_ms is None else latency_samples(encoder_update_ms)
    if block <= 0 or period <= 0 or period % block:
        raise ValueError(f"the encoder's update period ({encoder_update_ms} ms) must be a whole number of blocks "
                         f"of {block_ms} ms")
    return dict(
        latency_samples=latency_samples(latency_ms),
        block_samples=block,
        context_samples=int(context_seconds * SAMPLE_RATE),
        update_lag_samples=latency_samples(update_lag_ms),
        encoder_update_blocks=period // block,
        **others,
    )




def plant_settings(plant) -> dict:
    """The head settings that train a model through an acoustic plant (``acoustics.Plant``): ``build_model(**…)``.

    None for today's task (the plant is the identity). In a scene the loss goes through what the system
    measured, never the true plant: the identified Ŝ and the loudspeaker's identified curve (``eta_estimate``),
    whose inverse pre-distorts the drive of a loudspeaker found saturating; and the safety gains are off: they judge
    the output against the input, which is not what reaches the ear.
    """
    if plant is None or plant.is_identity:
        return {}
    settings = dict(secondary_path=[float(tap) for tap in plant.secondary_estimate], safety_window_samples=0)
    if plant.eta_estimate is not None:
        settings.update(loudspeaker_eta=float(plant.eta_estimate))
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
    settings = {"adaptive_rank": len(filter_bank), "filter_bank": True}
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
    update_lag_samples: int = 0, encoder_update_blocks: int = 1, **_
) -> int:
    """Past samples the model needs before its first fully informed output, rounded up to whole encoder update
    periods (``encoder_update_blocks`` blocks), so that a run starting that far back keeps the updates' phase.

    Takes the ``HEAD_DEFAULTS`` settings by name: ``warmup_samples(**head)``.
    """
    # The first kept block glides from the previous block's filter, whose window must be inside too.
    # A block reuses the update of up to encoder_update_blocks − 1 blocks before it.
    need = encoder_update_blocks * block_samples + latency_samples + update_lag_samples + context_samples + filter_taps
    if safety_window_samples:
        # The safety gains judge raw outputs up to D before its block (gliding from the block before),
        # and each of those outputs needed the warm-up above.
        need += safety_window_samples + latency_samples + 2 * block_samples
    period = encoder_update_blocks * block_samples
    return -(-need // period) * period
