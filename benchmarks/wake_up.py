"""The machine's own deadline misses: a paced loop that computes nothing, or the same fixed work every block.

Usage:
    python benchmarks/wake_up.py [--block-ms 8] [--minutes 1] [--work-ms 0] [--priority normal|fifo] [--out FILE]

The loop sleeps until each block's arrival, ``(i + 1)`` block periods from the start, as ``streaming.py --paced``
does. A block misses if the loop wakes after ``(i + 2)`` periods: the deadline a canceller's block has. What misses
here, every canceller on this machine misses too (``streaming.py``'s ``misses_at_wake_up``); a deployed canceller
runs on a machine whose scheduler keeps its audio thread's deadlines.

``--work-ms W`` then does the same work in every block, numpy only (a matrix product calibrated to take about W ms),
and records its wall and CPU time: identical work that now and then takes many times its median, even at real-time
priority (``--priority fifo``, where nothing else on the machine may take the core), is the machine's, not the
work's. ``streaming.py``'s misses that are not at the wake-up are set against it: work stretched by the machine is
counted as the thread's own CPU time here, where the guest is not told what the hypervisor took. ``--out`` writes the
result as JSON, with ``commit`` and ``command``.
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
from wav2vec2_anc.live import PRIORITIES, request_real_time_priority  # noqa: E402

WORK_SIZE = 64  # the work's matrices: small, so it stays in cache and allocates nothing


class FixedWork:
    """The same numpy work every call: ``repeats`` products of two fixed ``WORK_SIZE``² matrices into one buffer."""

    def __init__(self, work_ms: float):
        rng = np.random.default_rng(0)
        self.a, self.b = rng.standard_normal((2, WORK_SIZE, WORK_SIZE)) / WORK_SIZE
        self.out = np.empty((WORK_SIZE, WORK_SIZE))
        self.repeats = 1
        if work_ms > 0:  # calibrated on the median of a few calls
            times = [self.timed() for _ in range(20)]
            self.repeats = max(1, round(work_ms / (1e3 * float(np.median(times)))))

    def __call__(self) -> None:
        for _ in range(self.repeats):
            np.matmul(self.a, self.b, out=self.out)

    def timed(self) -> float:
        started = time.perf_counter()
        self()
        return time.perf_counter() - started


def paced_loop(block_ms: float, minutes: float, work: FixedWork | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How late the loop woke for each block, and the work's wall and CPU time there, ms (zeros without work), over
    ``minutes`` of blocks of ``block_ms``."""
    period = block_ms / 1000
    blocks = int(minutes * 60 / period)
    lateness, wall, cpu = np.zeros(blocks), np.zeros(blocks), np.zeros(blocks)
    start = time.perf_counter()
    for i in range(blocks):
        arrival = start + (i + 1) * period
        time.sleep(max(0.0, arrival - time.perf_counter()))
        woke, woke_cpu = time.perf_counter(), time.thread_time()
        lateness[i] = woke - arrival
        if work is not None:
            work()
            wall[i], cpu[i] = time.perf_counter() - woke, time.thread_time() - woke_cpu
    return 1e3 * lateness, 1e3 * wall, 1e3 * cpu


def wake_up_lateness(block_ms: float, minutes: float) -> np.ndarray:
    """How late the loop woke for each block, ms (0: on time), with nothing to compute."""
    return paced_loop(block_ms, minutes)[0]


def work_statistics(wall: np.ndarray, cpu: np.ndarray, block_ms: float) -> dict:
    """The fixed work's times, ms: median and worst, and the blocks where it took over twice its median
    (``stretched_work_wall_cpu_ms``: each one's wall and CPU time) or longer than the period."""
    median = float(np.median(wall))
    stretched = np.flatnonzero(wall > 2 * median)
    return {"work_ms_p50": round(median, 3), "work_ms_p99": round(float(np.percentile(wall, 99)), 3),
            "work_ms_max": round(float(wall.max()), 3), "work_over_period": int((wall > block_ms).sum()),
            "stretched_work_blocks": len(stretched),
            "stretched_work_wall_cpu_ms": [(round(float(wall[i]), 2), round(float(cpu[i]), 2)) for i in stretched[:200]]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--block-ms", type=float, default=8.0)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--work-ms", type=float, default=0.0, help="fixed numpy work each block, about this many ms")
    parser.add_argument("--priority", choices=PRIORITIES, default="normal",
                        help="the loop's thread: an ordinary one, or real-time (SCHED_FIFO) where the OS permits")
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()
    work = FixedWork(args.work_ms) if args.work_ms > 0 else None
    priority = request_real_time_priority() if args.priority == "fifo" else "normal"
    late, wall, cpu = paced_loop(args.block_ms, args.minutes, work)
    # A block misses when the loop woke past its deadline or its work ended past it.
    done_late = late + wall
    result = {"block_ms": args.block_ms, "minutes": args.minutes, "blocks": len(late), "priority": priority,
              "work_ms": args.work_ms, "wake_up_late_ms_p50": float(np.median(late)),
              "wake_up_late_ms_p99": float(np.percentile(late, 99)), "wake_up_late_ms_max": float(late.max()),
              "deadline_misses": int((done_late > args.block_ms).sum()),
              "misses_at_wake_up": int((late > args.block_ms).sum()),
              **(work_statistics(wall, cpu, args.block_ms) if work is not None else {}), **made_by}
    return emit(result, args.out)


if __name__ == "__main__":
    main()
