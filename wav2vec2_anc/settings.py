"""The settings behind the notebook's short form: every one a run can change, in the notebook's units, with its default.

The form holds the few settings a newcomer changes (the audio, the model, the steps, the latency, the scene). The
rest live here, in ``AdvancedSettings``; the notebook's ``ADVANCED`` dict overrides any of them by name.
"""

from __future__ import annotations

import dataclasses

from .baselines import BANK_SIZE
from .config import HEAD_DEFAULTS, head_settings
from .plant import IDENTIFICATION_SNR_DB
from .training import TrainSettings


@dataclasses.dataclass(frozen=True)
class AdvancedSettings:
    """Every setting of a run that the notebook's form leaves at its default.

    Attributes:
        segment_seconds: length of one training pair, s.
        segment_hop_seconds: training segments start this far apart, s.
        heldout_fraction: the last part of each file never trained on.
        batch_size, learning_rate, head_learning_rate, freeze_feature_encoder: the fine-tuning's (``TrainSettings``).
        save_steps: checkpoint interval; a rerun on the same audio and settings resumes from the newest checkpoint.
        filter_taps: length of the control filter (512: 32 ms; low tones need long filters to be predicted).
        block_ms: how often each block's filter is set, ms: the encoder's update glides in and the bank's own errors
            (with a bank) steer it afresh each block.
        encoder_update_ms: how often the encoder computes an update, ms (a whole number of blocks); the blocks
            between reuse it. Twice ``block_ms``, so the base-size encoder keeps up on two CPU cores.
        update_lag_ms: how much older the input each update is computed from than the block's own past, ms: the
            time a live system has to compute it on a worker while the audio plays.
        context_seconds: how much past the encoder hears for each update, s.
        safety_seconds: how much of its own past output the safety gains judge it by, s (no scene only).
        adaptive_rank: how many filters the encoder can steer on top of the shared one.
        filter_bank: with a folder of 2+ files (and the "wiener" start), the encoder mixes one optimal filter per file.
        bank_size: at most this many filters in that bank: more files are grouped by their spectra.
        stretch_bank: one file in a scene with a linear loudspeaker: the optimal controller and one filter per
            this many stretches of the training audio, chosen by their errors at the ear (0: the learned basis).
        bank_error_ms: with a filter bank, each filter's own errors over this newest past join the encoder's
            choice, ms (0: the encoder alone).
        room_rt60: the room scene's reverberation time, s.
        identification_snr_db: in a scene, how far the test signal that measures the loudspeaker's path stands above
            the noise of the place, dB.
        switch_seconds: with a folder, step 9 plays the held-out parts in turn, switching file this often, s.
        chunk_seconds: inference chunk, s: memory is bounded by this, not the file's length.
        preview_seconds: players and plots show at most this much of a file, s.
    """

    segment_seconds: float = 1.0
    segment_hop_seconds: float = 0.25
    heldout_fraction: float = 0.3
    batch_size: int = TrainSettings.batch_size
    learning_rate: float = TrainSettings.learning_rate
    head_learning_rate: float = TrainSettings.head_learning_rate
    freeze_feature_encoder: bool = TrainSettings.freeze_feature_encoder
    save_steps: int = 100
    filter_taps: int = HEAD_DEFAULTS["filter_taps"]
    block_ms: float = 50.0
    encoder_update_ms: float = 100.0
    update_lag_ms: float = 50.0
    context_seconds: float = 0.25
    safety_seconds: float = 0.25
    adaptive_rank: int = HEAD_DEFAULTS["adaptive_rank"]
    filter_bank: bool = True
    bank_size: int = BANK_SIZE
    stretch_bank: int = 16
    bank_error_ms: float = 10.0
    room_rt60: float = 0.2
    identification_snr_db: float = IDENTIFICATION_SNR_DB
    switch_seconds: float = 2.0
    chunk_seconds: float = 10.0
    preview_seconds: float = 30.0


    def head(self, latency_ms: float) -> dict:
        """The model's head settings (``config.head_settings``) at ``latency_ms``, from these."""
        return head_settings(latency_ms, self.block_ms, self.context_seconds, self.update_lag_ms, self.encoder_update_ms,
                             filter_taps=self.filter_taps, adaptive_rank=self.adaptive_rank)


def advanced_settings(overrides: dict | None = None) -> AdvancedSettings:
    """``AdvancedSettings`` with the notebook's ``ADVANCED`` overrides, checked before anything runs.

    Args:
        overrides: ``{name: value}``, names as ``AdvancedSettings``' fields (lower case), e.g. ``{"filter_taps": 256}``.

    Raises:
        ValueError: a name that is not a setting, with the names there are.
    """
    overrides = dict(overrides or {})
    known = {field.name for field in dataclasses.fields(AdvancedSettings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"ADVANCED has no setting {unknown}; the settings are {sorted(known)}")
    return AdvancedSettings(**overrides)
