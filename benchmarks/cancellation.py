"""Cancellation benchmark: every method, every metric, on generated noises and real recordings.

Usage:
    python benchmarks/cancellation.py [--clips DIR] [--out results.json] [--model MODEL_NAME]
                                      [--max-steps N] [--latency-ms 0] [--plot results.png]

For each clip it trains on the first 70 % and evaluates on the last 30 %. With no ``--clips`` it runs
the built-in suite: white, pink and brown noise, 50 Hz mains hum with harmonics and a drifting engine
tone (20 s each, generated), and the recordings in ``sample_audio/``. It prints a table and writes a
JSON list of records, one per clip × method × latency.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import helpers  # noqa: E402

HELDOUT_FRACTION = 0.3
METHODS = ("negation", "nlms", "wiener", "model", "model_no_encoder")


def load_suite(clips_dir: str | None, seconds: float) -> dict[str, np.ndarray]:
    """The clips to run: the files of ``clips_dir``, or the generated suite plus ``sample_audio/``."""
    if clips_dir:
        return {path.name: helpers.load_audio(path) for path in helpers.list_audio_files(clips_dir)}
    suite = helpers.synthetic_suite(seconds)
    suite.update({path.name: helpers.load_audio(path) for path in helpers.list_audio_files(helpers.SAMPLE_AUDIO_DIR)})
    return suite


def evaluate(clip: str, method: str, latency_ms: float, noise: np.ndarray, inverse: np.ndarray, **extra) -> dict:
    """One record: every metric of ``inverse`` against ``noise`` (both the held-out part)."""
    segments = helpers.segment_nr_summary(noise, inverse)
    return {
        "clip": clip,
        "method": method,
        "latency_ms": latency_ms,
        "nr_db": helpers.noise_reduction_db(noise, inverse),
        "nr_db_median_1s": segments["median"],
        "nr_db_worst10_1s": segments["worst10"],
        "nr_dba": helpers.a_weighted_noise_reduction_db(noise, inverse),
        "octave_nr_db": {str(k): v for k, v in helpers.octave_band_noise_reduction_db(noise, inverse).items()},
        "train_seconds": extra.pop("train_seconds", 0.0),
        "model_name": extra.pop("model_name", None),
        **extra,
    }


def run_clip(name: str, audio: np.ndarray, latencies_ms: list[float], args, work_dir: Path) -> list[dict]:
    """All methods at all latencies on one clip."""
    train, heldout = helpers.split_heldout(audio, HELDOUT_FRACTION)
    split = len(train)
    records = []
    for latency_ms in latencies_ms:
        delay = helpers.latency_samples(latency_ms)
        records.append(evaluate(name, "negation", latency_ms, heldout, helpers.delayed_negation(audio, delay)[split:]))

        start = time.perf_counter()
        # Run online over the whole clip, as a controller would: it has adapted by the held-out part.
        nlms = helpers.nlms_inverse(audio, delay)[split:]
        records.append(evaluate(name, "nlms", latency_ms, heldout, nlms, run_seconds=time.perf_counter() - start))

        start = time.perf_counter()
        coefficients = helpers.fit_wiener_predictor(train, delay)
        fit_seconds = time.perf_counter() - start
        wiener = helpers.wiener_inverse(audio, coefficients, delay)[split:]
        records.append(evaluate(name, "wiener", latency_ms, heldout, wiener, train_seconds=fit_seconds))

        if delay == 0:
            records.extend(run_model(name, train, heldout, audio, latency_ms, args, work_dir))
    return records


def run_model(name, train, heldout, audio, latency_ms, args, work_dir: Path) -> list[dict]:
    """Fine-tune the model on the training part and evaluate it, with and without the encoder's features."""
    segment_samples = helpers.SAMPLE_RATE
    clip = helpers.Clip(name=name, train=train, heldout=heldout)
    dataset = helpers.build_dataset([clip], segment_samples, segment_samples // 4)
    model = helpers.build_model(args.model, seed=args.seed)
    settings = helpers.TrainSettings(
        output_dir=str(work_dir / name), max_steps=args.max_steps, seed=args.seed, save_steps=args.max_steps,
        logging_steps=max(1, args.max_steps // 10), progress_bar=False,
    )
    start = time.perf_counter()
    helpers.train(model, dataset, settings)
    train_seconds = time.perf_counter() - start
    common = dict(train_seconds=train_seconds, model_name=args.model)
    return [
        evaluate(name, "model", latency_ms, heldout, helpers.predict_inverse(model, heldout), **common),
        evaluate(name, "model_no_encoder", latency_ms, heldout,
                 helpers.predict_inverse(model, heldout, use_encoder=False), **common),
    ]


def format_table(records: list[dict]) -> str:
    """A fixed-width table: one row per clip × latency × method."""
    header = f"{'clip':<24} {'ms':>4} {'method':<17} {'NR dB':>7} {'med 1s':>7} {'worst10':>7} {'dBA':>7} {'train s':>7}"
    rows = [header, "-" * len(header)]
    for r in records:
        rows.append(
            f"{r['clip']:<24} {r['latency_ms']:>4g} {r['method']:<17} {r['nr_db']:>7.1f} {r['nr_db_median_1s']:>7.1f} "
            f"{r['nr_db_worst10_1s']:>7.1f} {r['nr_dba']:>7.1f} {r['train_seconds']:>7.1f}"
        )
    return "\n".join(rows)


def plot_results(records: list[dict], path: Path, latency_ms: float = 0.0, ceiling_db: float = 80.0):
    """Bars of the median 1-s NR per clip and method at one latency; exact cancellation is drawn at the ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in records if r["latency_ms"] == latency_ms]
    clips = list(dict.fromkeys(r["clip"] for r in rows))
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(12, 4.5))
    for i, method in enumerate(methods):
        values = [next((r["nr_db_median_1s"] for r in rows if r["clip"] == c and r["method"] == method), np.nan) for c in clips]
        ax.bar(np.arange(len(clips)) + i * width, np.minimum(values, ceiling_db), width, label=method)
    ax.axhline(30, color="k", linestyle="--", linewidth=0.8, label="30 dB target")
    ax.set_xticks(np.arange(len(clips)) + 0.4 - width / 2, clips, rotation=20, ha="right")
    ax.set_ylabel(f"median 1-s noise reduction (dB, capped at {ceiling_db:g})")
    ax.set_title(f"Held-out noise reduction at {latency_ms:g} ms latency")
    ax.legend(ncol=len(methods) + 1, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", help="folder of audio files (default: the built-in suite)")
    parser.add_argument("--out", default="results.json", help="JSON records (default: results.json)")
    parser.add_argument("--model", default="scratch:tiny", help="MODEL_NAME for the model rows (default: scratch:tiny)")
    parser.add_argument("--max-steps", type=int, default=1000, help="fine-tuning steps per clip (default: 1000)")
    parser.add_argument("--latency-ms", default="0", help="comma-separated latencies in ms (default: 0)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each generated clip (default: 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", help="also save a bar chart of the results here (PNG)")
    args = parser.parse_args(argv)
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    latencies = [float(v) for v in args.latency_ms.split(",")]
    suite = load_suite(args.clips, args.seconds)
    records = []
    with tempfile.TemporaryDirectory() as work_dir:
        for name, audio in tqdm(suite.items(), desc="clips", unit="clip"):
            records.extend(run_clip(name, audio, latencies, args, Path(work_dir)))
    print(format_table(records))
    Path(args.out).write_text(json.dumps(records, indent=1))
    if args.plot:
        plot_results(records, Path(args.plot), latencies[0])
    return records


if __name__ == "__main__":
    main()
