"""FxNLMS's step: the tuned step (``fxnlms.tune_fxnlms_step``) against every fixed μ of a sweep, clip by clip.

Usage:
    python benchmarks/fxnlms_step.py [--suite tuning] [--scene room,bandpass] [--latency-ms 0,1]
                                     [--steps 0.001,0.003,0.01,0.03,0.1] [--taps 512] [--out fxnlms_step.json]

For each clip of the suite (``cancellation.load_suite``: the tuning set by default, on which the rule was chosen),
each scene and latency, FxNLMS runs online from zero over the whole clip with Ŝ identified as ``make_plant``
identifies it, and is scored by its NR at the ear over the held-out last 30 %: once at each fixed μ of ``--steps``
and once at the step ``make_plant`` tuned live on the first 70 % (``fxnlms_step``). The shipped rule holds where
the tuned step is within 3 dB of the best fixed μ on every clip. Records (strict JSON, with ``commit`` and
``command``): ``clip``, ``scene``, ``latency_ms``, ``step`` (a number, or ``"tuned"``), ``step_size``, ``nr_db``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cancellation import HELDOUT_FRACTION, load_suite  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc.fxnlms import FXNLMS_STEP_GRID, fxnlms_drive  # noqa: E402
from wav2vec2_anc.pairs import split_heldout  # noqa: E402

SHORTFALL_DB = 3.0


def step_records(clips: dict[str, np.ndarray], scenes: list[str], latencies_ms: list[float], steps: list[float],
                 taps: int) -> list[dict]:
    """One record per clip × scene × latency × step (each fixed μ, then ``"tuned"``)."""
    records = []
    for name, audio in clips.items():
        train, _ = split_heldout(audio, HELDOUT_FRACTION)
        for scene in scenes:
            for latency_ms in latencies_ms:
                delay = helpers.latency_samples(latency_ms)
                plant, _ = helpers.make_plant(scene, "linear", train, delay, taps)
                noise = plant.noise_at_ear(audio)[len(train):]
                for step, step_size in [*((s, s) for s in steps), ("tuned", plant.fxnlms_step)]:
                    drive = fxnlms_drive(audio, plant.scene, plant.secondary_estimate, delay, taps, step_size)
                    with np.errstate(all="ignore"):
                        nr_db = helpers.noise_reduction_db(noise, plant.anti_noise_at_ear(drive)[len(train):])
                    records.append(dict(clip=name, scene=scene, latency_ms=latency_ms, step=step, step_size=step_size,
                                        nr_db=nr_db if np.isfinite(nr_db) or nr_db > 0 else -np.inf))
    return records


def step_table(records: list[dict]) -> tuple[str, bool]:
    """A markdown table (one row per clip × scene × latency: NR at each μ, the tuned step and its shortfall), and
    whether the tuned step is within ``SHORTFALL_DB`` of the best fixed μ everywhere."""
    steps = list(dict.fromkeys(r["step"] for r in records if r["step"] != "tuned"))
    cell = lambda value: "div." if value == -np.inf else f"{value:.1f}"  # noqa: E731
    lines = ["| scene | ms | clip | " + " | ".join(f"μ {s:g}" for s in steps) + " | tuned μ | tuned | below best |",
             "|---|---|---|" + "---|" * (len(steps) + 3)]
    holds = True
    for key in dict.fromkeys((r["scene"], r["latency_ms"], r["clip"]) for r in records):
        rows = {r["step"]: r for r in records if (r["scene"], r["latency_ms"], r["clip"]) == key}
        best = max(rows[s]["nr_db"] for s in steps)
        tuned = rows["tuned"]
        shortfall = best - tuned["nr_db"]
        holds &= bool(shortfall <= SHORTFALL_DB)
        lines.append(f"| {key[0]} | {key[1]:g} | {key[2]} | " + " | ".join(cell(rows[s]["nr_db"]) for s in steps)
                     + f" | {tuned['step_size']:g} | {cell(tuned['nr_db'])} | {shortfall:.1f} |")
    return "\n".join(lines), holds


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="tuning", choices=["tuning", "test"], help="the clips (default: tuning)")
    parser.add_argument("--scene", default="room,bandpass", help="comma-separated scenes (default: room,bandpass)")
    parser.add_argument("--latency-ms", default="0,1", help="comma-separated latencies (default: 0,1)")
    parser.add_argument("--steps", default=",".join(f"{s:g}" for s in FXNLMS_STEP_GRID),
                        help="comma-separated fixed steps μ to sweep (default: the tuning grid)")
    parser.add_argument("--taps", type=int, default=helpers.HEAD_DEFAULTS["filter_taps"], help="FxNLMS's taps (default: 512)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each generated clip (default: 20)")
    parser.add_argument("--out", default="fxnlms_step.json", help="JSON records (default: fxnlms_step.json)")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()
    records = step_records(load_suite(None, args.seconds, args.suite), args.scene.split(","),
                           [float(v) for v in args.latency_ms.split(",")], [float(v) for v in args.steps.split(",")],
                           args.taps)
    table, holds = step_table(records)
    print(table)
    print(f"\nTuned step within {SHORTFALL_DB:g} dB of the best fixed μ on every clip: {holds}")
    records = helpers.with_provenance(records, made_by)
    Path(args.out).write_text(helpers.dumps_strict(records))
    return records


if __name__ == "__main__":
    main()
