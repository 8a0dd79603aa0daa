"""The machine's own deadline misses: a paced loop with nothing to compute, how late it wakes from its sleep.

Usage:
    python benchmarks/wake_up.py [--block-ms 8] [--minutes 1] [--out FILE]

The loop sleeps until each block's arrival, ``(i + 1)`` block periods from the start, as ``streaming.py --paced``
does, and computes nothing. A block misses if the loop wakes after ``(i + 2)`` periods: the deadline a canceller's
block has. What misses here, every canceller on this machine misses too (``streaming.py``'s ``misses_at_wake_up``);
a deployed canceller runs on a machine whose scheduler keeps its audio thread's deadlines. ``--out`` writes the result
as JSON, with ``commit`` and ``command``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streaming import emit  # noqa: E402

import helpers  # noqa: E402


def wake_up_lateness(block_ms: float, minutes: float) -> np.ndarray:
    """How late the loop woke for each block, ms (0: on time), over ``minutes`` of blocks of ``block_ms``."""
    period = block_ms / 1000
    blocks = int(minutes * 60 / period)
    lateness = np.zeros(blocks)
    start = time.perf_counter()
    for i in range(blocks):
        arrival = start + (i + 1) * period
        time.sleep(max(0.0, arrival - time.perf_counter()))
        lateness[i] = time.perf_counter() - arrival
    return 1e3 * lateness


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--block-ms", type=float, default=8.0)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()
    late = wake_up_lateness(args.block_ms, args.minutes)
    result = {"block_ms": args.block_ms, "minutes": args.minutes, "blocks": len(late),
              "wake_up_late_ms_p50": float(np.median(late)), "wake_up_late_ms_p99": float(np.percentile(late, 99)),
              "wake_up_late_ms_max": float(late.max()), "deadline_misses": int((late > args.block_ms).sum()),
              **made_by}
    return emit(result, args.out)


if __name__ == "__main__":
    main()
