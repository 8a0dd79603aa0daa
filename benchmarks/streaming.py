"""Streaming benchmark: the streaming canceller judged as a deployed canceller is, by its worst blocks.

Usage:
    python benchmarks/streaming.py [--model scratch:tiny] [--minutes 10] [--block-ms 20] [--latency-ms 1]
                                   [--update-ms 50] [--encoder-update-ms 100] [--update-lag-ms 50]
                                   [--context-seconds 0.25] [--worker process|thread]
                                   [--backend torch|int8|onnx] [--paced] [--load-cores 0] [--threads 1]
                                   [--priority normal|fifo]
                                   [--scene none|room|bandpass] [--bank 17]
                                   [--device cpu] [--out FILE]

Generated pink noise arrives in blocks of ``--block-ms`` and goes through ``helpers.StreamingCanceller``. The model
is untrained (its weights do not change the compute); its encoder is the one named by ``--model``, run on
``--backend``. ``--scene room --bank 17`` gives it the shipped room model's audio path: a bank of 17 filters (the
optimal controller and 16 stretches) whose own errors, judged at the ear through Ŝ, join every block's gains; the
noise at the error microphone is fed beside the input. ``--update-ms``, ``--encoder-update-ms``, ``--update-lag-ms``
and ``--context-seconds`` are the model's ``block_ms`` (how often each block's filter is set),
``encoder_update_ms`` (how often the encoder computes an update), ``update_lag_ms``
(how much older the input of an update is than its block's own past) and ``CONTEXT_SECONDS``.

Two ways to run it:

- unpaced (default): blocks are fed as fast as they are processed, the encoder on the audio path, in one thread.
  A block's compute time includes the encoder's where an update falls in it.
- ``--paced``: blocks arrive at real-time pace, as a sound card delivers them: block ``i`` is complete at
  ``(i + 1)`` block periods and must be out by ``(i + 2)``. The encoder runs on a worker (``--worker``: a process
  of its own, the default, or a thread sharing the audio path's interpreter lock), live
  (``StreamingCanceller(live=True)``): an update not ready when its block begins is late (``late_updates``) and the
  previous filter plays on, so the worker competes with the audio path as it would live.

Per block the audio path's compute time (``process``) is recorded: median, 99th percentile and maximum in ms and
as a fraction of the block period, and ``deadline_misses``: blocks not out within their period (paced: finished
after their deadline, counting the wait behind a late block before them; unpaced: compute longer than the
period). Paced, ``misses_at_wake_up`` counts those of them where the loop was already past the deadline before the
block's compute began (woken late from its sleep by the machine): a loop with nothing to compute misses those too;
``other_missed_blocks_wall_cpu_ms`` gives each other miss's wall and CPU time in ``process``.
``real_time_factor`` is all compute, audio path and encoder, over the audio's time.
``--load-cores N`` keeps N other processes busy meanwhile (a real device runs other work too). ``--priority fifo``
runs the audio path's thread at real-time priority where the OS permits (``live.request_real_time_priority``; the
record's ``priority`` says what it got), as a deployed canceller's audio thread runs: a busy process then cannot take
its core while it has a block to compute. The process's
resident memory after each minute shows that the canceller keeps only the past it needs. ``--out`` writes the
result as JSON, with ``commit`` and ``command``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from suite import shaped_noise  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc.backends import BACKENDS  # noqa: E402
from wav2vec2_anc.live import PRIORITIES, block_statistics, request_real_time_priority  # noqa: E402


def resident_mb() -> float:
    """Current resident memory of this process, MB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 1e6


def busy(stop) -> None:
    """Keep one core busy until ``stop`` is set."""
    while not stop.is_set():
        sum(range(10_000))


def stream(canceller, audio, block: int, paced: bool, ear=None) -> tuple[int, int, list]:
    """Feed ``audio`` (and ``ear``, the noise at the error microphone, where the model hears it) to ``canceller`` in
    blocks of ``block`` samples; return ``(deadline misses, misses at the wake-up, missed blocks)``.

    Paced, block ``i`` is handed over once it has all arrived, at ``(i + 1)`` periods from the start, and misses if
    its anti-noise is out after ``(i + 2)``. A miss at the wake-up is one where the loop woke from its sleep (or
    finished the block before) already past that deadline: it would have missed with nothing to compute. Each
    other missed block is ``(wall ms, CPU ms)`` of its ``process``: CPU time far below the wall time is time the
    thread was off the processor.
    """
    period = block / helpers.SAMPLE_RATE
    misses, woke_late, missed, start = 0, 0, [], time.perf_counter()
    for i, first in enumerate(range(0, len(audio), block)):
        deadline = start + (i + 2) * period
        if paced:
            time.sleep(max(0.0, start + (i + 1) * period - time.perf_counter()))
        woke, cpu = time.perf_counter(), time.thread_time()
        canceller.process(audio[first : first + block], None if ear is None else ear[first : first + block])
        if paced and time.perf_counter() > deadline:
            misses += 1
            if woke > deadline:
                woke_late += 1
            else:
                missed.append((round(1e3 * (time.perf_counter() - woke), 2), round(1e3 * (time.thread_time() - cpu), 2)))
    return misses, woke_late, missed


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="scratch:tiny")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--block-ms", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=float, default=1.0)
    parser.add_argument("--update-ms", type=float, default=helpers.AdvancedSettings.block_ms, help="the model's block_ms")
    parser.add_argument("--encoder-update-ms", type=float, default=helpers.AdvancedSettings.encoder_update_ms,
                        help="the model's encoder_update_ms (default: the shipped one)")
    parser.add_argument("--update-lag-ms", type=float, default=helpers.AdvancedSettings.update_lag_ms,
                        help="the model's update_lag_ms (default: the shipped one)")
    parser.add_argument("--context-seconds", type=float, default=0.25, help="the model's CONTEXT_SECONDS")
    parser.add_argument("--scene", default="none", choices=["none", "room", "bandpass"],
                        help="an acoustic scene: the model is fed the noise at the error microphone too")
    parser.add_argument("--bank", type=int, default=0,
                        help="a filter bank of this many filters whose own errors join each block's gains (0: none)")
    parser.add_argument("--bank-error-ms", type=float, default=helpers.AdvancedSettings.bank_error_ms,
                        help="the newest ms on which the bank's errors are judged")
    parser.add_argument("--backend", default="torch", choices=BACKENDS, help="where the encoder runs")
    parser.add_argument("--paced", action="store_true", help="blocks at real-time pace, the encoder on a worker")
    parser.add_argument("--worker", default="process", choices=["process", "thread"],
                        help="paced: where the encoder's worker runs (default: process)")
    parser.add_argument("--load-cores", type=int, default=0, help="other processes keeping this many cores busy")
    parser.add_argument("--priority", choices=PRIORITIES, default="normal",
                        help="the audio path's thread: an ordinary one (default), or real-time (SCHED_FIFO) where the "
                             "OS permits, as a deployed canceller's (the worker and the load stay ordinary)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch's threads (default 1: the audio path and the worker each keep one core)")
    parser.add_argument("--device", default=None, help="torch device; default cuda when available, else cpu")
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()
    import torch

    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    head = helpers.head_settings(args.latency_ms, args.update_ms, args.context_seconds, args.update_lag_ms,
                                 args.encoder_update_ms)
    minute = shaped_noise(60.0, 1.0, seed=0)  # one minute, looped: generating 10 minutes is not the point
    plant, ear = None, None
    if args.scene != "none":  # the model judges its bank at the ear, through Ŝ: the audio path's heaviest case
        plant, _ = helpers.make_plant(args.scene, "linear", minute, head["latency_samples"], head.get("filter_taps", 512))
        ear = plant.noise_at_ear(minute).astype("float32")
    bank = {f"filter_{j}": None for j in range(args.bank)}
    model = helpers.build_model(args.model, **head, **helpers.plant_settings(plant),
                                **helpers.bank_settings(bank, args.bank_error_ms, plant)).to(device)
    canceller = helpers.StreamingCanceller(model, worker=args.worker if args.paced else False, live=args.paced,
                                           backend=None if args.backend == "torch" else args.backend)
    block = helpers.latency_samples(args.block_ms)
    stop = multiprocessing.Event()
    load = [multiprocessing.Process(target=busy, args=(stop,), daemon=True) for _ in range(args.load_cores)]
    for process in load:
        process.start()
    # After the worker and the load have started: what they start from this thread inherits its priority.
    priority = request_real_time_priority() if args.priority == "fifo" else "normal"
    memory, misses, woke_late, missed = [resident_mb()], 0, 0, []
    try:
        for done in range(math.ceil(args.minutes)):
            audio = minute[: int(min(1.0, args.minutes - done) * len(minute))]
            more, late, blocks = stream(canceller, audio, block, args.paced, None if ear is None else ear[: len(audio)])
            misses, woke_late, missed = misses + more, woke_late + late, missed + blocks
            memory.append(resident_mb())
            print(f"minute {done + 1}: {block_statistics(canceller.block_seconds, args.block_ms)}", flush=True)
    finally:
        stop.set()
        for process in load:
            process.join()
        canceller.close()
    audio_seconds = canceller.position / helpers.SAMPLE_RATE
    statistics = block_statistics(canceller.block_seconds, args.block_ms)
    result = {
        "model": args.model,
        "backend": args.backend,
        "scene": args.scene,
        "bank": args.bank,
        "bank_error_ms": args.bank_error_ms if model.config.bank_error_window_samples else 0.0,
        "paced": args.paced,
        "worker": args.worker if args.paced else None,
        "load_cores": args.load_cores,
        "priority": priority,
        "threads": args.threads,
        "minutes": args.minutes,
        "block_ms": args.block_ms,
        "latency_ms": args.latency_ms,
        "update_ms": args.update_ms,
        "encoder_update_ms": args.encoder_update_ms,
        "update_lag_ms": args.update_lag_ms,
        "context_seconds": args.context_seconds,
        "device": torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else device,
        "real_time_factor": (canceller.compute_seconds + (canceller.encoder_seconds if args.paced else 0.0))
        / audio_seconds,
        "audio_path_real_time_factor": canceller.compute_seconds / audio_seconds,
        "encoder_ms_mean": round(1e3 * canceller.encoder_seconds / max(canceller.updates, 1), 3),
        **statistics,
        "slow_blocks": statistics["deadline_misses"],  # compute longer than the period
        "deadline_misses": misses if args.paced else statistics["deadline_misses"],
        "misses_at_wake_up": woke_late,
        "other_missed_blocks_wall_cpu_ms": missed,
        "updates": canceller.updates,
        "late_updates": canceller.late_updates,
        "late_update_fraction": canceller.late_updates / max(canceller.updates, 1),
        "resident_mb_after_each_minute": [round(m, 1) for m in memory],
        "cpu_count": len(os.sched_getaffinity(0)),
        **made_by,
    }
    return emit(result, args.out)


def emit(result: dict, out: str | None) -> dict:
    """Print ``result`` and write it as JSON to ``out`` (if given); return it."""
    print(result)
    if out:
        Path(out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
