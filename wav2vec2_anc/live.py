"""Run a canceller live on a sound card: the reference microphone in, the anti-noise out, timed block by block.

Usage:
    python -m wav2vec2_anc.live --model DIR [--backend torch|int8|onnx] [--worker process|thread] [--block-ms 20] [--input DEVICE]
                                [--output DEVICE] [--seconds N] [--list-devices]

DIR is a ``save_pretrained`` folder of a trained canceller (``scratch:tiny`` times the loop without one). The input
device (``--reference`` is the same option) hears the noise; the output device plays the anti-noise; without
them, the default duplex device does both. Every second one line gives the blocks' compute times (p50/p99/max
of ``StreamingCanceller.process``), deadline misses, late encoder updates, underruns and overruns. Needs the
optional python-sounddevice and the PortAudio library.
"""

from __future__ import annotations

import argparse
import math
import os
import queue
import threading
import time

import numpy as np

from .audio_io import SAMPLE_RATE
from .backends import BACKENDS
from .config import latency_samples
from .encoder_worker import WORKERS

HONEST_NOTE = (
    "Note: a PC's audio path (driver buffers, ADC and DAC) adds 10-50 ms of latency, far more than any acoustic lead a\n"
    "reference microphone has over the ear (about 0.3 ms per 10 cm of air), so this demonstrates real-time processing,\n"
    "not acoustic cancellation. Real ANC needs a codec or DSP with sub-millisecond I/O.")
SOUNDDEVICE_MISSING = ("live audio needs python-sounddevice and the PortAudio library: pip install -r "
                       "requirements-extras.txt, and the PortAudio library (apt-get install libportaudio2)")
EAR_REFUSAL = ("this model judges its filter bank at the error microphone of an acoustic scene (needs_ear_noise); "
               "this demo hears only the reference microphone and does not wire an error microphone")
# Blocks each queue holds: a few periods of slack for the processing thread; more would only hide a backlog.
QUEUE_BLOCKS = 4
# The audio path's real-time priority (SCHED_FIFO, 1–99): above every ordinary thread, so a busy process cannot take
# its core while it has a block to compute; below the kernel's own real-time threads (99).
REAL_TIME_PRIORITY = 50
# The command lines' --priority: what ``request_real_time_priority`` returns.
PRIORITIES = ("fifo", "normal")


def request_real_time_priority(priority: int = REAL_TIME_PRIORITY) -> str:
    """Ask the OS to run the calling thread ahead of ordinary ones, as audio servers run their audio threads.

    Linux's ``SCHED_FIFO`` at ``priority``, for this thread only (threads and processes it starts later inherit it,
    so start the encoder's worker first: it must stay an ordinary process). It needs the permission: root,
    ``CAP_SYS_NICE`` or an ``rtprio`` limit (``/etc/security/limits.conf``).

    Returns:
        ``"fifo"`` if granted, else ``"normal"`` (no permission, or not Linux): the thread runs on as it was.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError):
        return "normal"
    return "fifo"


def block_statistics(block_seconds, block_ms: float) -> dict:
    """The blocks' compute times against their period.

    Args:
        block_seconds: each block's compute time, s (a sequence, e.g. ``StreamingCanceller.block_seconds``).
        block_ms: the block period, ms: a block slower than that missed its deadline.

    Returns:
        ``blocks``; median, 99th percentile and maximum (``block_ms_p50/p99/max``, ms, and ``p99_of_period``,
        ``max_of_period`` as fractions of the period); ``deadline_misses``. All zero for no blocks.
    """
    times_ms = 1e3 * np.asarray(list(block_seconds), dtype=np.float64)
    some = times_ms if times_ms.size else np.zeros(1)  # no blocks: zeros, where numpy's percentile would raise
    p50, p99, worst = float(np.percentile(some, 50)), float(np.percentile(some, 99)), float(some.max())
    return {"blocks": int(times_ms.size), "block_ms_p50": round(p50, 3), "block_ms_p99": round(p99, 3),
            "block_ms_max": round(worst, 3), "p99_of_period": round(p99 / block_ms, 3),
            "max_of_period": round(worst / block_ms, 3), "deadline_misses": int(np.sum(times_ms > block_ms))}


class LiveLoop:
    """The audio callback and the processing thread of a live canceller, joined by two bounded queues.

    The callback (the audio driver's thread) never computes and never waits, as PortAudio asks: it puts the
    reference heard at tick ``j`` in ``inputs`` and plays the anti-noise of tick ``j − 1`` if the processing thread
    has finished it, else silence (an ``underrun``). So every block's anti-noise plays exactly one block after its
    input was heard (plus the sound card's own buffering) or not at all: a late block played late would be out of
    step with the noise, and a backlog would add its delay for good. A full input queue drops the block
    (an ``overrun``) rather than block the callback.
    """

    def __init__(self, canceller, queue_blocks: int = QUEUE_BLOCKS, real_time: bool = False):
        self.canceller = canceller
        self.real_time = real_time  # the processing thread asks for real-time priority
        self.priority = "normal"  # what it got
        self.inputs: queue.Queue = queue.Queue(queue_blocks)  # (tick, reference block (samples,)) to process
        self.outputs: queue.Queue = queue.Queue(queue_blocks)  # (tick, its anti-noise (samples,)) to play
        self.ticks = self.underruns = self.overruns = self.device_flags = 0
        self.times: list[float] = []  # process() times, s, since the last report
        self.reported: dict[str, int] = {}  # the counters at the last report
        self.lock = threading.Lock()  # guards ``times``; never taken by the callback
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def callback(self, indata, outdata, frames, time, status) -> None:
        """sounddevice's callback: ``indata``, ``outdata`` of shape ``(frames, channels)``; channel 0 is the reference."""
        if status:
            self.device_flags += 1  # the driver's own over/underflows (sounddevice.CallbackFlags)
        tick, self.ticks = self.ticks, self.ticks + 1
        try:
            self.inputs.put_nowait((tick, indata[:, 0].copy()))  # the driver reuses indata's memory
        except queue.Full:
            self.overruns += 1
        anti_noise = None
        while not self.outputs.empty():  # the newest finished block (older ones missed their tick); one reader
            done, block = self.outputs.get_nowait()
            anti_noise = block if done == tick - 1 else None
        if anti_noise is not None and len(anti_noise) == frames:
            outdata[:] = anti_noise[:, None]
        else:
            outdata.fill(0)
            self.underruns += tick > 0  # tick 0 has no block before it, by design

    def process_blocks(self) -> None:
        """The processing thread: each input block through ``canceller.process``, in order, until ``stop``."""
        if self.real_time:
            self.priority = request_real_time_priority()
        try:
            while not self.stop.is_set():
                try:
                    tick, block = self.inputs.get(timeout=0.05)
                except queue.Empty:
                    continue
                anti_noise = self.canceller.process(block)
                with self.lock:
                    self.times.append(self.canceller.block_seconds[-1])
                try:
                    self.outputs.put_nowait((tick, anti_noise))
                except queue.Full:
                    pass  # the callback has stopped taking blocks: nothing would play it
        except BaseException as error:  # noqa: B036 - handed to the main thread, which raises it
            self.error = error
            self.stop.set()

    def report_line(self, block_ms: float, second: int) -> str:
        """One line of statistics over the blocks processed since the last call (about a second)."""
        with self.lock:
            times, self.times = self.times, []
        stats = block_statistics(times, block_ms)
        counts = {"late updates": self.canceller.late_updates, "underruns": self.underruns, "overruns": self.overruns}
        new = {name: count - self.reported.get(name, 0) for name, count in counts.items()}
        self.reported = counts
        return (f"{second:4d} s: {stats['blocks']} blocks, process() p50 {stats['block_ms_p50']:.2f} / p99 "
                f"{stats['block_ms_p99']:.2f} / max {stats['block_ms_max']:.2f} ms of {block_ms:g} ms; deadline misses "
                f"{stats['deadline_misses']}, " + ", ".join(f"{name} {n}" for name, n in new.items()))

    def totals(self, block_ms: float) -> dict:
        """The whole run: ``block_statistics`` of every block and the counters."""
        canceller = self.canceller
        return {**block_statistics(canceller.block_seconds, block_ms), "ticks": self.ticks, "underruns": self.underruns,
                "overruns": self.overruns, "device_flags": self.device_flags, "updates": canceller.updates,
                "late_updates": canceller.late_updates, "priority": self.priority}


def run(canceller, stream_factory, block_samples: int, seconds: float | None = None, report=print,
        queue_blocks: int = QUEUE_BLOCKS, real_time: bool = False) -> dict:
    """Run ``canceller`` on a stream for ``seconds`` (None: until Ctrl-C), reporting one line a second.

    Args:
        canceller: a ``StreamingCanceller`` (``live=True``, so a slow encoder update never stalls a block).
        stream_factory: ``(callback, blocksize) →`` a context manager that calls
            ``callback(indata, outdata, frames, time, status)`` every ``blocksize`` samples at 16 kHz while open,
            like ``sounddevice.Stream``. The anti-noise of tick ``j``'s input fills tick ``j + 1``'s ``outdata``.
        block_samples: the stream's block, samples; its period is the deadline of each ``process`` call.
        report: takes each line of statistics.
        real_time: the processing thread asks for real-time priority (``request_real_time_priority``).

    Returns:
        ``LiveLoop.totals``. An error on the processing thread is raised here.
    """
    loop = LiveLoop(canceller, queue_blocks, real_time)
    block_ms = 1e3 * block_samples / SAMPLE_RATE
    worker = threading.Thread(target=loop.process_blocks, name="live-processing", daemon=True)
    worker.start()
    end = math.inf if seconds is None else seconds
    try:
        with stream_factory(loop.callback, block_samples):
            started, second = time.monotonic(), 1
            while not loop.stop.wait(max(0.0, started + min(second, end) - time.monotonic())) and second <= end:
                report(loop.report_line(block_ms, second))
                second += 1
    except KeyboardInterrupt:
        pass  # Ctrl-C: the stream is closed on the way out, and the run summed up
    finally:
        loop.stop.set()
        worker.join()
    if loop.error is not None:
        raise loop.error
    return loop.totals(block_ms)


def import_sounddevice():
    """The sounddevice module, or ImportError saying how to install it (the package, or the PortAudio library)."""
    try:
        import sounddevice
    except (ImportError, OSError) as error:  # sounddevice raises OSError when the PortAudio library is missing
        raise ImportError(f"{SOUNDDEVICE_MISSING} ({error})") from error
    return sounddevice


def sounddevice_streams(sounddevice, reference=None, output=None):
    """A ``stream_factory`` for ``run``: mono float32 16-kHz ``sounddevice.Stream``s, reference in, anti-noise out."""

    def open_stream(callback, blocksize: int):
        # latency="low": the device's low-latency buffering; the default "high" suits playback, not a loop.
        return sounddevice.Stream(samplerate=SAMPLE_RATE, blocksize=blocksize, channels=1, dtype="float32",
                                  latency="low", callback=callback, device=(reference, output))

    return open_stream


def build_parser() -> argparse.ArgumentParser:
    device = lambda text: int(text) if text.strip().isdigit() else text  # sounddevice's: a number or part of a name
    parser = argparse.ArgumentParser(prog="python -m wav2vec2_anc.live", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a save_pretrained folder of the trained canceller (scratch:tiny: timing only)")
    parser.add_argument("--backend", choices=BACKENDS, help="where the encoder runs (default: the fastest installed)")
    parser.add_argument("--worker", choices=WORKERS, default="process",
                        help="where the encoder's updates run: a process of their own (default), so the audio path "
                             "never waits for the encoder's interpreter lock, or a thread")
    parser.add_argument("--block-ms", type=float, default=20.0, help="the sound card's block, ms (default: 20)")
    parser.add_argument("--input", "--reference", dest="input", type=device, help="the reference microphone's device")
    parser.add_argument("--output", type=device, help="the device that plays the anti-noise")
    parser.add_argument("--seconds", type=float, help="how long to run (default: until Ctrl-C)")
    parser.add_argument("--priority", choices=PRIORITIES, default="fifo",
                        help="the processing thread's: real-time (SCHED_FIFO) where the OS permits (default), or "
                             "an ordinary thread's")
    parser.add_argument("--list-devices", action="store_true", help="print the sound devices and exit")
    return parser


def main(argv=None) -> dict | None:
    """Run from the command line; a missing package, model or device exits with status 2 and the reason."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.list_devices and args.model is None:
        parser.error("--model is required (a save_pretrained folder; scratch:tiny to time the loop alone)")
    try:
        sounddevice = import_sounddevice()
    except ImportError as error:
        parser.error(str(error))
    if args.list_devices:
        print(sounddevice.query_devices())
        return None
    from .backends import fastest_backend
    from .inference import StreamingCanceller
    from .model import build_model

    block_samples = max(1, latency_samples(args.block_ms))
    import torch

    # One thread each for the audio path and the encoder's worker: torch's default, a pool per core for each,
    # would have them fight over the cores (benchmarks/streaming.py --threads).
    torch.set_num_threads(1)
    try:
        model = build_model(args.model)
        if model.needs_ear_noise:
            raise ValueError(EAR_REFUSAL)
        backend = args.backend or fastest_backend()
        canceller = StreamingCanceller(model, worker=args.worker, live=True, backend=backend)
    except (OSError, ValueError, ImportError) as error:
        parser.error(str(error))
    print(HONEST_NOTE)
    print(f"model {args.model}, encoder on {backend}, blocks of {block_samples} samples: each one's anti-noise plays "
          f"one block after it was heard. " + ("Ctrl-C stops." if args.seconds is None else f"{args.seconds:g} s."))
    try:
        totals = run(canceller, sounddevice_streams(sounddevice, args.input, args.output), block_samples, args.seconds,
                     real_time=args.priority == "fifo")
    except sounddevice.PortAudioError as error:
        parser.error(f"the sound device refused the stream ({error}); see --list-devices")
    finally:
        canceller.close()
    print(f"total: {totals['blocks']} blocks, p99 {totals['block_ms_p99']:.2f} ms, {totals['deadline_misses']} deadline "
          f"misses, {totals['late_updates']} of {totals['updates']} updates late, {totals['underruns']} underruns, "
          f"{totals['overruns']} overruns, {totals['device_flags']} driver over/underflows; processing thread "
          f"priority {totals['priority']}")
    return totals


if __name__ == "__main__":
    main()
