"""Where a streaming canceller's encoder updates run: inline on the audio path, or beside it on a thread or in a
process of their own.

A thread shares the audio path's interpreter lock: the encoder's Python between its operators (hundreds of module
calls an update) then delays the audio path's own small operators, doubling its time per block with the
base-size encoder (``benchmarks/README.md``, "Real time"). A process has its own lock and core; it costs a start
of a few seconds (torch and the model loaded there) and a copy of each context window there and its features back.

Each takes a window, ``(context_samples,)`` float32, and returns a ``concurrent.futures.Future`` of its features,
``(hidden,)``; ``encoder_seconds`` adds up the encoder's compute time wherever it ran.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from concurrent.futures import Future

import torch

WORKERS = ("inline", "thread", "process")

_MODEL = None  # in a process worker: the model whose encoder it runs


class InlineEncoder:
    """The encoder's updates computed where they are asked for, on the audio path: a future already done."""

    def __init__(self, model):
        self.model = model
        self.encoder_seconds = 0.0

    def encode(self, window: torch.Tensor) -> torch.Tensor:
        """The features of one window, ``(context,)`` → ``(hidden,)``, here and now."""
        started = time.perf_counter()
        with torch.no_grad():  # no_grad is per thread
            features = self.model.encoder_features(window[None])[0]
        self.encoder_seconds += time.perf_counter() - started
        return features

    def submit(self, window: torch.Tensor) -> Future:
        done = Future()
        done.set_result(self.encode(window))
        return done

    def close(self) -> None:
        pass


class ThreadEncoder(InlineEncoder):
    """The encoder's updates on one worker thread of this process."""

    def __init__(self, model):
        super().__init__(model)
        self.pool = concurrent.futures.ThreadPoolExecutor(1, "encoder")

    def submit(self, window: torch.Tensor) -> Future:
        return self.pool.submit(self.encode, window)

    def close(self) -> None:
        """Stop once the current update is done; updates not started are dropped."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def _load(config, state: dict, backend: str, threads: int) -> None:
    """In the worker process: rebuild the model from its config and weights, its encoder on ``backend``."""
    global _MODEL
    from .backends import with_backend
    from .model import Wav2Vec2ForNoiseCancellation

    torch.set_num_threads(threads)
    model = Wav2Vec2ForNoiseCancellation(config)
    model.load_state_dict(state)
    _MODEL = with_backend(model, backend)


def _encode(window) -> tuple:
    """In the worker process: ``(features, seconds)`` of one window, numpy in and out."""
    started = time.perf_counter()
    with torch.no_grad():
        features = _MODEL.encoder_features(torch.from_numpy(window)[None])[0].numpy()
    return features, time.perf_counter() - started


class ProcessEncoder:
    """The encoder's updates in a worker process (started with ``spawn``, so nothing of this process's threads is
    inherited), its encoder on ``backend``.

    The model is sent as its config and weights (a weight-normed convolution does not pickle otherwise). The
    constructor waits until the worker has computed one update, so a stream starts with the worker ready.

    Raises:
        ValueError: a model whose encoder already runs elsewhere (a backend's copy, ``load_exported``'s, or one whose
            ``encoder_features`` was replaced): its weights alone would rebuild the torch encoder.
    """

    def __init__(self, model, backend: str = "torch", threads: int | None = None):
        if "encoder_features" in vars(model) or getattr(model, "encoder_backend", "torch") != "torch":
            raise ValueError("a worker process rebuilds the model from its weights: pass the torch model, and the "
                             "backend by name (StreamingCanceller(model, worker='process', backend=...))")
        state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
        self.pool = concurrent.futures.ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_load,
            initargs=(model.config, state, backend, threads or torch.get_num_threads()))
        self.encoder_seconds = 0.0
        self.submit(torch.zeros(model.context)).result()  # the start, and the backend's first (slow) call
        self.encoder_seconds = 0.0

    def submit(self, window: torch.Tensor) -> Future:
        features = Future()

        def arrived(done: Future) -> None:
            if done.exception() is not None:
                features.set_exception(done.exception())
                return
            values, seconds = done.result()
            self.encoder_seconds += seconds
            features.set_result(torch.from_numpy(values))

        self.pool.submit(_encode, window.detach().cpu().contiguous().numpy()).add_done_callback(arrived)
        return features

    def close(self) -> None:
        """Stop the worker process once its current update is done."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def start_worker(kind: str, model, backend: str | None = None):
    """An ``InlineEncoder``, ``ThreadEncoder`` or ``ProcessEncoder`` for ``model`` (a process runs its encoder on
    ``backend``, default torch; inline and a thread run the model as given)."""
    if kind not in WORKERS:
        raise ValueError(f"unknown encoder worker {kind!r}; choose from {', '.join(WORKERS)}")
    if kind == "process":
        return ProcessEncoder(model, backend or "torch")
    return ThreadEncoder(model) if kind == "thread" else InlineEncoder(model)
