"""Switching benchmark: one canceller trained on a library of noises, judged on a sequence that switches between them.

Usage:
    python benchmarks/switching.py [--clips DIR] [--latency-ms 1,5] [--scene none] [--loudspeaker linear]
                                   [--switch-seconds 3] [--switches N] [--out switching.json]
                                   [--model scratch:tiny] [--max-steps 500] [--with-white]
                                   [--plot switching.png] [--seed 0]

The library is the files of ``--clips``, or by default the switching suite (``suite.switching_suite``:
mains hum at 50 and 60 Hz, engines at three fixed speeds, brown noise; ``--with-white`` adds white
noise) plus ``sample_audio/engine_honda_nsx.wav``. Every clip is scaled to an RMS of 0.1, so no clip
outweighs another in the closed-form fits by being louder, and split: the first 70 % trains, the last
30 % is held out. ONE model is trained on the training parts of all of them, the notebook's way
(``cancellation.fine_tune``: the ``"wiener"`` start with the library-wide optimal controller as the
shared filter, held fixed; every file gives the same number of training pairs, ``pairs.build_dataset``).

The test sequence (``switching_sequence``) cycles through the clips' held-out parts in a seeded order,
switching clip every ``--switch-seconds``, each segment scaled to the same RMS at the reference microphone.

What each method sees: the sequence, from its first sample, and nothing else, as a deployed canceller
would. No method is told where the switches are or which noise plays, except ``wiener_oracle``, which is
told both (that is what makes it the oracle). At a switch the online filters carry their adaptation, the
model its context window and the fixed filters their taps over from the noise before; the first
segment is a cold start for every method alike. Methods, at the same latency and scene:

- ``wiener_library``: one optimal causal linear controller fitted on all the training audio end to end
  (``fit_wiener_controller`` with the scene's true S), the model's shared filter;
- ``nlms`` without a scene, ``fxnlms`` in one: online from zero weights through the whole sequence;
- ``wiener_oracle``: during each segment, the optimal controller fitted on that segment's own clip's
  training audio: a filter bank with a perfect noise classifier that switches at the very sample;
- ``model`` and ``model_no_encoder`` (its shared filter alone): the model's drive over the whole sequence.

Every figure is at the ear (``Plant.noise_at_ear``, ``Plant.anti_noise_at_ear``), as in
``evaluation.heldout_inverses``. Records (strict JSON, ``helpers.dumps_strict``), one per method ×
latency × scene × loudspeaker: ``nr_db`` (whole sequence), ``nr_db_median_segment``,
``nr_db_after_switch_1s`` (the median over switches of the NR in the first second after each),
``segment_nr_db`` (per segment), ``window_nr_db_100ms`` (per 100 ms, for the plot), ``segments``
(``[clip, start, stop, source offset]``, samples), ``train_seconds``, ``model_name`` and the setting.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cancellation import fine_tune  # noqa: E402
from suite import at_rms, switching_suite  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc.audio_io import list_audio_files  # noqa: E402
from wav2vec2_anc.baselines import fxnlms_drive  # noqa: E402
from wav2vec2_anc.metrics import segment_noise_reduction_db  # noqa: E402
from wav2vec2_anc.pairs import split_heldout  # noqa: E402

HELDOUT_FRACTION = 0.3
CLIP_RMS = 0.1
MIN_SWITCHES = 8
WINDOW_SECONDS = 0.1  # the plot's NR windows
AFTER_SWITCH_SECONDS = 1.0
METHODS = ("wiener_library", "nlms", "fxnlms", "wiener_oracle", "model", "model_no_encoder")


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


# ── the library and the test sequence (pure) ──


def load_library(clips_dir: str | None, seconds: float, seed: int = 0, with_white: bool = False) -> dict[str, np.ndarray]:
    """The clips, each scaled to ``CLIP_RMS``: the files of ``clips_dir``, or the switching suite plus the Honda sample."""
    if clips_dir:
        library = {path.name: helpers.load_audio(path) for path in list_audio_files(clips_dir)}
    else:
        library = switching_suite(seconds, seed, with_white)
        library[helpers.DEFAULT_SAMPLE.name] = helpers.load_audio(helpers.DEFAULT_SAMPLE)
    return {name: at_rms(audio, CLIP_RMS) for name, audio in library.items()}


def library_clips(library: dict[str, np.ndarray], heldout_fraction: float = HELDOUT_FRACTION) -> list[helpers.Clip]:
    """Each clip split into its training head and held-out tail (``pairs.split_heldout``)."""
    return [helpers.Clip(name, *split_heldout(audio, heldout_fraction)) for name, audio in library.items()]


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
    length = int(round(switch_seconds * helpers.SAMPLE_RATE))
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


# ── the methods ──


def fit_filter_bank(clips: list[helpers.Clip], scene, delay: int, taps: int) -> dict[str, np.ndarray]:
    """Each clip's optimal causal linear controller, fitted on its own training part: ``{name: w of shape (taps,)}``."""
    return {clip.name: helpers.fit_wiener_controller(clip.train, scene, delay, taps) for clip in clips}


def oracle_drive(sequence: np.ndarray, segments: list[Segment], filter_bank: dict[str, np.ndarray], delay: int) -> np.ndarray:
    """The drive of a filter bank switched by a perfect classifier: during each segment, its clip's filter.

    The filters all run over the whole sequence, so at a switch the newly chosen one's taps already
    hold the samples before it, as a bank of filters running in parallel would.

    Returns:
        float64 of shape ``(samples,)``.
    """
    drives = {name: helpers.controller_drive(sequence, filter_bank[name], delay) for name in {s.clip for s in segments}}
    drive = np.zeros(len(sequence))
    for segment in segments:
        drive[segment.start : segment.stop] = drives[segment.clip][segment.start : segment.stop]
    return drive


def method_drives(
    sequence: np.ndarray, segments: list[Segment], plant, library_filter: np.ndarray, filter_bank: dict[str, np.ndarray],
    delay: int, taps: int, model=None,
) -> dict[str, np.ndarray]:
    """Every method's drive over the whole sequence, shape ``(samples,)`` each (see the module's docstring).

    Args:
        library_filter: the optimal controller of all the training audio (``make_plant``'s).
        filter_bank: ``fit_filter_bank``'s.
        model: the trained model, or None to leave its two rows out.
    """
    drives = {"wiener_library": helpers.controller_drive(sequence, library_filter, delay)}
    if plant.is_identity:
        drives["nlms"] = helpers.nlms_inverse(sequence, delay, taps)
    else:
        drives["fxnlms"] = fxnlms_drive(sequence, plant.scene, plant.secondary_estimate, delay, taps, eta=plant.eta)
    drives["wiener_oracle"] = oracle_drive(sequence, segments, filter_bank, delay)
    if model is not None:
        drives["model"] = helpers.predict_inverse(model, sequence)
        drives["model_no_encoder"] = helpers.predict_inverse(model, sequence, use_encoder=False)
    return drives


# ── the figures ──


def lower_median(values) -> float:
    """The median as one of the values themselves (the lower of the middle two), so ∞ never turns into NaN."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.percentile(values, 50, method="lower")) if len(values) else float("nan")


def segment_nr_db(noise: np.ndarray, anti_noise: np.ndarray, segments: list[Segment]) -> np.ndarray:
    """NR of each segment in dB, shape ``(segments,)``; ``noise`` and ``anti_noise`` at the ear, shape ``(samples,)``."""
    return np.array([helpers.noise_reduction_db(noise[s.start : s.stop], anti_noise[s.start : s.stop]) for s in segments])


def after_switch_nr_db(
    noise: np.ndarray, anti_noise: np.ndarray, segments: list[Segment], seconds: float = AFTER_SWITCH_SECONDS
) -> np.ndarray:
    """NR in dB of the first ``seconds`` after each switch (each segment's start but the first), shape ``(switches,)``.

    A window never runs past its segment's end.
    """
    length = int(round(seconds * helpers.SAMPLE_RATE))
    return np.array([helpers.noise_reduction_db(noise[s.start : min(s.start + length, s.stop)],
                                                anti_noise[s.start : min(s.start + length, s.stop)]) for s in segments[1:]])


def switching_metrics(noise: np.ndarray, anti_noise: np.ndarray, segments: list[Segment]) -> dict:
    """``nr_db``, ``nr_db_median_segment``, ``nr_db_after_switch_1s``, ``segment_nr_db`` and ``window_nr_db_100ms``."""
    per_segment = segment_nr_db(noise, anti_noise, segments)
    return {
        "nr_db": helpers.noise_reduction_db(noise, anti_noise),
        "nr_db_median_segment": lower_median(per_segment),
        "nr_db_after_switch_1s": lower_median(after_switch_nr_db(noise, anti_noise, segments)),
        "segment_nr_db": per_segment.tolist(),
        "window_nr_db_100ms": segment_noise_reduction_db(noise, anti_noise, WINDOW_SECONDS).tolist(),
    }


# ── a run ──


def run_setting(clips: list[helpers.Clip], sequence: np.ndarray, segments: list[Segment], latency_ms: float, args,
                work_dir: Path, scene: str = "none", loudspeaker: str = "linear") -> list[dict]:
    """Train one model on every clip's training part and judge every method on the sequence, at the ear.

    Returns:
        One record per method.
    """
    delay = helpers.latency_samples(latency_ms)
    plant, library_filter = helpers.make_plant(scene, loudspeaker, helpers.training_audio(clips), delay,
                                               args.filter_taps, args.rt60)
    run_dir = work_dir / f"{scene}_{loudspeaker}_{latency_ms:g}ms".replace(":", "").replace("/", "_")
    model, train_seconds = fine_tune(clips, latency_ms, args, run_dir, plant, library_filter)
    filter_bank = fit_filter_bank(clips, plant.scene, delay, args.filter_taps)
    drives = method_drives(sequence, segments, plant, library_filter, filter_bank, delay, args.filter_taps, model)
    noise = plant.noise_at_ear(sequence)
    records = []
    for method, drive in drives.items():
        trained = method.startswith("model")
        records.append({
            "method": method, "latency_ms": latency_ms, "scene": plant.scene.name, "loudspeaker": loudspeaker,
            "eta": plant.eta, **switching_metrics(noise, plant.anti_noise_at_ear(drive), segments),
            "train_seconds": train_seconds if trained else 0.0, "model_name": args.model if trained else None,
            "switch_seconds": args.switch_seconds, "segments": [list(s) for s in segments],
        })
    return records


def format_tables(records: list[dict]) -> str:
    """Markdown: per scene, loudspeaker and latency, one row per method (dB), then each method's median NR per clip."""
    cell = lambda value: "∞" if value == float("inf") else f"{value:.1f}"
    blocks = []
    for setting in dict.fromkeys((r["scene"], r["loudspeaker"], r["latency_ms"]) for r in records):
        rows = [r for r in records if (r["scene"], r["loudspeaker"], r["latency_ms"]) == setting]
        lines = [f"**{setting[2]:g} ms, scene `{setting[0]}`, loudspeaker `{setting[1]}`** "
                 f"({len(rows[0]['segments']) - 1} switches every {rows[0]['switch_seconds']:g} s; NR in dB)", "",
                 "| method | whole sequence | median segment | 1 s after a switch | train s |", "|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {cell(r['nr_db'])} | {cell(r['nr_db_median_segment'])} | "
                  f"{cell(r['nr_db_after_switch_1s'])} | {r['train_seconds']:.0f} |" for r in rows]
        clips = list(dict.fromkeys(s[0] for s in rows[0]["segments"]))
        lines += ["", "| median segment NR by clip | " + " | ".join(clips) + " |", "|---|" + "---|" * len(clips)]
        for r in rows:
            by_clip = [cell(lower_median([v for v, s in zip(r["segment_nr_db"], r["segments"]) if s[0] == clip]))
                       for clip in clips]
            lines.append(f"| {r['method']} | " + " | ".join(by_clip) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def plot_switching(records: list[dict], path: Path, floor_db: float = -10.0, ceiling_db: float = 60.0):
    """NR in 100-ms windows against time, one line per method, one panel per setting; switches dashed, clips named."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys((r["scene"], r["loudspeaker"], r["latency_ms"]) for r in records))
    fig, axes = plt.subplots(len(settings), 1, figsize=(14, 3.8 * len(settings)), squeeze=False)
    for ax, setting in zip(axes[:, 0], settings):
        rows = [r for r in records if (r["scene"], r["loudspeaker"], r["latency_ms"]) == setting]
        for r in rows:
            values = np.clip(np.asarray(r["window_nr_db_100ms"], dtype=np.float64), floor_db, ceiling_db)
            ax.plot((np.arange(len(values)) + 0.5) * WINDOW_SECONDS, values, label=r["method"], linewidth=1.0)
        for clip, start, stop, _ in rows[0]["segments"]:
            ax.axvline(start / helpers.SAMPLE_RATE, color="k", linestyle="--", linewidth=0.6)
            ax.text((start + stop) / 2 / helpers.SAMPLE_RATE, ceiling_db, Path(clip).stem, ha="center", va="top", fontsize=6)
        ax.set_ylim(floor_db, ceiling_db + 2)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("NR in 100 ms (dB)")
        ax.set_title(f"{setting[2]:g} ms, scene {setting[0]}, loudspeaker {setting[1]} "
                     f"(values clipped to [{floor_db:g}, {ceiling_db:g}] dB)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=len(rows), loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", help="folder of audio files, the library (default: the switching suite)")
    parser.add_argument("--out", default="switching.json", help="JSON records (default: switching.json)")
    parser.add_argument("--model", default="scratch:tiny", help="MODEL_NAME for the model rows (default: scratch:tiny)")
    parser.add_argument("--max-steps", type=int, default=500, help="fine-tuning steps per latency and scene (default: 500)")
    parser.add_argument("--latency-ms", default="1,5", help="comma-separated latencies in ms (default: 1,5)")
    parser.add_argument("--scene", default="none", help="comma-separated scenes: none, room, bandpass or a file (default: none)")
    parser.add_argument("--loudspeaker", default="linear", help="comma-separated: linear, sat:R (default: linear)")
    parser.add_argument("--switch-seconds", type=float, default=3.0, help="seconds between switches (default: 3)")
    parser.add_argument("--switches", type=int, help=f"how many switches (default: every clip twice, at least {MIN_SWITCHES})")
    parser.add_argument("--with-white", action="store_true", help="add white noise to the generated library")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each generated clip (default: 20)")
    parser.add_argument("--shared-filter", default="wiener", choices=["wiener", "learned"],
                        help="the model's shared filter: the library-wide controller, held fixed, or learned from zero")
    parser.add_argument("--filter-taps", type=int, default=helpers.HEAD_DEFAULTS["filter_taps"],
                        help="taps of the model's filter, the Wiener controllers and (Fx)NLMS (default: 512)")
    parser.add_argument("--update-ms", type=float, default=50.0, help="the notebook's BLOCK_MS (default: 50)")
    parser.add_argument("--context-seconds", type=float, default=0.25, help="the notebook's CONTEXT_SECONDS (default: 0.25)")
    parser.add_argument("--rt60", type=float, default=0.2, help="the room scene's reverberation time, s (default: 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="for the generated clips, the order and the model")
    parser.add_argument("--plot", help="also save NR against time across the switches here (PNG)")
    args = parser.parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    clips = library_clips(load_library(args.clips, args.seconds, args.seed, args.with_white))
    switches = args.switches or default_switches(len(clips))
    sequence, segments = switching_sequence({c.name: c.heldout for c in clips}, args.switch_seconds, switches, args.seed)
    records = []
    with tempfile.TemporaryDirectory() as work_dir:
        for latency_ms in [float(v) for v in args.latency_ms.split(",")]:
            for scene in args.scene.split(","):
                for loudspeaker in args.loudspeaker.split(","):
                    start = time.perf_counter()
                    records.extend(run_setting(clips, sequence, segments, latency_ms, args, Path(work_dir), scene, loudspeaker))
                    print(f"{latency_ms:g} ms, {scene}, {loudspeaker}: {time.perf_counter() - start:.0f} s", flush=True)
                    Path(args.out).write_text(helpers.dumps_strict(records))  # an interrupted run keeps what it finished
    print(format_tables(records))
    if args.plot:
        plot_switching(records, Path(args.plot))
    return records


if __name__ == "__main__":
    main()
