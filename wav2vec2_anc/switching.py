"""Noise that changes: a test sequence that switches between noises, a perfect-classifier filter bank, and the figures.

The sequence (``switching_sequence``) is built from held-out audio only; every method then runs over
it from its first sample, as a deployed canceller would, and is judged per segment, in the first
second after each switch and in 100-ms windows (``switching_metrics``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .audio_io import SAMPLE_RATE, at_rms
from .baselines import WHISPER_LOADING, controller_drive, fit_filter_bank
from .evaluation import baseline_drives
from .head import BANK_ERROR_SHARPNESS
from .inference import closed_loop_drive
from .metrics import lower_median, noise_reduction_db, segment_noise_reduction_db
from .pairs import Clip
from .signal_path import bank_error_logits, block_ends, ramp_blocks

CLIP_RMS = 0.1
MIN_SWITCHES = 8
WINDOW_SECONDS = 0.1  # the plot's NR windows
AFTER_SWITCH_SECONDS = 1.0


class Segment(NamedTuple):
    """One stretch of the test sequence: which clip plays, where in the sequence, and from where in its held-out part.

    Attributes:
        clip: the clip's name.
        start, stop: its samples in the sequence, ``[start, stop)``.
        source_offset: the sample of the clip's held-out part it starts at (it wraps past that part's end).
    """

    clip: str
    start: int
    stop: int
    source_offset: int


def default_switches(clips: int) -> int:
    """Enough switches that every clip plays at least twice, and at least ``MIN_SWITCHES``."""
    return max(MIN_SWITCHES, 2 * clips - 1)


def clip_order(names: list[str], count: int, seed: int) -> list[str]:
    """``count`` clip names: seeded shuffles of ``names`` end to end, so each plays about equally often.

    Where a shuffle would begin with the clip the last one ended on, its first and last entries swap,
    so no clip follows itself.

    Raises:
        ValueError: fewer than two clips (nothing to switch between).
    """
    if len(names) < 2:
        raise ValueError(f"switching needs at least two clips, got {len(names)}")
    rng = np.random.default_rng(seed)
    order: list[str] = []
    while len(order) < count:
        cycle = [names[i] for i in rng.permutation(len(names))]
        if order and cycle[0] == order[-1]:
            cycle[0], cycle[-1] = cycle[-1], cycle[0]
        order.extend(cycle)
    return order[:count]


def switching_sequence(
    heldouts: dict[str, np.ndarray], switch_seconds: float, switches: int, seed: int, rms: float = CLIP_RMS
) -> tuple[np.ndarray, list[Segment]]:
    """The test sequence: the clips' held-out parts in turn, switching clip every ``switch_seconds``.

    The order is ``clip_order``'s. Each segment is taken from its clip's held-out part only, and a
    clip's next segment continues where its last one stopped (wrapping to that part's start if it runs
    out: a segment longer than what is left holds one seam). Each segment is scaled to RMS ``rms``.

    Args:
        heldouts: ``{clip name: held-out audio, shape (samples,)}``.
        switch_seconds: length of each segment, seconds.
        switches: how many times the clip changes; there are ``switches + 1`` segments.
        seed: for the order.

    Returns:
        ``(sequence, segments)``: float32 of shape ``((switches + 1)·segment samples,)`` and its ``Segment`` s.

    Raises:
        ValueError: a segment of digital silence (it cannot be brought to ``rms``).
    """
    length = int(round(switch_seconds * SAMPLE_RATE))
    next_offset = dict.fromkeys(heldouts, 0)
    parts, segments = [], []
    for index, name in enumerate(clip_order(list(heldouts), switches + 1, seed)):
        source, offset = heldouts[name], next_offset[name]
        part = np.take(source, np.arange(offset, offset + length), mode="wrap")
        if not np.any(part):
            raise ValueError(f"{name}: held-out samples {offset}…{offset + length} are silent")
        parts.append(at_rms(part, rms))
        segments.append(Segment(name, index * length, (index + 1) * length, offset))
        next_offset[name] = (offset + length) % len(source)
    return np.concatenate(parts), segments


def optimal_bank(clips: list[Clip], scene, delay: int, taps: int) -> dict[str, np.ndarray]:
    """Each clip's optimal controller on its training part, ``{name: w of shape (taps,)}``: the oracles' filters.

    ``fit_filter_bank`` without the bank's white floor: the oracles stay the ideal, each clip's optimal filter.
    """
    return fit_filter_bank({clip.name: clip.train for clip in clips}, scene, delay, taps, WHISPER_LOADING)


def oracle_drive(
    sequence: np.ndarray, segments: list[Segment], filter_bank: dict[str, np.ndarray], delay: int, block: int | None = None,
    reaction: int = 0,
) -> np.ndarray:
    """The drive of a filter bank switched by a perfect classifier: during each segment, its clip's filter.

    The filters all run over the whole sequence, so at a switch the newly chosen one's taps already
    hold the samples before it, as a bank of filters running in parallel would. With ``block`` the
    classifier keeps a model's schedule instead of switching at the very sample: block ``b`` (samples
    ``b·block …``) takes the filter of the clip playing at the newest sample its context holds,
    ``b·block − D``, and glides to it from the block before's (``signal_path.ramp_blocks``), as the
    model's filters do. Neither is an upper bound for the other: just after a switch a filter's taps
    still hold the old noise, so the filter switched at the very sample can do worse than one switched later.

    Args:
        sequence: the reference-microphone noise, shape ``(samples,)``.
        segments: ``switching_sequence``'s, which clip plays where.
        filter_bank: ``{clip: controller taps}`` (``fit_filter_bank``), every clip of ``segments``.
        delay: D, samples.
        block: the model's update interval in samples, or None to switch at the very sample.
        reaction: without ``block``, switch this many samples after the very sample instead: a perfect
            classifier that needs ``reaction − D`` samples of the new noise (``benchmarks/oracle_reaction.py``).

    Returns:
        float64 of shape ``(samples,)``.
    """
    if reaction < 0 or (reaction and block is not None):
        raise ValueError(f"reaction must be ≥ 0 samples and needs block None, got reaction={reaction}, block={block}")
    names = list(dict.fromkeys(segment.clip for segment in segments))
    drives = np.stack([controller_drive(sequence, filter_bank[name], delay) for name in names])
    playing = np.zeros(len(sequence), dtype=np.int64)
    for segment in segments:
        playing[segment.start : segment.stop] = names.index(segment.clip)
    if block is None:
        return drives[playing[np.maximum(np.arange(len(sequence)) - reaction, 0)], np.arange(len(sequence))]
    heard = playing[np.maximum(np.arange(-(-len(sequence) // block)) * block - delay, 0)]
    return glided_mix(drives, torch.from_numpy(np.eye(len(names))[heard]), block)


def glided_mix(drives: np.ndarray, weights: torch.Tensor, block: int) -> np.ndarray:
    """A bank's drives mixed by per-block weights that glide over each block as the model's do (``ramp_blocks``).

    Args:
        drives: each filter's drive over the whole sequence, shape ``(filters, samples)``.
        weights: shape ``(blocks, filters)``.

    Returns:
        float64 of shape ``(samples,)``.
    """
    per_sample = ramp_blocks(weights[None], block, drives.shape[1])[0].numpy()
    return (per_sample.T * drives).sum(0)


def bank_error_drive(
    sequence: np.ndarray, filter_bank: dict[str, np.ndarray], delay: int, block: int, window: int,
    sharpness: float = BANK_ERROR_SHARPNESS,
) -> np.ndarray:
    """The drive of a filter bank mixed by its filters' own recent errors alone, on a model's schedule: no network.

    Each block's weights are ``softmax(sharpness · bank_error_logits)`` over the newest ``window``
    samples its past holds (up to ``b·block − D``), gliding over the block as the model's do: what
    the model's mixing would be with its encoder silent and its bank as fitted. It tells how much of
    the model's figure the encoder adds.

    Args:
        sequence: the noise, shape ``(samples,)``; without a scene (the errors are judged on it).
        filter_bank: ``fit_filter_bank``'s ``{clip: controller taps}``.
        delay: D; block: the update interval; window: the samples judged; all in samples.

    Returns:
        float64 of shape ``(samples,)``.
    """
    bank = np.stack(list(filter_bank.values()))
    ends = block_ends(len(sequence), block, delay)
    logits = bank_error_logits(torch.as_tensor(sequence, dtype=torch.float64)[None], torch.as_tensor(bank), delay, window, ends)
    weights = torch.softmax(sharpness * logits, -1)[0]
    return glided_mix(np.stack([controller_drive(sequence, taps, delay) for taps in bank]), weights, block)


def method_drives(
    sequence: np.ndarray, segments: list[Segment], plant, library_filter: np.ndarray, filter_bank: dict[str, np.ndarray],
    delay: int, taps: int, model=None, oracle_bank: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Every method's drive over the whole sequence, each from its first sample, shape ``(samples,)`` each.

    ``wiener_library`` (``library_filter``), ``nlms`` without a scene or ``fxnlms`` in one (online from
    zero), ``wiener_oracle`` (``oracle_drive``), and with a model ``wiener_oracle_blocks`` (the same
    filters and a perfect classifier on the model's update schedule), for a model that mixes the bank by its
    errors too and no scene ``bank_by_errors`` (``bank_error_drive``), ``model`` and ``model_no_encoder`` (in the
    scene's closed loop, ``closed_loop_drive``).

    Args:
        plant: the ``acoustics.Plant``.
        library_filter: the optimal controller of all the training audio (``make_plant``'s).
        filter_bank: ``fit_filter_bank``'s, one filter per clip: the bank the model started from.
        model: the trained model, or None to leave its rows out.
        oracle_bank: the two oracles' filters, default ``filter_bank``; the benchmark gives them each
            clip's optimal controller (``optimal_bank``).
    """
    baselines = baseline_drives(plant, library_filter, delay, taps)
    adaptive = "nlms" if plant.is_identity else "fxnlms"
    oracle_bank = oracle_bank or filter_bank
    drives = {"wiener_library": baselines["wiener"](sequence), adaptive: baselines[adaptive](sequence),
              "wiener_oracle": oracle_drive(sequence, segments, oracle_bank, delay)}
    if model is not None:
        drives["wiener_oracle_blocks"] = oracle_drive(sequence, segments, oracle_bank, delay, model.block)
        window = int(model.config.bank_error_window_samples)
        if window and plant.is_identity:  # bank_error_drive judges the errors on the input, not at the ear
            drives["bank_by_errors"] = bank_error_drive(sequence, filter_bank, delay, model.block, window)
        drives["model"] = closed_loop_drive(model, sequence, plant)
        drives["model_no_encoder"] = closed_loop_drive(model, sequence, plant, use_encoder=False)
    return drives


def switching_comparison(
    model, clips: list[Clip], plant, library_filter: np.ndarray, filter_bank: dict[str, np.ndarray],
    switch_seconds: float = 2.0, switches: int | None = None, seed: int = 0,
) -> tuple[np.ndarray, dict[str, np.ndarray], list[Segment]]:
    """Every method over a switching sequence of the clips' held-out parts, at the ear.

    The oracles get each clip's optimal controller (``optimal_bank``).

    Args:
        clips: the library (at least two), as trained on.
        filter_bank: the bank the model started from (``fit_filter_bank``'s).
        switches: default ``default_switches(len(clips))``.

    Returns:
        ``(noise, anti_noise, segments)``: the sequence's noise at the ear, shape ``(samples,)``, each
        method's anti-noise there (``method_drives``), and the sequence's ``Segment`` s.
    """
    heldouts = {clip.name: clip.heldout for clip in clips}
    sequence, segments = switching_sequence(heldouts, switch_seconds, switches or default_switches(len(clips)), seed)
    drives = method_drives(sequence, segments, plant, library_filter, filter_bank, model.latency, model.filter_taps, model,
                           optimal_bank(clips, plant.scene, model.latency, model.filter_taps))
    return plant.noise_at_ear(sequence), {name: plant.anti_noise_at_ear(drive) for name, drive in drives.items()}, segments


def segment_nr_db(noise: np.ndarray, anti_noise: np.ndarray, segments: list[Segment]) -> np.ndarray:
    """NR of each segment in dB, shape ``(segments,)``; ``noise`` and ``anti_noise`` at the ear, shape ``(samples,)``."""
    return np.array([noise_reduction_db(noise[s.start : s.stop], anti_noise[s.start : s.stop]) for s in segments])


def after_switch_nr_db(
    noise: np.ndarray, anti_noise: np.ndarray, segments: list[Segment], seconds: float = AFTER_SWITCH_SECONDS
) -> np.ndarray:
    """NR in dB of the first ``seconds`` after each switch (each segment's start but the first), shape ``(switches,)``.

    A window never runs past its segment's end.
    """
    length = int(round(seconds * SAMPLE_RATE))
    return np.array([noise_reduction_db(noise[s.start : min(s.start + length, s.stop)],
                                                anti_noise[s.start : min(s.start + length, s.stop)]) for s in segments[1:]])


def switching_metrics(noise: np.ndarray, anti_noise: np.ndarray, segments: list[Segment]) -> dict:
    """``nr_db``, ``nr_db_median_segment``, ``nr_db_after_switch_1s``, ``segment_nr_db`` and ``window_nr_db_100ms``."""
    per_segment = segment_nr_db(noise, anti_noise, segments)
    return {
        "nr_db": noise_reduction_db(noise, anti_noise),
        "nr_db_median_segment": lower_median(per_segment),
        "nr_db_after_switch_1s": lower_median(after_switch_nr_db(noise, anti_noise, segments)),
        "segment_nr_db": per_segment.tolist(),
        "window_nr_db_100ms": segment_noise_reduction_db(noise, anti_noise, WINDOW_SECONDS).tolist(),
    }


def switching_records(noise: np.ndarray, anti_noise: dict[str, np.ndarray], segments: list[Segment], **fields) -> list[dict]:
    """One record per method: ``method``, ``switching_metrics``, the ``segments`` (as lists) and ``fields``.

    Args:
        noise: the sequence's noise at the ear, shape ``(samples,)``.
        anti_noise: ``{method: its anti-noise at the ear, same shape}``.
        fields: the setting, e.g. ``scene``, ``loudspeaker``, ``latency_ms`` (``plots.plot_switching`` needs those three).
    """
    return [{"method": method, **fields, **switching_metrics(noise, anti, segments), "segments": [list(s) for s in segments]}
            for method, anti in anti_noise.items()]
