"""Held-out evaluation: the model beside the baselines at the same latency, per-file figures and the outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .audio_io import SAMPLE_RATE, save_audio
from .baselines import delayed_negation, fit_wiener_predictor, nlms_inverse, wiener_inverse
from .inference import predict_inverse
from .metrics import all_metrics, noise_reduction_db
from .pairs import Clip, training_audio


def heldout_prediction(model, clip: Clip, chunk_seconds: float = 10.0, use_encoder: bool = True) -> np.ndarray:
    """The model's anti-noise of ``clip.heldout``, shape ``(heldout samples,)``.

    The model runs over the tail and the warm-up of the training part before it, no further: the
    start is rounded down to a block boundary of the whole clip, so the blocks, and the result, are
    those of one pass over the whole clip.
    """
    start = max(0, len(clip.train) - model.warmup) // model.block * model.block
    audio = np.concatenate([clip.train[start:], clip.heldout])
    return predict_inverse(model, audio, chunk_seconds, use_encoder)[len(clip.train) - start :]


def heldout_model_nr_db(model, clips: list[Clip], chunk_seconds: float = 10.0) -> float:
    """The model's NR on the held-out tails of all clips, dB (as the ``model`` row of ``heldout_inverses``)."""
    inverse = np.concatenate([heldout_prediction(model, clip, chunk_seconds) for clip in clips])
    return noise_reduction_db(np.concatenate([clip.heldout for clip in clips]), inverse)


def heldout_inverses(
    model, clips: list[Clip], wiener_predictor: np.ndarray | None = None, chunk_seconds: float = 10.0
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The held-out anti-noise of the model and of every baseline, at the model's latency and filter length.

    Each clip's tail is predicted with the clip's own past as context. NLMS runs online over the
    whole clip, as a controller would, so it has adapted by the tail; the Wiener predictor is fitted
    on the training parts only.

    Args:
        wiener_predictor: ``fit_wiener_predictor`` of the training audio at the model's latency and
            filter length, if already fitted; fitted here otherwise.

    Returns:
        ``(heldout, inverses)``: the tails concatenated in file order, shape ``(samples,)``, and for
        ``negation``, ``nlms``, ``wiener``, ``model`` and ``model_no_encoder`` the anti-noise of the same
        samples.
    """
    delay, taps = model.latency, model.filter_taps
    if wiener_predictor is None:
        wiener_predictor = fit_wiener_predictor(training_audio(clips), delay, taps)
    whole_clip = {
        "negation": lambda audio: delayed_negation(audio, delay),
        "nlms": lambda audio: nlms_inverse(audio, delay, taps),
        "wiener": lambda audio: wiener_inverse(audio, wiener_predictor, delay),
    }
    inverses = {name: [] for name in [*whole_clip, "model", "model_no_encoder"]}
    for clip in clips:
        audio = np.concatenate([clip.train, clip.heldout])
        for name, method in whole_clip.items():
            inverses[name].append(method(audio)[len(clip.train) :])
        inverses["model"].append(heldout_prediction(model, clip, chunk_seconds))
        inverses["model_no_encoder"].append(heldout_prediction(model, clip, chunk_seconds, use_encoder=False))
    heldout = np.concatenate([clip.heldout for clip in clips])
    return heldout, {name: np.concatenate(parts) for name, parts in inverses.items()}


def per_file_metrics(clips: list[Clip], heldout: np.ndarray, inverse: np.ndarray) -> list[dict]:
    """Name, held-out seconds and NR of each file, from the concatenated held-out tails and their inverse."""
    bounds = np.cumsum([0] + [len(clip.heldout) for clip in clips])
    return [
        {"file": clip.name, "heldout_seconds": (stop - start) / SAMPLE_RATE,
         "noise_reduction_db": noise_reduction_db(heldout[start:stop], inverse[start:stop])}
        for clip, start, stop in zip(clips, bounds[:-1], bounds[1:])
    ]


def format_comparison(heldout: np.ndarray, inverses: dict[str, np.ndarray]) -> str:
    """A small table: NR, 1-s median and worst 10 %, and A-weighted NR of every method, in dB."""
    lines = [f"{'method':<18}{'NR':>8}{'median 1s':>11}{'worst 10%':>11}{'NR(A)':>8}"]
    for name, inverse in inverses.items():
        m = all_metrics(heldout, inverse)
        lines.append(f"{name:<18}{m['nr_db']:>8.1f}{m['nr_db_median_1s']:>11.1f}{m['nr_db_worst10_1s']:>11.1f}{m['nr_dba']:>8.1f}")
    return "\n".join(lines)


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


def strict_json_values(value):
    """``value`` with every non-finite float replaced by a string: ``"inf"``, ``"-inf"`` or ``"nan"``.

    JSON has no infinity, and ``JSON.parse`` and ``jq`` reject the bare ``Infinity`` Python writes.
    ``"inf"`` is exact cancellation (a residual of exactly zero), ``"-inf"`` a diverged canceller,
    ``"nan"`` a band with no noise in it. ``float()`` reads each back.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: strict_json_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json_values(item) for item in value]
    return value


def dumps_strict(value, indent: int = 1) -> str:
    """Strict JSON text of ``value`` (see ``strict_json_values``)."""
    return json.dumps(strict_json_values(value), indent=indent, allow_nan=False)


def loads_strict(text: str):
    """Parse JSON written by ``dumps_strict``, turning ``"inf"``, ``"-inf"`` and ``"nan"`` back into floats."""

    def restore(value):
        if value in ("inf", "-inf", "nan"):
            return float(value)
        if isinstance(value, dict):
            return {key: restore(item) for key, item in value.items()}
        if isinstance(value, list):
            return [restore(item) for item in value]
        return value

    return restore(json.loads(text))
