"""Inference: chunked offline prediction of whole files and the streaming canceller."""

from __future__ import annotations

import collections
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import torch

from .acoustics import causal_filter
from .audio_io import SAMPLE_RATE, load_audio, save_audio
from .encoder_worker import start_worker
from .model import Wav2Vec2ForNoiseCancellation
from .signal_path import filter_parts, mix_parts, past_windows, ramp_blocks, waveform_dtype, window_ends

# How many blocks' compute times a StreamingCanceller keeps: an hour of 20-ms blocks, so a canceller left running
# for days holds a bounded history.
BLOCK_HISTORY = 180_000


def chunk_spans(num_samples: int, chunk_samples: int, context_samples: int):
    """Yield ``(start, keep_start, keep_stop)``: the model reads ``[start, keep_stop)`` and keeps ``[keep_start, keep_stop)``.

    The kept parts tile ``[0, num_samples)``; each is preceded by up to ``context_samples`` of past.
    """
    for keep_start in range(0, num_samples, chunk_samples):
        yield max(0, keep_start - context_samples), keep_start, min(keep_start + chunk_samples, num_samples)


@torch.no_grad()
def predict_inverse(
    model: Wav2Vec2ForNoiseCancellation, audio: np.ndarray, chunk_seconds: float = 10.0, use_encoder: bool = True,
    ear_noise: np.ndarray | None = None,
) -> np.ndarray:
    """Predict the anti-noise of a clip of any length, one chunk at a time.

    The model is causal, so a chunk only needs the past: each is run with the model's warm-up of
    audio before it, and chunk and warm-up are whole update periods (``update_period``), so the result equals one
    pass over the whole file while memory stays bounded by the chunk.

    Args:
        audio: shape ``(samples,)`` at 16 kHz.
        ear_noise: for a model that ``needs_ear_noise``, what the error microphone heard of the noise over the
            same samples (``d̂ = e − Ŝ∗y``; ``closed_loop_drive`` closes that loop), same shape.

    Returns:
        float32 array of shape ``(samples,)``.
    """
    if ear_noise is not None and np.shape(ear_noise) != np.shape(audio):
        raise ValueError(f"ear_noise of shape {np.shape(ear_noise)} does not cover the audio's {np.shape(audio)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chunk = max(1, int(chunk_seconds * SAMPLE_RATE) // model.update_period) * model.update_period
    inverse = np.zeros(len(audio), dtype=np.float32)
    try:
        for start, keep_start, keep_stop in chunk_spans(len(audio), chunk, model.warmup):
            window = torch.as_tensor(audio[start:keep_stop], dtype=torch.float32, device=device)[None]
            ear = None if ear_noise is None else torch.as_tensor(ear_noise[start:keep_stop], dtype=torch.float32,
                                                                  device=device)[None]
            out = model(window, use_encoder=use_encoder, ear_noise=ear).inverse[0]
            inverse[keep_start:keep_stop] = out[keep_start - start :].float().cpu().numpy()
    finally:
        model.train(was_training)
    return inverse


def closed_loop_drive(
    model: Wav2Vec2ForNoiseCancellation, audio: np.ndarray, plant=None, chunk_seconds: float = 10.0,
    use_encoder: bool = True,
) -> np.ndarray:
    """The model's drive over ``audio`` as it runs in an acoustic scene, its own anti-noise playing.

    A model that ``needs_ear_noise`` hears ``d̂ = e − Ŝ∗y = P∗x + (S − Ŝ)∗y`` at the error microphone:
    the noise, plus what its estimate Ŝ gets wrong of its own anti-noise, so its drive ``y`` feeds back
    on what it hears. Block b reads ``d̂`` only before ``b·block − D``, so the loop is causal, and it runs
    as it would live: a ``StreamingCanceller`` fed one block at a time, then told what the microphone
    heard over that block (``StreamingCanceller.hear``). Any other model is one ``predict_inverse``.

    Args:
        audio: the noise at the reference microphone, shape ``(samples,)``, from a start of silence.
        plant: the ``acoustics.Plant`` (true P and S, linear loudspeaker, and Ŝ).

    Returns:
        float32 of shape ``(samples,)``.

    Raises:
        ValueError: a model that hears the error microphone, and no scene.
    """
    if not (model.needs_ear_noise and use_encoder and model.encoder_correction):
        return predict_inverse(model, audio, chunk_seconds, use_encoder)
    if plant is None or plant.is_identity:
        raise ValueError("this model hears the error microphone of an acoustic scene: give its plant")
    noise = plant.noise_at_ear(audio)
    canceller = StreamingCanceller(model, use_encoder)
    drive = np.zeros(len(audio), dtype=np.float32)
    memory = max(len(plant.scene.secondary), len(plant.secondary_estimate)) - 1
    for start in range(0, len(audio), model.block):
        stop = min(start + model.block, len(audio))
        # The block's own samples at the microphone are not read for it: P∗x stands in until they are heard.
        drive[start:stop] = canceller.process(audio[start:stop], ear_noise=noise[start:stop])
        past = max(0, start - memory)
        canceller.hear(noise[start:stop] + own_error_at_ear(plant, drive[past:stop])[start - past :])
    return drive


def own_error_at_ear(plant, drive: np.ndarray) -> np.ndarray:
    """What Ŝ gets wrong of ``drive``'s anti-noise at the ear, ``S∗f(y) − Ŝ∗y``, float64 of ``drive``'s shape."""
    return plant.anti_noise_at_ear(drive) - causal_filter(plant.secondary_estimate, drive)


def heard_at_ear(plant, audio: np.ndarray, drive: np.ndarray) -> np.ndarray:
    """What a controller hears of the noise at the error microphone while ``drive`` plays: ``d̂ = e − Ŝ∗y``.

    ``e = P∗x + S∗f(y)`` is the residual there, and the controller takes away its own anti-noise as it
    believes it sounds (Ŝ, linear). Float64 of shape ``(samples,)``, like ``audio`` and ``drive``.
    """
    return plant.noise_at_ear(audio) + own_error_at_ear(plant, drive)


class StreamingCanceller:
    """Feed blocks of input of any size, get back the anti-noise of the same samples.

    It keeps only the past the model needs (``warmup`` samples of input and of its raw output) and the
    gains of the current and previous block, so memory is flat however long the stream. The output equals
    ``model(whole_stream).inverse``.

    The encoder's part of each update (``update_features``) reads input that ends ``update_lag`` before the block's
    own past. With ``worker="thread"`` (or True) it runs on a worker thread, with ``"process"`` in a worker process
    (``encoder_worker``), submitted as soon as that input has arrived, while the audio path (the FIR filters, the
    bank's own errors, the safety gains) runs in ``process``. ``live=True`` never waits for it: an update not ready
    when its block begins is late (``late_updates``), and the newest finished one plays on, so a slow encoder never
    stalls the audio. Otherwise ``process`` waits, and the output is the offline one.

    Example:
        >>> canceller = StreamingCanceller(model)
        >>> for block in blocks:                 # float32 arrays at 16 kHz
        ...     anti_noise = canceller.process(block)
    """

    def __init__(self, model: Wav2Vec2ForNoiseCancellation, use_encoder: bool = True, worker: bool | str = False,
                 live: bool = False, backend: str | None = None):
        kind = "thread" if worker is True or (live and not worker) else worker or "inline"
        if backend is not None and kind != "process":  # a worker process puts its own encoder on the backend
            from .backends import with_backend

            model = with_backend(model, backend)
        self.model = model.eval()
        self.use_encoder = use_encoder
        self.device = next(model.parameters()).device
        self.history = torch.zeros(model.warmup, device=self.device)  # x before the stream counts as silence
        self.ear_history = torch.zeros(model.warmup, device=self.device)  # the error microphone's, likewise
        # The two raw parts of the anti-noise (shared, correction), before the safety gains.
        self.raw_history = torch.zeros(2, model.warmup, dtype=waveform_dtype(self.device, model.latency),
                                       device=self.device)
        self.position = 0  # samples consumed so far
        self.gains: dict[int, torch.Tensor] = {}  # block index → (rank,)
        self.features: dict[int, Future] = {}  # block index → its update's encoder features, (hidden,), when ready
        self.newest_features: tuple[int, torch.Tensor] | None = None  # the newest update that was ready
        self.updates = 0  # encoder updates computed
        self.late_updates = 0  # updates not ready when their first block began (live), the previous one played on
        self.late: set[int] = set()  # those updates, while blocks may still use them (each is counted once)
        self.live = live
        # Where the encoder's updates run: no worker to start for an encoder that never runs.
        self.worker = start_worker(kind if self.encoder_runs else "inline", model, backend)
        self.compute_seconds = 0.0  # in process(), the audio path (with the encoder where it runs inline)
        # Each process() call's compute time, s (the deadlines it met or missed), for the newest BLOCK_HISTORY calls.
        self.block_seconds: collections.deque[float] = collections.deque(maxlen=BLOCK_HISTORY)
        if self.encoder_runs:  # the first updates hear only the silence before the stream: ready before it starts
            self._submit_updates(self.history, -len(self.history))
            for update in self.features.values():
                update.result()

    @property
    def encoder_runs(self) -> bool:
        return self.use_encoder and self.model.encoder_correction

    @property
    def encoder_seconds(self) -> float:
        """The encoder's compute time so far, s, wherever it ran."""
        return self.worker.encoder_seconds

    def close(self) -> None:
        """Stop the worker (if any) once its current update is done."""
        self.worker.close()

    def hear(self, ear_noise: np.ndarray) -> None:
        """Set what the microphone heard over the newest ``len(ear_noise)`` samples processed (≤ the warm-up).

        A live loop hears a block's samples only as its anti-noise plays: pass a stand-in with the block
        (which it does not read when the block holds at most one model block, starting at a block edge),
        then the samples heard. Later blocks read them; gains already computed stay.
        """
        values = torch.as_tensor(np.asarray(ear_noise, dtype=np.float32), device=self.device)
        self.ear_history[len(self.ear_history) - len(values) :] = values

    def _update_of(self, index: int) -> int:
        """The block whose encoder update block ``index`` uses (``model.update_features``)."""
        return index - index % self.model.update_blocks

    def _submit_updates(self, buffer: torch.Tensor, buffer_start: int) -> None:
        """Start the encoder on every update whose input has now all arrived (and is still to be played)."""
        every = self.model.update_blocks
        index = max(self._update_of(self.position // self.model.block - 1), max(self.features, default=-every) + every, 0)
        while self._update_input_end(index) <= self.position:
            self._submit(index, buffer, buffer_start)
            index += every

    def _update_input_end(self, index: int) -> int:
        """Where the input of update ``index`` (a block that starts one) ends (exclusive), absolute samples."""
        model = self.model
        return int(window_ends(torch.tensor(index), model.block, model.latency)) - model.update_lag

    def _submit(self, index: int, buffer: torch.Tensor, buffer_start: int) -> None:
        """Compute block ``index``'s update from ``buffer`` (starting at absolute ``buffer_start``): on the worker, if any."""
        end = torch.tensor([self._update_input_end(index) - buffer_start])
        window = past_windows(buffer[None], end, self.model.context)[0, 0].clone()
        self.features[index] = self.worker.submit(window)
        self.updates += 1

    def _update_features(self, index: int, buffer: torch.Tensor, buffer_start: int) -> torch.Tensor:
        """Block ``index``'s encoder features, ``(hidden,)``: its update if ready (or waited for), else the newest one."""
        index = self._update_of(index)
        if index not in self.features:  # the stream began after its input ended
            self._submit(index, buffer, buffer_start)
        update = self.features[index]
        if self.live and not update.done():
            self.late_updates += index not in self.late
            self.late.add(index)
            if self.newest_features is not None:
                return self.newest_features[1]
            return torch.zeros(self.model.config.hidden_size, device=self.device)  # before any: the shared filter
        features = update.result()
        if self.newest_features is None or index > self.newest_features[0]:
            self.newest_features = (index, features)
        return features

    def _block_gains(self, index: int, buffer: torch.Tensor, buffer_start: int, ear: torch.Tensor | None) -> torch.Tensor:
        """Gains of block ``index`` from ``buffer`` and ``ear`` (both starting at absolute sample ``buffer_start``)."""
        if index not in self.gains:
            model = self.model
            ends = window_ends(torch.tensor([index]), model.block, model.latency, buffer_start)
            if not self.encoder_runs:
                self.gains[index] = model.block_gains(buffer[None], ends, self.use_encoder)[0, 0]
            else:
                features = self._update_features(index, buffer, buffer_start)
                self.gains[index] = model.gains_from(features[None, None], buffer[None], ends,
                                                     None if ear is None else ear[None])[0, 0]
        return self.gains[index]

    @torch.no_grad()
    def process(self, block: np.ndarray, ear_noise: np.ndarray | None = None) -> np.ndarray:
        """Anti-noise for ``block`` (shape ``(samples,)``, 16 kHz), the continuation of earlier blocks.

        ``ear_noise``, for a model that ``needs_ear_noise``: what the error microphone heard of the noise
        over the same samples (same shape). Block b reads it only before ``b·block − D``: a live loop, which
        hears the samples only as their anti-noise plays, passes a stand-in and then ``hear``s them
        (``closed_loop_drive``).
        """
        started = time.perf_counter()
        model = self.model
        new = torch.as_tensor(np.asarray(block, dtype=np.float32), device=self.device)
        buffer = torch.cat([self.history, new])
        ear = None
        if ear_noise is not None:
            if np.shape(ear_noise) != np.shape(block):
                raise ValueError(f"ear_noise of shape {np.shape(ear_noise)} does not cover the block's {np.shape(block)}")
            ear = torch.cat([self.ear_history, torch.as_tensor(np.asarray(ear_noise, dtype=np.float32), device=self.device)])
        buffer_start = self.position - len(self.history)
        first, last = self.position // model.block, (self.position + len(new) - 1) // model.block
        indices = [max(first - 1, 0)] + list(range(first, last + 1))
        per_block = torch.stack([self._block_gains(index, buffer, buffer_start, ear) for index in indices])
        x = buffer.to(self.raw_history.dtype)
        # The new samples' outputs need only the filters' reach before them: filtering the whole warm-up each
        # block would cost the audio path its length over again.
        reach = len(new) + model.latency + model.filter_taps - 1
        outputs = model.filter_outputs(x[None, len(x) - reach :])[..., -len(new) :]
        parts = filter_parts(outputs, self._per_sample(per_block, first, len(new), len(new)))
        raw = torch.cat([self.raw_history, torch.cat(parts)], dim=1)
        shared, correction = raw[:, -len(new) :]
        if model.safety_window:
            ends = window_ends(torch.tensor(indices), model.block, model.latency, buffer_start)
            gains = model.guard_gains(x[None], raw[:1], raw[1:], ends)[0]
            per_sample = self._per_sample(gains, first, len(new), len(new))[0]
            inverse = mix_parts(shared, correction, per_sample[:, 0], per_sample[:, 1])
        else:
            inverse = shared + correction
        inverse = model.shape_drive(inverse)
        self.position += len(new)
        self.history = buffer[len(buffer) - model.warmup :]
        if ear is not None:
            self.ear_history = ear[len(ear) - model.warmup :]
        self.raw_history = raw[:, raw.shape[1] - model.warmup :]
        self.gains = {i: g for i, g in self.gains.items() if i >= self.position // model.block - 1}
        oldest = self._update_of(self.position // model.block - 1)
        self.features = {i: f for i, f in self.features.items() if i >= oldest}
        self.late = {i for i in self.late if i >= oldest}
        if self.encoder_runs:
            self._submit_updates(buffer, buffer_start)
        result = inverse.float().cpu().numpy()
        self.block_seconds.append(time.perf_counter() - started)
        self.compute_seconds += self.block_seconds[-1]
        return result

    def _per_sample(self, per_block: torch.Tensor, first: int, length: int, new: int) -> torch.Tensor:
        """Glide ``per_block`` values (blocks ``first−1 … last``) over the ``new`` samples, front-padded to ``length``."""
        block = self.model.block
        values = ramp_blocks(per_block[None], block, len(per_block) * block)[0, block:]
        values = values[self.position - first * block :][:new]
        return torch.cat([values.new_zeros(length - new, values.shape[1]), values])[None]

    @property
    def real_time_factor(self) -> float:
        """Compute time over audio time so far; below 1 keeps up with real time."""
        return self.compute_seconds / max(self.position / SAMPLE_RATE, 1e-12)


def stream_inverse(model, audio: np.ndarray, block_samples: int = 320, ear_noise: np.ndarray | None = None,
                   backend: str | None = None) -> tuple[np.ndarray, float]:
    """Run ``audio`` (and ``ear_noise``, see ``StreamingCanceller.process``) through a ``StreamingCanceller`` in
    blocks, its encoder on ``backend`` (``backends.BACKENDS``; None: the model's own); return
    ``(inverse, real_time_factor)``, the real-time factor all compute (the encoder's too) over the audio's time."""
    canceller = StreamingCanceller(model, backend=backend)
    ear = (lambda i: None) if ear_noise is None else (lambda i: ear_noise[i : i + block_samples])
    inverse = np.concatenate([canceller.process(audio[i : i + block_samples], ear(i))
                              for i in range(0, len(audio), block_samples)])
    return inverse, canceller.real_time_factor


def cancel_file(model, path, output_dir, chunk_seconds: float = 10.0, plant=None) -> tuple[np.ndarray, np.ndarray]:
    """Cancel a whole new file and write ``<stem>_inverse.wav`` and ``<stem>_residual.wav`` (at the ear in a scene).

    Args:
        plant: the acoustic scene (``acoustics.Plant``); None: the anti-noise meets the input itself. A model
            that hears the error microphone needs it, and runs in its closed loop (``closed_loop_drive``).

    Returns:
        ``(noise, anti_noise)`` at the ear, float32 of shape ``(samples,)`` at 16 kHz: without a scene
        the file's audio and the model's output.
    """
    path = Path(path)
    audio = load_audio(path)
    noise, anti_noise = audio, closed_loop_drive(model, audio, plant, chunk_seconds)
    if plant is not None and not plant.is_identity:
        noise = plant.noise_at_ear(audio).astype(np.float32)
        anti_noise = plant.anti_noise_at_ear(anti_noise).astype(np.float32)
    save_audio(Path(output_dir) / f"{path.stem}_inverse.wav", anti_noise)
    save_audio(Path(output_dir) / f"{path.stem}_residual.wav", noise + anti_noise)
    return noise, anti_noise
