"""The recipe, one for the notebook and the benchmarks: the filters a model starts from, the model, its pairs, its training.

The run's plant comes first (``plant.make_plant``). Every filter is then fitted as a real system would fit it:
with the identified Ŝ (``Plant.identified_scene``), never the true S, and, in a scene, on the audio before the
validation tail only, so that the validation that gates the encoder (``evaluation.gate_encoder_correction``)
judges audio nothing was fitted on. The notebook's steps 4–6 and ``benchmarks/cancellation.fine_tune`` call
``start_filters``, ``training_pairs``, ``build_canceller`` and ``fine_tune`` in that order.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .baselines import BANK_SIZE, fit_filter_bank, fit_stretch_bank, fit_wiener_controller, group_by_spectrum, stretch_count
from .config import bank_hears_the_ear, bank_settings, plant_settings
from .evaluation import gate_encoder_correction
from .model import Wav2Vec2ForNoiseCancellation, build_model
from .pairs import Clip, build_dataset, training_audio, validation_split
from .plant import Plant
from .training import TrainSettings, train


@dataclasses.dataclass(frozen=True)
class StartFilters:
    """What a model starts from.

    Attributes:
        fit_clips: the clips the model trains on: in a scene their training parts less a validation tail
            (``pairs.validation_split``, in ``heldout``); without one, the clips themselves.
        shared: the optimal linear controller of the fit clips' audio, fitted with Ŝ, shape ``(taps,)``.
        bank: ``{name: taps}`` to start the encoder's basis at, or None.
        bank_trainable: whether fine-tuning may move the bank's filters (a stretch bank is held as fitted).
    """

    fit_clips: list[Clip]
    shared: np.ndarray
    bank: dict[str, np.ndarray] | None
    bank_trainable: bool


def min_train_samples(warmup_samples: int, segment_samples: int, in_scene: bool) -> int:
    """The shortest training part that gives one training pair (``pairs.load_clips``' check): a segment and its
    warm-up, and in a scene a quarter more, for the validation tail kept back from it (``pairs.validation_split``)."""
    need = warmup_samples + segment_samples
    return int(need * 1.25) + 1 if in_scene else need


def start_filters(clips: list[Clip], plant: Plant, delay: int, taps: int, file_bank: bool = False,
                  stretches: int = 0, shared_filter: str = "wiener", bank_size: int = BANK_SIZE,
                  seed: int = 0) -> StartFilters:
    """The shared filter and the bank a model starts from, fitted on the fit clips with what the system measured.

    Args:
        clips: every clip, split into training part and held-out tail.
        plant: the run's plant (``acoustics.make_plant``).
        delay, taps: the latency D in samples and the filters' length.
        file_bank: with several clips, one optimal controller per clip (``fit_filter_bank``), or with more clips
            than ``bank_size``, one per group of clips of like spectra (``group_by_spectrum``, seeded by ``seed``).
        stretches: with one clip, where their errors at the ear can steer them (``stretch_count``), the whole
            noise's controller and one per stretch of its audio (``fit_stretch_bank``), held as fitted.
        shared_filter: the model's start (``build_canceller``). The banks are closed-form filters: they start
            only with the closed-form ``"wiener"`` start. ``"learned"`` learns every filter from zero, so that the
            network visibly learns (with a bank at zero latency each file's filter is exact negation, and the
            loss would be 0 from the first step).

    Returns:
        ``StartFilters``.
    """
    fit_clips = clips if plant.is_identity else validation_split(clips)
    known = plant.identified_scene
    shared = fit_wiener_controller(training_audio(fit_clips), known, delay, taps)
    stretches = stretch_count(stretches, plant) if shared_filter == "wiener" else 0
    if file_bank and len(clips) > 1 and shared_filter == "wiener":
        trains = group_by_spectrum({c.name: c.train for c in fit_clips}, bank_size, seed)
        return StartFilters(fit_clips, shared, fit_filter_bank(trains, known, delay, taps), True)
    if len(clips) == 1 and stretches:
        bank = fit_stretch_bank(training_audio(fit_clips), known, delay, taps, stretches, whole=shared)
        return StartFilters(fit_clips, shared, bank, False)
    return StartFilters(fit_clips, shared, None, True)


def training_pairs(starts: StartFilters, plant: Plant, segment_samples: int, hop_samples: int, warmup_samples: int,
                   bank_error_ms: float = 0.0, seed: int = 0):
    """The fit clips' training pairs, cut on the fly (``pairs.TrainingPairs``): labels at the ear in a scene, switches
    with a bank, and the noise at the ear where the model will hear the error microphone (``bank_hears_the_ear``).

    Args:
        segment_samples, hop_samples, warmup_samples: each pair's length, their spacing and the past each carries.
        bank_error_ms: the notebook's ``ADVANCED["bank_error_ms"]`` (whether it will hear the error microphone).
    """
    return build_dataset(starts.fit_clips, segment_samples, hop_samples, warmup_samples,
                         None if plant.is_identity else plant.identified_scene, with_switches=starts.bank is not None,
                         seed=seed, with_ear_noise=bank_hears_the_ear(starts.bank, bank_error_ms, plant))


def build_canceller(model_name: str, head: dict, starts: StartFilters, plant: Plant, bank_error_ms: float = 0.0,
                    shared_filter: str = "wiener", seed: int = 0) -> tuple[Wav2Vec2ForNoiseCancellation, bool]:
    """The model a run trains: built with the head's, the bank's and the plant's settings, its filters started.

    Args:
        head: head settings in samples (``config.head_settings``, and the safety settings).
        shared_filter: ``"wiener"`` (start at ``starts.shared``, held) or ``"learned"`` (from zero).

    Returns:
        ``(model, train_shared_filter)``: whether fine-tuning trains the shared filter.
    """
    settings = {**head, **bank_settings(starts.bank, bank_error_ms, plant), **plant_settings(plant)}
    model = build_model(model_name, seed=seed, **settings)
    train_shared_filter = model.start_shared_filter(shared_filter, starts.shared)
    if starts.bank:
        model.start_filter_bank(starts.bank, trainable=starts.bank_trainable)
    return model, train_shared_filter


def fine_tune(model: Wav2Vec2ForNoiseCancellation, dataset, settings: TrainSettings, plant: Plant, starts: StartFilters,
              fingerprint: dict | None = None) -> tuple[list[dict], dict | None]:
    """Train (``training.train``), then in a scene gate the encoder's correction on the validation tails.

    Returns:
        ``(log_history, gate)``: the Trainer's log, and the gate's report (None without a scene, where the
        safety gains guard the correction at inference instead).
    """
    log_history = train(model, dataset, settings, fingerprint)
    gate = None if plant.is_identity else gate_encoder_correction(model, starts.fit_clips, plant)
    return log_history, gate
