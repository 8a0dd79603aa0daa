"""Held-out evaluation: the model beside the baselines at the same latency, per-file figures and the outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .acoustics import none_scene, sef
from .audio_io import SAMPLE_RATE, save_audio
from .baselines import controller_drive, delayed_negation, fit_wiener_controller, nlms_inverse, predistorted_drive
from .fxnlms import fxnlms_drive, fxnlms_refined_drive
from .inference import closed_loop_drive
from .metrics import EXACT_DB, all_metrics, display_db, noise_reduction_db
from .pairs import Clip, training_audio
from .plant import Plant
from .records import dumps_strict
from .training import loss_history


def heldout_prediction(
    model, clip: Clip, chunk_seconds: float = 10.0, use_encoder: bool = True, before: int = 0, plant: Plant | None = None
) -> np.ndarray:
    """The model's anti-noise (its drive) of ``clip.heldout`` and the ``before`` samples preceding it.

    The model runs over the tail and the warm-up of the training part before it, no further: the
    start is rounded down to an encoder update (`update_period`) of the whole clip, so the blocks, and the result, are
    those of one pass over the whole clip. A model that hears the error microphone runs in ``plant``'s
    closed loop (``closed_loop_drive``) from the clip's first sample, as FxNLMS does: what it heard
    depends on all it played before.

    Returns:
        shape ``(before + heldout samples,)``.
    """
    period = model.update_period
    start = 0 if model.needs_ear_noise else max(0, len(clip.train) - before - model.warmup) // period * period
    audio = np.concatenate([clip.train[start:], clip.heldout])
    return closed_loop_drive(model, audio, plant, chunk_seconds, use_encoder)[len(clip.train) - before - start :]


def model_anti_noise_at_ear(
    model, clip: Clip, plant: Plant, chunk_seconds: float = 10.0, use_encoder: bool = True
) -> np.ndarray:
    """The model's anti-noise at the ear over ``clip.heldout``: its drive through the true S and loudspeaker.

    The drive starts ``len(S) − 1`` samples early, so the secondary path has all the past it convolves.
    """
    before = len(plant.scene.secondary) - 1
    drive = heldout_prediction(model, clip, chunk_seconds, use_encoder, before=before, plant=plant)
    return plant.anti_noise_at_ear(drive)[before:]


def heldout_noise_at_ear(clip: Clip, plant: Plant) -> np.ndarray:
    """``P∗x`` over ``clip.heldout``, with the clip's own past filtered in."""
    return plant.noise_at_ear(np.concatenate([clip.train, clip.heldout]))[len(clip.train) :]


def heldout_model_nr_db(
    model, clips: list[Clip], chunk_seconds: float = 10.0, plant: Plant | None = None, use_encoder: bool = True
) -> float:
    """The model's NR on the held-out tails of all clips, at the ear, dB (the ``model`` row of ``heldout_inverses``)."""
    plant = plant or Plant(none_scene())
    noise = np.concatenate([heldout_noise_at_ear(clip, plant) for clip in clips])
    anti = np.concatenate([model_anti_noise_at_ear(model, clip, plant, chunk_seconds, use_encoder) for clip in clips])
    return noise_reduction_db(noise, anti)


def fxnlms_refined_anti_noise_at_ear(
    model, clip: Clip, plant: Plant, chunk_seconds: float = 10.0, drive: np.ndarray | None = None, mix: bool = True,
    fixed_member: bool = True, predistort: bool = True,
) -> np.ndarray:
    """The model's drive refined online by FxNLMS at the error microphone, at the ear over ``clip.heldout``.

    The refinement (``fxnlms.fxnlms_refined_drive``: the refined drive mixed with plain FxNLMS at the plant's
    tuned step, ``Plant.fxnlms_step``, and with the drive as it came) runs from
    the clip's first sample, as FxNLMS does, on the model's drive over the whole clip. A model that hears
    the error microphone gives the drive of its own loop (``closed_loop_drive``), as if it played alone:
    what the refinement changes at the microphone is not fed back to it. Before a saturating loudspeaker the
    refinement works on the drive before the identified curve's inverse (``acoustics.sef(drive, η̂)``: the
    network's linear anti-noise, capped at the curve's reach, where the model shaped its drive with
    ``model.shape_drive``) and sends the refined drive through that inverse, as the model sends its own: its
    correction then meets a loudspeaker that is linear as far as η̂ is right (plain FxNLMS in its mix plays
    without it, as the baseline does).

    Args:
        drive: the model's drive over the whole clip, if already run (``closed_loop_drive``).
        mix: False leaves out the mix (the refined drive alone; the ablation's variant).
        fixed_member: False leaves the drive as it came out of the mix (the ablation's variant).
        predistort: False adds the refinement's correction to the drive as sent, after the inverse (the ablation's
            variant ``no_refinement_predistortion``).
    """
    audio = np.concatenate([clip.train, clip.heldout])
    drive = closed_loop_drive(model, audio, plant, chunk_seconds) if drive is None else drive
    eta_estimate = model.loudspeaker_eta if predistort else None
    refined = fxnlms_refined_drive(audio, sef(drive, eta_estimate), plant.scene, plant.secondary_estimate, model.latency,
                                   model.filter_taps, plant.eta, mix_step=None if mix else 0.0,
                                   companion_step=plant.fxnlms_step, fixed_member=fixed_member, eta_estimate=eta_estimate)
    return plant.anti_noise_at_ear(refined)[len(clip.train) :]


def gate_encoder_correction(model, validation_clips: list[Clip], plant: Plant | None = None) -> dict:
    """Keep the encoder's correction only if it helped on validation audio; switch it off otherwise.

    In a scene no safety gain guards the correction at inference (they would need the noise at the
    ear), so this is its guard at the level of the whole model: judged on audio that neither the training
    nor any fitted filter saw (``pairs.validation_split``, ``recipe.start_filters``), at the error microphone,
    which a live system hears: the model runs on the validation audio, and what reaches the microphone
    through the real paths is scored.

    Returns:
        ``{"validation_nr_db": with, "validation_nr_db_no_encoder": without, "encoder_correction": kept}``.
    """
    with_encoder = heldout_model_nr_db(model, validation_clips, plant=plant)
    without = heldout_model_nr_db(model, validation_clips, plant=plant, use_encoder=False)
    model.set_encoder_correction(with_encoder > without)
    return {"validation_nr_db": with_encoder, "validation_nr_db_no_encoder": without,
            "encoder_correction": model.encoder_correction}


def baseline_drives(plant: Plant, wiener_filter: np.ndarray, delay: int, taps: int,
                    true_s_filter: np.ndarray | None = None) -> dict:
    """The baselines at one latency and scene, as functions of a whole clip: ``{name: drive(x)}``.

    Each takes the reference-microphone noise ``x``, shape ``(samples,)``, and returns its drive, same
    shape: without a scene ``negation``, ``nlms`` and ``wiener``; in one ``wiener`` (fitted with Ŝ),
    ``fxnlms`` (its step tuned on the training audio, ``Plant.fxnlms_step``), with ``true_s_filter`` the bound
    ``wiener_true_s``, and, where the level sweep found the loudspeaker saturating, ``wiener_predistorted``
    (through the identified curve's inverse). NLMS and FxNLMS start from zero at ``x[0]``.

    Args:
        wiener_filter: the optimal linear control filter fitted on the training audio with Ŝ, shape ``(taps,)``.
        true_s_filter: the same fitted with the true S, a bound no real system reaches; None leaves it out.
    """
    if plant.is_identity:
        return {
            "negation": lambda audio: delayed_negation(audio, delay),
            "nlms": lambda audio: nlms_inverse(audio, delay, taps),
            "wiener": lambda audio: controller_drive(audio, wiener_filter, delay),
        }
    drives = {
        "wiener": lambda audio: controller_drive(audio, wiener_filter, delay),
        "fxnlms": lambda audio: fxnlms_drive(audio, plant.scene, plant.secondary_estimate, delay, taps,
                                             plant.fxnlms_step, eta=plant.eta),
    }
    if true_s_filter is not None:
        drives["wiener_true_s"] = lambda audio: controller_drive(audio, true_s_filter, delay)
    if plant.eta_estimate is not None:
        drives["wiener_predistorted"] = lambda audio: predistorted_drive(controller_drive(audio, wiener_filter, delay),
                                                                         plant.eta_estimate)
    return drives


def new_file_comparison(model, audio: np.ndarray, anti_noise: np.ndarray, wiener_filter: np.ndarray,
                        plant: Plant | None = None, chunk_seconds: float = 10.0) -> dict[str, np.ndarray]:
    """A file the model never trained on, whole: the model's anti-noise at the ear beside every baseline's.

    The Wiener filter is the one fitted on the training audio (with a library, ``wiener_library``),
    and NLMS/FxNLMS start from zero at the file's first sample, as the model does. ``model_fxnlms`` joins
    them, as in ``heldout_inverses``: the model's drive refined online at the error microphone from the file's
    first sample (the model runs over the file once more for its drive).

    Args:
        audio: the file at the reference microphone, shape ``(samples,)``.
        anti_noise: the model's anti-noise at the ear (``cancel_file``'s), same shape.
        chunk_seconds: the model's chunk for that run (``predict_inverse``).

    Returns:
        ``{"model": anti_noise, baseline: its anti-noise at the ear, …}``, each shape ``(samples,)``.
    """
    plant = plant or Plant(none_scene())
    drives = baseline_drives(plant, wiener_filter, model.latency, model.filter_taps)
    methods = {"model": anti_noise, **{name: plant.anti_noise_at_ear(drive(audio)) for name, drive in drives.items()}}
    whole_file = Clip(name="new file", train=audio[:0], heldout=audio)
    methods["model_fxnlms"] = fxnlms_refined_anti_noise_at_ear(model, whole_file, plant, chunk_seconds)
    return methods


def heldout_inverses(
    model, clips: list[Clip], wiener_filter: np.ndarray | None = None, chunk_seconds: float = 10.0,
    plant: Plant | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The held-out noise at the ear, and the anti-noise there of the model and every baseline, at the model's latency.

    Each clip's tail is predicted with the clip's own past as context. NLMS and FxNLMS run online over
    the whole clip, as a controller would, so they have adapted by the tail; the Wiener filter is
    fitted on the training parts only. Without a scene (``plant`` None) the ear is the input itself:
    the noise is the held-out input and the anti-noise each method's output, as before scenes existed.

    Args:
        wiener_filter: the optimal linear control filter of the training audio at the model's latency
            and filter length, fitted with Ŝ (``make_plant``'s), if already fitted; fitted here otherwise.
        plant: the acoustic scene (``acoustics.make_plant``); the true S and loudspeaker judge every method.
            In a scene ``wiener_true_s``, the controller fitted with the true S, joins as a bound.

    Returns:
        ``(noise, anti_noise)``: the held-out noise at the ear, every clip's tail in file order, shape
        ``(samples,)``, and for each method the anti-noise at the ear of the same samples: ``negation``,
        ``nlms`` and ``wiener`` without a scene; ``wiener``, ``wiener_true_s``, ``fxnlms`` and, with a saturating
        loudspeaker, ``wiener_predistorted`` in one; and in both ``model`` (the network alone),
        ``model_no_encoder`` and ``model_fxnlms``, the canceller as shipped: the network's drive refined online
        at the error microphone (``fxnlms_refined_anti_noise_at_ear``; without a scene, where S = Ŝ = 1, by NLMS).
    """
    plant = plant or Plant(none_scene())
    delay, taps = model.latency, model.filter_taps
    if wiener_filter is None:
        wiener_filter = fit_wiener_controller(training_audio(clips), plant.identified_scene, delay, taps)
    true_s_filter = None if plant.is_identity else fit_wiener_controller(training_audio(clips), plant.scene, delay, taps)
    whole_clip = baseline_drives(plant, wiener_filter, delay, taps, true_s_filter)
    models = ["model", "model_no_encoder", "model_fxnlms"]
    noise, anti = [], {name: [] for name in [*whole_clip, *models]}
    for clip in clips:
        audio = np.concatenate([clip.train, clip.heldout])
        noise.append(heldout_noise_at_ear(clip, plant))
        for name, method in whole_clip.items():
            anti[name].append(plant.anti_noise_at_ear(method(audio))[len(clip.train) :])
        # A model that hears the error microphone runs its loop over the whole clip (heldout_prediction): once.
        drive = closed_loop_drive(model, audio, plant, chunk_seconds) if model.needs_ear_noise else None
        if drive is None:
            anti["model"].append(model_anti_noise_at_ear(model, clip, plant, chunk_seconds))
        else:
            anti["model"].append(plant.anti_noise_at_ear(drive)[len(clip.train) :])
        anti["model_no_encoder"].append(model_anti_noise_at_ear(model, clip, plant, chunk_seconds, use_encoder=False))
        anti["model_fxnlms"].append(fxnlms_refined_anti_noise_at_ear(model, clip, plant, chunk_seconds, drive))
    return np.concatenate(noise), {name: np.concatenate(parts) for name, parts in anti.items()}


def per_file_metrics(clips: list[Clip], heldout: np.ndarray, inverse: np.ndarray) -> list[dict]:
    """Name, held-out seconds and NR of each file, from the concatenated held-out tails and their inverse."""
    bounds = np.cumsum([0] + [len(clip.heldout) for clip in clips])
    return [
        {"file": clip.name, "heldout_seconds": (stop - start) / SAMPLE_RATE,
         "noise_reduction_db": noise_reduction_db(heldout[start:stop], inverse[start:stop])}
        for clip, start, stop in zip(clips, bounds[:-1], bounds[1:])
    ]


def format_comparison(heldout: np.ndarray, inverses: dict[str, np.ndarray]) -> str:
    """A small table of every method, in dB: its NR over the whole audio, its median and worst-10 % NR over 1-s
    pieces, and its NR weighted as the ear hears loudness (A-weighting). Exact cancellation reads "exact"."""
    def cell(value: float, width: int) -> str:
        return f"{display_db(value, unit=False):>{width}}"

    lines = [f"{'method':<18}{'NR':>8}{'median 1 s':>12}{'worst 10 %':>12}{'A-weighted':>12}"]
    for name, inverse in inverses.items():
        m = all_metrics(heldout, inverse)
        lines.append(f"{name:<18}{cell(m['nr_db'], 8)}{cell(m['nr_db_median_1s'], 12)}{cell(m['nr_db_worst10_1s'], 12)}"
                     f"{cell(m['nr_dba'], 12)}")
    lines.append(f"(NR = 10·log10 of the noise's power over the residual's; 10 dB is a tenth of the power; 'exact' is "
                 f"above {EXACT_DB:g} dB, float rounding)")
    return "\n".join(lines)


def headline(methods: dict[str, dict], latency_ms: float, in_scene: bool) -> str:
    """One line to read first: what the network did to the held-out noise, with its online refinement and the better
    baseline beside it.

    Args:
        methods: ``metrics.json``'s ``methods`` (``all_metrics`` of each method of ``heldout_inverses``).
        latency_ms: the run's latency.
        in_scene: whether the anti-noise met the noise at the ear of an acoustic scene.
    """
    network, refined = methods["model"]["nr_db"], methods["model_fxnlms"]["nr_db"]
    baselines = {name: methods[name]["nr_db"] for name in ("wiener", "nlms", "fxnlms", "wiener_predistorted")
                 if name in methods}
    best = max(baselines, key=baselines.get)
    where = "at the ear" if in_scene else "on audio the model never heard"
    line = (f"The network's anti-noise makes the noise {display_db(network)} quieter {where}; refined online at the "
            f"error microphone, {display_db(refined)} (the better baseline, {best}: {display_db(baselines[best])}).")
    if latency_ms == 0 and not in_scene:
        line += " At 0 ms a plain sign flip is exact: set LATENCY_MS = 1 for the real prediction problem."
    return line


def run_metrics(heldout: np.ndarray, inverses: dict[str, np.ndarray], clips: list[Clip], plant: Plant, log_history: list[dict],
                heldout_before_db: float, fingerprint: dict, **settings) -> dict:
    """``metrics.json`` of a run (the notebook's step 7 and ``python -m wav2vec2_anc.train``): the model's held-out NR,
    every method's metrics, each file's NR, the training's loss history and NR before and after, and ``settings``.

    Args:
        heldout, inverses: ``heldout_inverses``' result.
        log_history: the Trainer's (``recipe.fine_tune``).
        settings: what else the run records (``latency_ms``, ``audio_path``, ``model_name``, …), JSON-able.
    """
    inverse = inverses["model"]
    after = noise_reduction_db(heldout, inverse)
    return {
        "noise_reduction_db": after,
        "negation_noise_reduction_db": noise_reduction_db(heldout, inverses["negation"]) if "negation" in inverses else None,
        "scene": plant.describe(),
        "heldout_seconds": len(heldout) / SAMPLE_RATE,
        "methods": {name: all_metrics(heldout, y) for name, y in inverses.items()},
        "files": per_file_metrics(clips, heldout, inverse),
        "training": {"loss_history": loss_history(log_history), "heldout_nr_db_before": heldout_before_db,
                     "heldout_nr_db_after": after, "fingerprint": fingerprint},
        **settings,
    }


def write_outputs(output_dir, heldout: np.ndarray, inverse: np.ndarray, metrics: dict) -> dict[str, Path]:
    """Write the held-out input, its predicted inverse, the residual and ``metrics.json`` to ``output_dir``."""
    output_dir = Path(output_dir)
    paths = {
        "input": save_audio(output_dir / "input.wav", heldout),
        "inverse": save_audio(output_dir / "inverse.wav", inverse),
        "residual": save_audio(output_dir / "residual.wav", heldout + inverse),
        "metrics": output_dir / "metrics.json",
    }
    paths["metrics"].write_text(dumps_strict(metrics))
    return paths
