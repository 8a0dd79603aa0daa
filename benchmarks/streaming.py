"""Streaming benchmark: real-time factor and memory of the streaming canceller on a long input.

Usage:
    python benchmarks/streaming.py [--model scratch:tiny] [--minutes 10] [--block-ms 20] [--latency-ms 1]
                                   [--update-ms 50] [--context-seconds 0.25] [--device cuda] [--out FILE]

Streams generated pink noise through ``helpers.StreamingCanceller`` in blocks and reports the
real-time factor (compute time over audio time) and the process's resident memory after each
minute of audio: flat memory means the canceller keeps only the past it needs. The model is
untrained (its weights do not change the compute); the encoder is the one named by ``--model``.
``--block-ms`` is the size of the blocks fed in; ``--update-ms`` and ``--context-seconds`` are the
model's own ``BLOCK_MS`` (how often the encoder runs) and ``CONTEXT_SECONDS`` (what it hears).
``--device`` is where the model runs: the GPU when there is one, else the CPU.

A deployed canceller is judged by its worst blocks, not its average: each block's compute time is recorded, and the
median, 99th percentile and maximum are reported in ms and as a fraction of the block period, with
``deadline_misses``, the blocks whose processing took longer than the block period (fed as fast as they are
processed, not paced). ``--out`` writes the result as JSON, with ``commit`` and ``command``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from suite import shaped_noise  # noqa: E402

import helpers  # noqa: E402


def resident_mb() -> float:
    """Current resident memory of this process, MB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 1e6


def block_statistics(block_seconds: list[float], block_ms: float) -> dict:
    """The blocks' compute times against their period: median, 99th percentile and maximum (ms, and as a fraction of
    the period), and ``deadline_misses``, how many took longer than the period."""
    import numpy as np

    times_ms = 1e3 * np.asarray(block_seconds)
    p50, p99, worst = (float(np.percentile(times_ms, 50)), float(np.percentile(times_ms, 99)), float(times_ms.max()))
    return {"blocks": len(times_ms), "block_ms_p50": round(p50, 3), "block_ms_p99": round(p99, 3),
            "block_ms_max": round(worst, 3), "p99_of_period": round(p99 / block_ms, 3),
            "max_of_period": round(worst / block_ms, 3), "deadline_misses": int(np.sum(times_ms > block_ms))}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="scratch:tiny")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--block-ms", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=float, default=1.0)
    parser.add_argument("--update-ms", type=float, default=50.0, help="the model's BLOCK_MS")
    parser.add_argument("--context-seconds", type=float, default=0.25, help="the model's CONTEXT_SECONDS")
    parser.add_argument("--device", default=None, help="torch device; default cuda when available, else cpu")
    parser.add_argument("--out", help="write the result here as JSON")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()
    import torch
    from tqdm.auto import tqdm

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = helpers.build_model(args.model, **helpers.head_settings(args.latency_ms, args.update_ms, args.context_seconds))
    model.to(device)
    canceller = helpers.StreamingCanceller(model)
    block = helpers.latency_samples(args.block_ms)
    minute = shaped_noise(60.0, 1.0, seed=0)  # one minute, looped: generating 10 minutes is not the point
    memory = [resident_mb()]
    left = int(args.minutes * len(minute))
    for _ in tqdm(range(math.ceil(args.minutes)), desc="minutes streamed", unit="min"):
        for start in range(0, min(len(minute), left), block):
            canceller.process(minute[start : min(start + block, left)])
        left -= len(minute)
        memory.append(resident_mb())
    result = {
        "model": args.model,
        "minutes": args.minutes,
        "block_ms": args.block_ms,
        "latency_ms": args.latency_ms,
        "update_ms": args.update_ms,
        "context_seconds": args.context_seconds,
        "device": torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else device,
        "real_time_factor": canceller.real_time_factor,
        **block_statistics(canceller.block_seconds, args.block_ms),
        "resident_mb_after_each_minute": [round(m, 1) for m in memory],
        **made_by,
    }
    print(result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
