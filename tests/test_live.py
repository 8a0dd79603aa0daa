"""python -m wav2vec2_anc.live without a sound card: a stand-in stream calls the callback at real-time pace."""

import builtins
import os
import re
import sys
import threading
import time
import types

import numpy as np
import pytest
from conftest import predictable_noise, predicting_model

from wav2vec2_anc import live
from wav2vec2_anc.audio_io import SAMPLE_RATE
from wav2vec2_anc.inference import StreamingCanceller

BLOCK = 320  # 20 ms


class PacedStream:
    """Stands in for ``sounddevice.Stream``: while open, a thread calls ``callback`` with ``audio``'s blocks, one per
    block period, and keeps each block's input and what the callback wrote to ``outdata``."""

    opened: list = []  # every stream made, newest last

    def __init__(self, callback, blocksize, audio=None, **settings):
        self.callback, self.blocksize, self.settings = callback, blocksize, settings
        self.audio = predictable_noise(4 * SAMPLE_RATE, seed=3) if audio is None else audio
        self.inputs, self.outputs = [], []
        self.stop = threading.Event()
        PacedStream.opened.append(self)

    def __enter__(self):
        self.thread = threading.Thread(target=self._deliver)
        self.thread.start()
        return self

    def _deliver(self):
        size = self.blocksize
        indata = np.empty((size, 1), np.float32)  # one buffer, overwritten each tick, as a driver does
        due = time.monotonic()
        for start in range(0, len(self.audio) - size + 1, size):
            if self.stop.is_set():
                break
            indata[:, 0] = self.audio[start : start + size]
            outdata = np.full((size, 1), np.nan, np.float32)  # unwritten samples would show
            self.callback(indata, outdata, size, None, 0)
            self.inputs.append(indata[:, 0].copy())
            self.outputs.append(outdata[:, 0].copy())
            due += size / SAMPLE_RATE
            self.stop.wait(max(0.0, due - time.monotonic()))

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def fake_sounddevice():
    return types.SimpleNamespace(Stream=PacedStream, query_devices=lambda: "  0 Stand-in duplex, ALSA (1 in, 1 out)",
                                 PortAudioError=type("PortAudioError", (Exception,), {}))


def test_live_output_is_the_offline_output_one_block_later():
    audio = predictable_noise(4 * SAMPLE_RATE, seed=3)
    model = predicting_model(16, 4000, audio, update_lag=800)
    canceller = StreamingCanceller(model, live=True)
    late_after = []  # late updates after each process() call, in order
    process = canceller.process
    canceller.process = lambda block: (process(block), late_after.append(canceller.late_updates))[0]
    lines = []
    try:
        totals = live.run(canceller, lambda callback, blocksize: PacedStream(callback, blocksize, audio), BLOCK,
                          seconds=2.5, report=lines.append, real_time=True)
    finally:
        canceller.close()
    stream = PacedStream.opened[-1]
    assert totals["overruns"] == 0 and totals["ticks"] == len(stream.outputs) >= 100
    offline = StreamingCanceller(model)
    expected = [offline.process(block) for block in stream.inputs]
    assert max(np.abs(block).max() for block in expected) > 1e-3  # the model really answers
    # Tick j plays the anti-noise of tick j − 1's input (one block of delay), or silence where it was not ready.
    # Block 0's update reads only the silence before the stream, so it is first asked for by the first process()
    # and is late (the shared filter plays): that start differs from offline until the canceller's whole state
    # (warmup samples of past, after model blocks 0 and 1) has moved past it. From there on every tick is compared,
    # up to any later late update, which would change the gains from then on (with the tiny model on the worker
    # and 50-ms updates there is normally none, and then every tick to the end is compared).
    assert late_after[0] <= 1
    settled = -(-(2 * model.block + model.warmup) // BLOCK)  # 43 ticks, 0.86 s
    compared = next((i for i, late in enumerate(late_after) if late > late_after[0]), len(late_after))
    assert compared >= settled + 20
    np.testing.assert_array_equal(stream.outputs[0], 0)
    silent = 0
    for tick in range(settled, min(compared + 1, len(stream.outputs))):
        if not np.any(stream.outputs[tick]):
            silent += 1
        else:
            np.testing.assert_allclose(stream.outputs[tick], expected[tick - 1], rtol=0, atol=1e-5)
    assert silent <= totals["underruns"] <= 5  # an underrun is a silent tick, never a wrong one
    # One line of statistics a second, each over that second's blocks.
    assert len(lines) == 2 and [line.split(" s:")[0].strip() for line in lines] == ["1", "2"]
    blocks = [int(re.search(r"(\d+) blocks", line).group(1)) for line in lines]
    assert all(30 <= count <= 60 for count in blocks)
    assert all("deadline misses" in line and "late updates" in line and "underruns" in line for line in lines)


def test_the_callback_counts_underruns_and_overruns_and_never_plays_a_stale_block():
    loop = live.LiveLoop(canceller=None, queue_blocks=2)
    outdata = np.ones((4, 1), np.float32)
    for _ in range(3):  # nothing processes: the third input finds the queue full
        loop.callback(np.ones((4, 1), np.float32), outdata, 4, None, 0)
    assert (loop.ticks, loop.overruns, loop.underruns) == (3, 1, 2)  # tick 0 has no block before it, by design
    assert not outdata.any()
    loop.outputs.put_nowait((1, np.full(4, 7, np.float32)))  # finished too late for tick 2
    loop.outputs.put_nowait((2, np.full(4, 9, np.float32)))
    loop.callback(np.ones((4, 1), np.float32), outdata, 4, None, 0)
    assert (outdata[:, 0] == 9).all() and loop.underruns == 2
    loop.outputs.put_nowait((2, np.full(4, 9, np.float32)))
    loop.callback(np.ones((4, 1), np.float32), outdata, 4, None, 0)
    assert not outdata.any() and loop.underruns == 3


def test_block_statistics():
    stats = live.block_statistics([0.001] * 99 + [0.030], block_ms=20.0)
    assert stats["blocks"] == 100 and stats["block_ms_p50"] == 1.0 and stats["block_ms_max"] == 30.0
    assert stats["deadline_misses"] == 1 and stats["max_of_period"] == 1.5
    assert stats["block_ms_p99"] == pytest.approx(1.29)  # between the 99th and 100th sorted values, linearly
    assert live.block_statistics([], 20.0)["blocks"] == 0


def test_main_runs_on_a_stream_and_prints_the_framing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice())
    totals = live.main(["--model", "scratch:tiny", "--backend", "torch", "--seconds", "1.2", "--block-ms", "10"])
    stream = PacedStream.opened[-1]
    assert stream.blocksize == 160
    assert stream.settings == dict(samplerate=SAMPLE_RATE, channels=1, dtype="float32", latency="low", device=(None, None))
    out = capsys.readouterr().out
    assert "10-50 ms" in out and "not acoustic cancellation" in out and "sub-millisecond" in out
    assert len(re.findall(r"^\s+1 s: \d+ blocks", out, re.MULTILINE)) == 1 and "total:" in out
    assert totals["blocks"] > 0 and totals["ticks"] >= totals["blocks"]


def test_arguments_and_list_devices(monkeypatch, capsys):
    args = live.build_parser().parse_args([])
    assert (args.block_ms, args.backend, args.seconds, args.input, args.output) == (20.0, None, None, None, None)
    args = live.build_parser().parse_args(["--reference", "3", "--output", "USB Audio", "--backend", "onnx"])
    assert (args.input, args.output, args.backend) == (3, "USB Audio", "onnx")
    with pytest.raises(SystemExit):
        live.build_parser().parse_args(["--backend", "cuda"])
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice())
    assert live.main(["--list-devices"]) is None  # no --model needed
    assert "Stand-in duplex" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        live.main([])
    assert "--model is required" in capsys.readouterr().err


def test_a_model_that_hears_the_error_microphone_is_refused(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice())
    monkeypatch.setattr("wav2vec2_anc.model.build_model", lambda name: types.SimpleNamespace(needs_ear_noise=True))
    with pytest.raises(SystemExit):
        live.main(["--model", "some/dir"])
    assert "error microphone" in capsys.readouterr().err


@pytest.mark.parametrize("failure", [ImportError("No module named 'sounddevice'"), OSError("PortAudio library not found")])
def test_missing_sounddevice_or_portaudio_says_how_to_install(monkeypatch, capsys, failure):
    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "sounddevice":
            raise failure
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", failing_import)
    with pytest.raises(SystemExit) as exit_:
        live.main(["--list-devices"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "pip install -r requirements-extras.txt" in err and "apt-get install libportaudio2" in err and str(failure) in err


def test_real_time_priority_is_what_the_thread_got(monkeypatch):
    """The calling thread alone runs at SCHED_FIFO when the OS grants it (here: root); refused, it runs on as it was."""
    seen = {}

    def ask():
        seen["answer"] = live.request_real_time_priority()
        seen["policy"] = os.sched_getscheduler(0)
        seen["priority"] = os.sched_getparam(0).sched_priority

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join()
    assert seen["answer"] in ("fifo", "normal")
    assert (seen["policy"] == os.SCHED_FIFO) == (seen["answer"] == "fifo")
    if seen["answer"] == "fifo":
        assert seen["priority"] == live.REAL_TIME_PRIORITY
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # this thread, which did not ask, is as it was

    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert live.request_real_time_priority() == "normal"
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
