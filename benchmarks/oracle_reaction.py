"""How fast a noise classifier must react for the filter bank to stay within reach of the switching oracle.

Usage:
    python benchmarks/oracle_reaction.py [--clips DIR] [--latency-ms 1,5] [--heard-ms 1,2,5,10,15,20,25,30,40,60,80]
                                         [--switch-seconds 3] [--out oracle_reaction.json]

On the switching benchmark's library and sequence (``switching.py``'s defaults), it runs the bank of optimal
filters, one per clip, switched by a perfect classifier: ``wiener_oracle`` switches at the very sample a
new clip starts, before any of it can have reached a causal canceller at latency D; a causal classifier
can switch D samples later at the earliest, and later still by the time it needs to hear the new noise.
For each ``--heard-ms`` t it switches D + t after each switch (``switching.oracle_drive(reaction=…)``) and
reports ``nr_db_median_segment`` and ``nr_db_after_switch_1s``, beside the exact oracle's (``heard_ms``
null). No model is trained (seconds on 2 cores). The issue's "goal beyond", the model within 1 dB of
``wiener_oracle``, asks for a classifier as fast as the largest t whose row is within 1 dB of it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from switching import library_clips, load_library  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc.switching import (  # noqa: E402
    default_switches,
    optimal_bank,
    oracle_drive,
    switching_metrics,
    switching_sequence,
)


def reaction_records(clips: list[helpers.Clip], latencies_ms: list[float], heard_ms: list[float],
                     switch_seconds: float, taps: int = 512, seed: int = 0) -> list[dict]:
    """One record per latency × reaction: ``latency_ms``, ``heard_ms`` (None: the exact oracle), ``reaction_samples``
    and the two switching figures in dB, without a scene."""
    sequence, segments = switching_sequence({c.name: c.heldout for c in clips}, switch_seconds,
                                            default_switches(len(clips)), seed)
    records = []
    for latency_ms in latencies_ms:
        delay = helpers.latency_samples(latency_ms)
        plant, _ = helpers.make_plant("none", "linear", helpers.training_audio(clips), delay, taps)
        bank = optimal_bank(clips, plant.scene, delay, taps)
        for heard in [None, *heard_ms]:
            reaction = 0 if heard is None else delay + helpers.latency_samples(heard)
            metrics = switching_metrics(sequence, oracle_drive(sequence, segments, bank, delay, reaction=reaction), segments)
            records.append(dict(latency_ms=latency_ms, heard_ms=heard, reaction_samples=reaction,
                                nr_db_median_segment=metrics["nr_db_median_segment"],
                                nr_db_after_switch_1s=metrics["nr_db_after_switch_1s"]))
    return records


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", help="folder of audio files, the library (default: the switching suite)")
    parser.add_argument("--latency-ms", default="1,5", help="comma-separated latencies in ms (default: 1,5)")
    parser.add_argument("--heard-ms", default="1,2,5,10,15,20,25,30,40,60,80",
                        help="comma-separated times after D at which the classifier switches, ms "
                             "(default: 1,2,5,10,15,20,25,30,40,60,80)")
    parser.add_argument("--switch-seconds", type=float, default=3.0, help="seconds between switches (default: 3)")
    parser.add_argument("--out", default="oracle_reaction.json", help="JSON records (default: oracle_reaction.json)")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()
    clips = library_clips(load_library(args.clips, 20.0))
    records = reaction_records(clips, [float(v) for v in args.latency_ms.split(",")],
                               [float(v) for v in args.heard_ms.split(",")], args.switch_seconds)
    records = helpers.with_provenance(records, made_by)
    Path(args.out).write_text(helpers.dumps_strict(records))
    print("| latency ms | switches at | median segment dB | 1 s after a switch dB |\n|---|---|---|---|")
    for r in records:
        at = "the very sample (wiener_oracle)" if r["heard_ms"] is None else f"D + {r['heard_ms']:g} ms"
        print(f"| {r['latency_ms']:g} | {at} | {r['nr_db_median_segment']:.1f} | {r['nr_db_after_switch_1s']:.1f} |")
    return records


if __name__ == "__main__":
    main()
