"""The recipe's closed-form part, shared by the notebook and the benchmarks: the filters a model starts from.

Every filter is fitted as a real system would fit it: with the identified Ŝ (``Plant.identified_scene``),
never the true S, and, in a scene, on the audio before the validation tail only, so that the validation
that gates the encoder (``evaluation.gate_encoder_correction``) judges audio nothing was fitted on.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .baselines import fit_filter_bank, fit_stretch_bank, fit_wiener_controller, stretch_count
from .pairs import Clip, training_audio, validation_split
from .plant import Plant


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


def start_filters(clips: list[Clip], plant: Plant, delay: int, taps: int, file_bank: bool = False,
                  stretches: int = 0) -> StartFilters:
    """The shared filter and the bank a model starts from, fitted on the fit clips with what the system measured.

    Args:
        clips: every clip, split into training part and held-out tail.
        plant: the run's plant (``acoustics.make_plant``).
        delay, taps: the latency D in samples and the filters' length.
        file_bank: with several clips, one optimal controller per clip (``fit_filter_bank``).
        stretches: with one clip, where their errors at the ear can steer them (``stretch_count``), the whole
            noise's controller and one per stretch of its audio (``fit_stretch_bank``), held as fitted.

    Returns:
        ``StartFilters``.
    """
    fit_clips = clips if plant.is_identity else validation_split(clips)
    known = plant.identified_scene
    shared = fit_wiener_controller(training_audio(fit_clips), known, delay, taps)
    stretches = stretch_count(stretches, plant)
    if file_bank and len(clips) > 1:
        return StartFilters(fit_clips, shared, fit_filter_bank({c.name: c.train for c in fit_clips}, known, delay, taps), True)
    if len(clips) == 1 and stretches:
        bank = fit_stretch_bank(training_audio(fit_clips), known, delay, taps, stretches, whole=shared)
        return StartFilters(fit_clips, shared, bank, False)
    return StartFilters(fit_clips, shared, None, True)
