"""Helpers for wav2vec2 waveform-inversion noise cancellation.

The notebook ``wav2vec2_noise_cancellation.ipynb`` is a thin layer over this
module. Sections, in pipeline order:

    audio I/O · data · model · training · inference · metrics · baselines · outputs · plots

Conventions: audio arrays are float32, mono, shape ``(samples,)`` at
``SAMPLE_RATE`` (16 kHz) unless a docstring says otherwise. Levels are in dB.
Nothing runs at import time; heavy or optional imports (``google.colab``,
``ipywidgets``, ``IPython``) happen inside the functions that need them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import Wav2Vec2Config, Wav2Vec2Model, Wav2Vec2PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

SAMPLE_RATE = 16_000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif")
SAMPLE_AUDIO_DIR = Path(__file__).resolve().parent / "sample_audio"
DEFAULT_SAMPLE = SAMPLE_AUDIO_DIR / "engine_honda_nsx.wav"
# A clip whose peak is below this (-120 dBFS) carries nothing to cancel.
SILENCE_PEAK = 1e-6


# ───────────────────────────── audio I/O ──────────────────────────────


class AudioInputError(ValueError):
    """Raised for unusable input audio; the message names the file and the problem."""


def list_audio_files(path: str | os.PathLike) -> list[Path]:
    """Return the audio file(s) at ``path``: the file itself, or a folder's audio files sorted by name.

    Raises:
        AudioInputError: the path does not exist, or the folder holds no audio file.
    """
    path = Path(path)
    if not path.exists():
        raise AudioInputError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            raise AudioInputError(f"{path}: folder holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
        return files
    return [path]


def decode_audio(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Decode an encoded audio file held in memory.

    Args:
        data: the file's bytes (WAV of any integer or float width, FLAC, OGG, AIFF).
        name: the file name used in error messages.

    Returns:
        ``(audio, sample_rate)``: float32 array of shape ``(samples, channels)`` and the rate in Hz.

    Raises:
        AudioInputError: empty, not audio, corrupt, or holding no samples.
    """
    import io

    import soundfile as sf

    if len(data) == 0:
        raise AudioInputError(f"{name}: file is empty (0 bytes)")
    try:
        audio, sample_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioInputError(f"{name}: not a readable audio file or corrupt ({error})") from error
    if audio.shape[0] == 0:
        raise AudioInputError(f"{name}: audio file holds no samples")
    return audio, int(sample_rate)


def to_mono_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Average channels and resample to ``SAMPLE_RATE``.

    Args:
        audio: shape ``(samples, channels)`` or ``(samples,)``.
        sample_rate: rate of ``audio`` in Hz.

    Returns:
        float32 array of shape ``(samples_at_16k,)``.
    """
    import librosa

    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    mono = np.asarray(mono, dtype=np.float32)
    if sample_rate != SAMPLE_RATE:
        mono = librosa.resample(mono, orig_sr=sample_rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    return mono.astype(np.float32)


def check_audio(audio: np.ndarray, name: str) -> np.ndarray:
    """Reject audio holding NaN/Inf samples or digital silence; return it unchanged otherwise."""
    if not np.all(np.isfinite(audio)):
        bad = int(np.size(audio) - np.count_nonzero(np.isfinite(audio)))
        raise AudioInputError(f"{name}: holds {bad} NaN or Inf samples")
    if np.max(np.abs(audio)) < SILENCE_PEAK:
        raise AudioInputError(f"{name}: clip is silent (peak below {SILENCE_PEAK:g})")
    return audio


def load_audio(path: str | os.PathLike) -> np.ndarray:
    """Read an audio file as 16 kHz mono float32, rejecting unusable input.

    The file is only read, never modified.

    Returns:
        float32 array of shape ``(samples,)`` at ``SAMPLE_RATE``.

    Raises:
        AudioInputError: missing, empty, not audio, corrupt, silent, or NaN/Inf samples.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"{path}: no such file")
    audio, sample_rate = decode_audio(path.read_bytes(), name=str(path))
    # Check before resampling: the resampler would smear a NaN over the whole clip.
    check_audio(audio, str(path))
    return to_mono_16k(audio, sample_rate)


def save_audio(path: str | os.PathLike, audio: np.ndarray) -> Path:
    """Write 16 kHz mono audio as 32-bit float WAV, so metrics recomputed from the file match exactly."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.asarray(audio, dtype=np.float32), SAMPLE_RATE, subtype="FLOAT")
    return path


def read_upload(uploaded: dict[str, bytes], upload_dir: str | os.PathLike) -> Path:
    """Store the first uploaded file's bytes in ``upload_dir`` and return its path."""
    if not uploaded:
        raise AudioInputError("no file was uploaded")
    name, data = next(iter(uploaded.items()))
    path = Path(upload_dir) / Path(name).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def ask_for_audio(upload_dir: str | os.PathLike):
    """Ask the user for a file: ``files.upload()`` in Colab, an ipywidgets FileUpload in Jupyter.

    Returns:
        In Colab, the path of the uploaded file. In Jupyter, the FileUpload widget (pass it to
        ``uploaded_path``); outside both, ``None``.
    """
    try:
        from google.colab import files  # noqa: F401  (only present in Colab)
    except ImportError:
        files = None
    if files is not None:
        return read_upload(files.upload(), upload_dir)
    try:
        import ipywidgets
        from IPython.display import display
    except ImportError:
        return None
    widget = ipywidgets.FileUpload(accept=",".join(AUDIO_EXTENSIONS), multiple=False)
    display(widget)
    return widget


def resolve_audio_path(audio_path, asked, upload_dir) -> Path:
    """Choose the input: ``audio_path`` if set, else an uploaded file, else the bundled sample."""
    if audio_path:
        return Path(audio_path)
    if isinstance(asked, Path):
        return asked
    if asked is not None and getattr(asked, "value", None):
        # ipywidgets 8: a tuple of dicts with "name" and "content" (a memoryview).
        item = asked.value[0]
        return read_upload({item["name"]: bytes(item["content"])}, upload_dir)
    print(f"No file given or uploaded: using the bundled sample {DEFAULT_SAMPLE.name}")
    return DEFAULT_SAMPLE


# ──────────────────────────────── data ────────────────────────────────


@dataclasses.dataclass
class Clip:
    """One input file at 16 kHz, split into a training head and a held-out tail."""

    name: str
    train: np.ndarray  # (samples,)
    heldout: np.ndarray  # (samples,)


def split_heldout(audio: np.ndarray, heldout_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split ``audio`` into ``(train, heldout)``: the held-out part is the last ``heldout_fraction``."""
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    split = int(round(len(audio) * (1.0 - heldout_fraction)))
    return audio[:split], audio[split:]


def load_clips(path, min_train_samples: int, heldout_fraction: float) -> list[Clip]:
    """Load every audio file at ``path`` (a file or a folder) and split each into train and held-out.

    All files are read and checked before any is used, so bad input fails fast.

    Args:
        min_train_samples: the training part must hold one training pair (segment plus warm-up).

    Raises:
        AudioInputError: any unusable file, or one too short to give one training pair.
    """
    clips = []
    for file in list_audio_files(path):
        audio = load_audio(file)
        train, heldout = split_heldout(audio, heldout_fraction)
        if len(train) < min_train_samples or len(heldout) == 0:
            need = min_train_samples / SAMPLE_RATE / (1.0 - heldout_fraction)
            raise AudioInputError(
                f"{file}: clip too short ({len(audio) / SAMPLE_RATE:.2f} s); one training pair needs "
                f"{min_train_samples / SAMPLE_RATE:.2f} s and {heldout_fraction:.0%} is held out, "
                f"so it needs at least {need:.2f} s"
            )
        clips.append(Clip(name=file.name, train=train, heldout=heldout))
    return clips


def segment_starts(num_samples: int, segment_samples: int, hop_samples: int) -> np.ndarray:
    """Start indices of the segments of length ``segment_samples`` every ``hop_samples``; the last ends at the end."""
    if num_samples < segment_samples:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, num_samples - segment_samples + 1, hop_samples)
    if starts[-1] != num_samples - segment_samples:
        starts = np.append(starts, num_samples - segment_samples)
    return starts


def inversion_pairs(
    audio: np.ndarray, segment_samples: int, hop_samples: int, warmup_samples: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``audio`` into segments and pair each with its exact inverse.

    Each input carries ``warmup_samples`` of the audio before its segment, so the model has the past
    it will have at inference; the label covers the segment only.

    Returns:
        ``(inputs, labels)``: float32 of shapes ``(pairs, warmup + segment)`` and ``(pairs, segment)``,
        with ``labels == -inputs[:, warmup:]``.
    """
    length = warmup_samples + segment_samples
    starts = segment_starts(len(audio), length, hop_samples)
    inputs = np.stack([audio[s : s + length] for s in starts]).astype(np.float32)
    return inputs, -inputs[:, warmup_samples:]


def build_dataset(clips: list[Clip], segment_samples: int, hop_samples: int, warmup_samples: int = 0):
    """The (input, −input) training pairs of every clip's training part as a ``datasets.Dataset``.

    Columns ``input_values`` (``warmup + segment`` samples) and ``labels`` (``segment`` samples), float32.
    """
    import datasets

    pairs = [inversion_pairs(clip.train, segment_samples, hop_samples, warmup_samples) for clip in clips]
    inputs = np.concatenate([p[0] for p in pairs])
    labels = np.concatenate([p[1] for p in pairs])
    features = datasets.Features(
        {
            "input_values": datasets.Sequence(datasets.Value("float32")),
            "labels": datasets.Sequence(datasets.Value("float32")),
        }
    )
    dataset = datasets.Dataset.from_dict({"input_values": list(inputs), "labels": list(labels)}, features=features)
    return dataset.with_format("torch")

# Synthetic noises for the benchmark suite. Each returns float32 of shape (seconds·16000,) at an RMS of 0.1.


def _at_rms(x: np.ndarray, rms: float = 0.1) -> np.ndarray:
    return (x * (rms / np.sqrt(np.mean(x**2)))).astype(np.float32)


def shaped_noise(seconds: float, exponent: float, seed: int = 0) -> np.ndarray:
    """Gaussian noise with power spectrum ∝ 1/f**exponent above 20 Hz (flat below): 0 white, 1 pink, 2 brown."""
    rng = np.random.default_rng(seed)
    samples = int(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequencies = np.maximum(np.fft.rfftfreq(samples, 1 / SAMPLE_RATE), 20.0)
    return _at_rms(np.fft.irfft(spectrum * frequencies ** (-exponent / 2), n=samples))


def shaped_noise_spectrum(exponent: float, size: int = 1 << 16) -> np.ndarray:
    """The two-sided power spectrum ``shaped_noise`` draws from, on a ``size``-point FFT grid (arbitrary scale)."""
    frequencies = np.maximum(np.abs(np.fft.fftfreq(size, 1 / SAMPLE_RATE)), 20.0)
    return frequencies ** (-exponent)


def harmonic_noise(seconds: float, fundamental_hz, harmonics: int, floor_db: float = -40.0, seed: int = 0) -> np.ndarray:
    """A sum of ``harmonics`` harmonics of ``fundamental_hz`` (a number, or an array of one value per sample)
    with amplitudes 1/k, plus white noise ``floor_db`` below the tones."""
    rng = np.random.default_rng(seed)
    samples = int(seconds * SAMPLE_RATE)
    f0 = np.broadcast_to(np.asarray(fundamental_hz, dtype=np.float64), (samples,))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    tones = _at_rms(sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, harmonics + 1)))
    return tones + _at_rms(rng.standard_normal(samples), 0.1 * 10 ** (floor_db / 20))


def engine_noise(seconds: float, seed: int = 0) -> np.ndarray:
    """An engine-like harmonic tone: firing frequency drifting 30 → 60 → 30 Hz (1800–3600 RPM, 2 firings/rev... )."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    fundamental = 45.0 - 15.0 * np.cos(2 * np.pi * t / seconds)
    return harmonic_noise(seconds, fundamental, harmonics=12, seed=seed)


def synthetic_suite(seconds: float = 20.0, seed: int = 0) -> dict[str, np.ndarray]:
    """The benchmark's generated clips: white, pink, brown, 50 Hz mains hum with harmonics, drifting engine."""
    return {
        "white": shaped_noise(seconds, 0.0, seed),
        "pink": shaped_noise(seconds, 1.0, seed + 1),
        "brown": shaped_noise(seconds, 2.0, seed + 2),
        "mains_hum": harmonic_noise(seconds, 50.0, harmonics=8, seed=seed + 3),
        "engine": engine_noise(seconds, seed + 4),
    }


# ──────────────────────────────── model ───────────────────────────────

# Randomly initialised encoders for offline runs and tests. "tiny" keeps the 320-sample
# (20 ms) frame hop of wav2vec2-base with a fraction of its compute; "base" is the
# architecture of facebook/wav2vec2-base-960h.
SCRATCH_CONFIGS = {
    "tiny": dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 8, 8),
        conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    ),
    "base": dict(),
}
# SpecAugment masking and layer drop were chosen for speech recognition; both corrupt a
# sample-exact regression target, so they are off for this task.
REGRESSION_OVERRIDES = dict(apply_spec_augment=False, mask_time_prob=0.0, layerdrop=0.0)
# Head defaults, stored in the model's config so a saved model knows its own timing.
HEAD_DEFAULTS = dict(
    filter_taps=512, latency_samples=0, block_samples=800, context_samples=4000, adaptive_rank=8,
    safety_window_samples=4000,
)


def latency_samples(latency_ms: float) -> int:
    """Latency in ms → whole samples at 16 kHz: D = round(ms · 16)."""
    if latency_ms < 0:
        raise ValueError(f"latency must be ≥ 0 ms, got {latency_ms}")
    return int(round(latency_ms * SAMPLE_RATE / 1000))


def head_settings(latency_ms: float, block_ms: float, context_seconds: float, **others) -> dict:
    """The head's timing in samples from the notebook's units (ms, s): ``build_model(name, **head_settings(...))``.

    ``others`` (``filter_taps``, ``adaptive_rank``, …) pass through unchanged.
    """
    return dict(
        latency_samples=latency_samples(latency_ms),
        block_samples=latency_samples(block_ms),
        context_samples=int(context_seconds * SAMPLE_RATE),
        **others,
    )


def warmup_samples(
    filter_taps: int, latency_samples: int, block_samples: int, context_samples: int, safety_window_samples: int = 0, **_
) -> int:
    """Past samples the model needs before its first fully informed output, rounded up to whole blocks.

    Takes the ``HEAD_DEFAULTS`` settings by name: ``warmup_samples(**head)``.
    """
    # The first kept block glides from the previous block's filter, whose window must be inside too.
    need = block_samples + latency_samples + context_samples + filter_taps
    if safety_window_samples:
        # The safety gains judge raw outputs up to D before its block (gliding from the block before),
        # and each of those outputs needed the warm-up above.
        need += safety_window_samples + latency_samples + 2 * block_samples
    return -(-need // block_samples) * block_samples


def waveform_dtype(device: torch.device) -> torch.dtype:
    """float64 for the waveform path where the device has it (not Apple's MPS).

    At zero latency the anti-noise is ``−x`` itself; float32 FFTs would leave rounding noise in it
    where the closed form (``fit_wiener_predictor``) is exact.
    """
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def clipped_gain(x_windows: torch.Tensor, y_windows: torch.Tensor) -> torch.Tensor:
    """The gain in [0, 1] that would have minimised the residual ``x + g·y`` over each window.

    Args:
        x_windows, y_windows: input and anti-noise, shape ``(..., window)``.

    Returns:
        shape ``(...)``: ``clip(−Σxy / Σy², 0, 1)``; 0 where the anti-noise was silent.
    """
    cross = (x_windows * y_windows).sum(-1)
    power = (y_windows * y_windows).sum(-1)
    return torch.where(power > 0, -cross / power.clamp_min(1e-30), torch.zeros_like(power)).clamp(0.0, 1.0)


def safety_gains(
    x_windows: torch.Tensor, shared_windows: torch.Tensor, correction_windows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """"Do no harm", judged on the last window: how much to trust the encoder's correction, then the whole output.

    The correction is kept only as far as it cancelled what the shared filter left
    (``clipped_gain(x + shared, correction)``); the mixed output only as far as it cancelled ``x``.

    Args:
        x_windows, shared_windows, correction_windows: the input and the two parts of the raw
            anti-noise (``filter_parts``) over each block's past window, shape ``(..., window)``.

    Returns:
        ``(correction_gain, output_gain)``, each shape ``(...)`` in [0, 1].
    """
    correction_gain = clipped_gain(x_windows + shared_windows, correction_windows)
    mixed = shared_windows + correction_gain[..., None] * correction_windows
    return correction_gain, clipped_gain(x_windows, mixed)


def mix_parts(
    shared: torch.Tensor, correction: torch.Tensor, correction_gain: torch.Tensor, output_gain: torch.Tensor
) -> torch.Tensor:
    """The anti-noise after the safety gains; all arguments per sample, same shape."""
    return output_gain * (shared + correction_gain * correction)


@dataclasses.dataclass
class NoiseCancellationOutput(ModelOutput):
    """Output of ``Wav2Vec2ForNoiseCancellation``.

    Attributes:
        loss: mean normalised squared error against ``labels``, scalar (only with labels).
        inverse: predicted anti-noise, shape ``(batch, samples)``, same length and scale as the input.
        block_filters: the control filter of each block, shape ``(batch, blocks, filter_taps)`` (for inspection).
    """

    loss: torch.Tensor | None = None
    inverse: torch.Tensor | None = None
    block_filters: torch.Tensor | None = None


class FIRFilterHead(nn.Module):
    """The control filter of each block: ``h_b = shared + basis @ (projection @ features_b)``.

    ``shared`` (``K`` taps) serves every block; the encoder steers ``rank`` filters of ``basis`` on top
    of it through ``projection``. ``shared`` and ``basis`` start at zero, so an untrained model outputs
    silence; a low rank keeps long filters cheap (one convolution per basis filter).
    """

    def __init__(self, hidden_size: int, filter_taps: int, rank: int):
        super().__init__()
        self.shared = nn.Parameter(torch.zeros(filter_taps))
        self.basis = nn.Parameter(torch.zeros(filter_taps, rank))
        self.projection = nn.Parameter(torch.zeros(rank, hidden_size))

    def gains(self, features: torch.Tensor) -> torch.Tensor:
        """How much of each basis filter to add: ``(..., hidden)`` → ``(..., rank)``."""
        return features @ self.projection.T

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The filter taps themselves: ``(..., hidden)`` → ``(..., filter_taps)``."""
        return self.shared + self.gains(features) @ self.basis.T


def causal_fir(x: torch.Tensor, kernels: torch.Tensor, delay: int = 0) -> torch.Tensor:
    """Filter ``x`` with several FIR kernels, delayed: ``out[b, c, n] = Σₖ kernels[c, k]·x[b, n − delay − k]``.

    Uses FFTs sized for linear (not circular) convolution, so long kernels stay cheap. The first tap
    is applied directly: FFT rounding, scaled to the loudest samples, would otherwise leak onto quiet
    passages, and a pure gain-and-delay filter (exact negation above all) stays bit-exact.

    Args:
        x: shape ``(batch, samples)``.
        kernels: shape ``(channels, K)``.

    Returns:
        shape ``(batch, channels, samples)``, in the wider of the two dtypes (at least float32); zero
        input is assumed before the start.
    """
    samples, taps = x.shape[-1], kernels.shape[-1]
    dtype = torch.promote_types(torch.promote_types(x.dtype, kernels.dtype), torch.float32)
    x, kernels = x.to(dtype), kernels.to(dtype)
    delayed = F.pad(x, (delay, 0))[:, None, :samples]
    direct = kernels[None, :, :1] * delayed
    if taps == 1:
        return direct
    size = 1 << (samples + delay + taps - 1).bit_length()
    spectrum = torch.fft.rfft(x, size)[:, None] * torch.fft.rfft(F.pad(kernels[:, 1:], (delay + 1, 0)), size)
    return direct + torch.fft.irfft(spectrum, size)[..., :samples]


def context_windows(x: torch.Tensor, block: int, context: int, delay: int) -> torch.Tensor:
    """The past each block's filter is computed from.

    Block ``b`` covers samples ``[b·block, (b+1)·block)``; its window is the ``context`` samples
    ending at ``b·block − delay`` inclusive (zeros before the start), so the filter of every sample
    ``n`` in the block depends only on ``x[m]`` with ``m ≤ n − delay``.

    Args:
        x: shape ``(batch, samples)``.

    Returns:
        shape ``(batch, blocks, context)`` with ``blocks = ceil(samples / block)``.
    """
    blocks = -(-x.shape[-1] // block)
    padded = F.pad(x, (context + delay, 0))  # x[i] is padded[i + context + delay]
    index = torch.arange(blocks, device=x.device)[:, None] * block + 1 + torch.arange(context, device=x.device)
    return padded[:, index]


def ramp_blocks(per_block: torch.Tensor, block: int, samples: int) -> torch.Tensor:
    """Per-sample values: across block ``b`` they glide from block ``b−1``'s to block ``b``'s.

    The glide avoids clicks at block edges and stays causal (it never looks at block ``b+1``);
    before the first block the first block's values hold.

    Args:
        per_block: shape ``(batch, blocks, channels)``.

    Returns:
        shape ``(batch, samples, channels)``.
    """
    before = torch.cat([per_block[:, :1], per_block[:, :-1]], dim=1)
    ramp = torch.arange(1, block + 1, device=per_block.device, dtype=per_block.dtype) / block
    glide = before[:, :, None] + (per_block - before)[:, :, None] * ramp[:, None]
    return glide.flatten(1, 2)[:, :samples]


class Wav2Vec2ForNoiseCancellation(Wav2Vec2PreTrainedModel):
    """wav2vec2 encoder with a regression head that outputs the anti-noise waveform, causally.

    Every ``block_samples`` (50 ms by default) the encoder hears the last ``context_samples`` of
    input that are at least ``latency_samples`` (D) old, and the head turns its mean-pooled features
    into a FIR control filter. The filter runs sample by sample on the input delayed by D:
    ``y[n] = Σₖ hₙ[k]·x[n−D−k]``. At inference two safety gains, judged on the last
    ``safety_window_samples`` (``safety_gains``), scale each block: one keeps the encoder's correction
    only as far as it improved on the shared filter, the other keeps the output only as far as it
    cancelled, so a prediction that stops working is turned down instead of amplifying the noise. Every output
    sample depends only on ``x[m]`` with ``m ≤ n − D``, the output is sample-aligned and exactly as
    long as the input, and it is linear in the input's level (wav2vec2 normalises amplitude away; the
    level comes back through the waveform path). At D = 0 the filter can be ``[−1, 0, …]``: exact
    negation is within reach, as it should be.

    Config attributes beyond ``Wav2Vec2Config``: ``filter_taps``, ``latency_samples``,
    ``block_samples``, ``context_samples``, ``adaptive_rank``, ``safety_window_samples`` (defaults in
    ``HEAD_DEFAULTS``).
    """

    def __init__(self, config: Wav2Vec2Config):
        super().__init__(config)
        for name, value in HEAD_DEFAULTS.items():
            if not hasattr(config, name):
                setattr(config, name, value)
        self.wav2vec2 = Wav2Vec2Model(config)
        self.filter_head = FIRFilterHead(config.hidden_size, config.filter_taps, config.adaptive_rank)
        self.post_init()

    @property
    def filter_taps(self) -> int:
        return int(self.config.filter_taps)

    @property
    def latency(self) -> int:
        """D, in samples."""
        return int(self.config.latency_samples)

    @property
    def block(self) -> int:
        return int(self.config.block_samples)

    @property
    def context(self) -> int:
        return int(self.config.context_samples)

    @property
    def safety_window(self) -> int:
        """Samples of its own recent past the model judges its output by (0: no safety gains)."""
        return int(self.config.safety_window_samples)

    @property
    def warmup(self) -> int:
        """Past samples needed before the first fully informed output at inference (whole blocks)."""
        return warmup_samples(self.filter_taps, self.latency, self.block, self.context, self.safety_window)

    @property
    def training_warmup(self) -> int:
        """Past samples each training pair carries: the safety gains are not used in training."""
        return warmup_samples(self.filter_taps, self.latency, self.block, self.context)

    @property
    def receptive_field(self) -> int:
        """Samples the feature encoder needs for one frame."""
        field = 1
        for kernel, stride in reversed(list(zip(self.config.conv_kernel, self.config.conv_stride))):
            field = (field - 1) * stride + kernel
        return field

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, FIRFilterHead):
            init.zeros_(module.shared)
            init.zeros_(module.basis)
            # Non-zero so the basis gets a gradient from the first step.
            init.normal_(module.projection, std=module.projection.shape[1] ** -0.5)

    def freeze_feature_encoder(self):
        """Stop gradient updates of the convolutional feature encoder."""
        self.wav2vec2.feature_extractor._freeze_parameters()

    def encoder_features(self, windows: torch.Tensor) -> torch.Tensor:
        """Mean-pooled encoder features of level-normalised windows: ``(n, samples)`` → ``(n, hidden)``."""
        # The processor of wav2vec2-base-960h normalises each input to zero mean, unit variance.
        mean = windows.mean(-1, keepdim=True)
        std = windows.std(-1, keepdim=True).clamp_min(1e-7)
        normalised = (windows - mean) / std
        shortfall = self.receptive_field - normalised.shape[-1]
        if shortfall > 0:
            normalised = F.pad(normalised, (0, shortfall))
        return self.wav2vec2(normalised).last_hidden_state.mean(1)

    def block_gains(self, windows: torch.Tensor, use_encoder: bool = True) -> torch.Tensor:
        """Basis-filter gains from context windows: ``(batch, blocks, context)`` → ``(batch, blocks, rank)``."""
        batch, blocks, context = windows.shape
        if not use_encoder:
            return windows.new_zeros(batch, blocks, self.filter_head.projection.shape[0])
        features = self.encoder_features(windows.reshape(batch * blocks, context)).reshape(batch, blocks, -1)
        return self.filter_head.gains(features)

    def filter_parts(self, input_values: torch.Tensor, gains: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two parts of the anti-noise: ``shared∗x_D`` and the encoder's correction ``Σⱼ gains[:, :, j]·(basisⱼ∗x_D)``.

        Args:
            input_values: shape ``(batch, samples)``.
            gains: shape ``(batch, samples, rank)``.

        Returns:
            ``(shared, correction)``, each shape ``(batch, samples)``, in ``waveform_dtype``.
        """
        head = self.filter_head
        x = input_values.to(waveform_dtype(input_values.device))
        filtered = causal_fir(x, torch.cat([head.shared[None], head.basis.T]), self.latency)
        return filtered[:, 0], (filtered[:, 1:] * gains.to(x.dtype).transpose(1, 2)).sum(1)

    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        use_encoder: bool = True,
        **kwargs,
    ) -> NoiseCancellationOutput:
        """Predict the anti-noise of ``input_values``.

        Args:
            input_values: noisy waveform, shape ``(batch, samples)``, any level.
            labels: target anti-noise for the *last* ``labels.shape[-1]`` samples (the earlier ones are
                warm-up context), shape ``(batch, ≤ samples)``; gives ``loss`` when set.
            use_encoder: ``False`` zeroes the encoder's features, leaving the shared filter alone;
                the benchmark uses it to show what the encoder adds.
        """
        samples = input_values.shape[-1]
        windows = context_windows(input_values, self.block, self.context, self.latency)
        gains = self.block_gains(windows, use_encoder)
        x = input_values.to(waveform_dtype(input_values.device))
        shared, correction = self.filter_parts(x, ramp_blocks(gains, self.block, samples))
        if not self.training and self.safety_window:
            # A deployment safeguard, not trained through: an untrained head (silent) would get no gradient.
            past = [
                context_windows(signal, self.block, self.safety_window, self.latency) for signal in (x, shared, correction)
            ]
            per_sample = ramp_blocks(torch.stack(safety_gains(*past), -1), self.block, samples)
            inverse = mix_parts(shared, correction, per_sample[..., 0], per_sample[..., 1])
        else:
            inverse = shared + correction
        inverse = inverse.to(input_values.dtype)
        loss = None
        if labels is not None:
            loss = normalised_mse(inverse[..., samples - labels.shape[-1] :], labels)
        return NoiseCancellationOutput(loss=loss, inverse=inverse, block_filters=self.filter_head.shared + gains @ self.filter_head.basis.T)

    def start_shared_filter(self, clips: list[Clip], mode: str) -> bool:
        """Set the shared filter's start: ``"wiener"`` (closed form, then held fixed) or ``"learned"`` (zero).

        Returns:
            Whether fine-tuning should train the shared filter.
        """
        if mode == "wiener":
            self.init_shared_filter_from_wiener(np.concatenate([clip.train for clip in clips]))
            return False
        if mode == "learned":
            with torch.no_grad():
                self.filter_head.shared.zero_()
            return True
        raise ValueError(f"shared filter mode must be 'wiener' or 'learned', got {mode!r}")

    def init_shared_filter_from_wiener(self, train: np.ndarray) -> None:
        """Start the shared filter at the optimal linear predictor of ``train`` for this latency, negated.

        The closed form (``fit_wiener_predictor``) is exact where gradient descent on a long filter
        converges slowly, on tones above all; the encoder then learns what varies around it.
        """
        coefficients = fit_wiener_predictor(train, self.latency, self.filter_taps)
        with torch.no_grad():
            self.filter_head.shared.copy_(torch.as_tensor(-coefficients, dtype=self.filter_head.shared.dtype))


def normalised_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``Σ(prediction − target)² / Σtarget²``; −10·log10 of it is the NR in dB."""
    error = (prediction.float() - target.float()).pow(2).sum(-1)
    power = target.float().pow(2).sum(-1).clamp_min(1e-12)
    return (error / power).mean()


def build_model(model_name: str, seed: int = 0, **head) -> Wav2Vec2ForNoiseCancellation:
    """Make the model from a hub name, a local ``save_pretrained`` folder, or ``scratch:tiny`` / ``scratch:base``.

    A ``scratch:`` encoder is randomly initialised from a config (no download), for offline runs and tests.

    Args:
        head: any of ``HEAD_DEFAULTS`` (``filter_taps``, ``latency_samples``, ``block_samples``,
            ``context_samples``). A folder we saved keeps its own values unless they are given here.
    """
    unknown = set(head) - set(HEAD_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown head settings {sorted(unknown)}; choose from {sorted(HEAD_DEFAULTS)}")
    if model_name.startswith("scratch:"):
        size = model_name.split(":", 1)[1]
        if size not in SCRATCH_CONFIGS:
            raise ValueError(f"unknown scratch model {model_name!r}; choose from {sorted(SCRATCH_CONFIGS)}")
        torch.manual_seed(seed)
        config = Wav2Vec2Config(**SCRATCH_CONFIGS[size], **REGRESSION_OVERRIDES, **{**HEAD_DEFAULTS, **head})
        return Wav2Vec2ForNoiseCancellation(config)
    config = Wav2Vec2Config.from_pretrained(model_name, **REGRESSION_OVERRIDES)
    for name, value in head.items():
        setattr(config, name, value)
    return Wav2Vec2ForNoiseCancellation.from_pretrained(model_name, config=config)


def describe_model(model: Wav2Vec2ForNoiseCancellation) -> str:
    """One line: parameter counts, trainable and total."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"{type(model).__name__}: {total / 1e6:.2f} M parameters, {trainable / 1e6:.2f} M trainable"


# ────────────────────────────── training ──────────────────────────────


@dataclasses.dataclass
class TrainSettings:
    """Fine-tuning knobs; the notebook's parameters cell sets them."""

    output_dir: str
    max_steps: int = 300
    batch_size: int = 8
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-2
    train_shared_filter: bool = True  # False when it starts at the closed-form Wiener solution
    freeze_feature_encoder: bool = True
    seed: int = 0
    save_steps: int = 100
    logging_steps: int = 10
    progress_bar: bool = True


def make_optimizer(model: Wav2Vec2ForNoiseCancellation, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW with two learning rates: a fast one for the shared filter (0 when it is held fixed), a
    gentle one for everything that depends on the encoder (the basis, projection and encoder)."""
    shared = model.filter_head.shared
    rest = [p for p in model.parameters() if p.requires_grad and p is not shared]
    shared_rate = settings.head_learning_rate if settings.train_shared_filter else 0.0
    # The encoder's group first: the Trainer logs the first group's learning rate.
    groups = [{"params": rest, "lr": settings.learning_rate}, {"params": [shared], "lr": shared_rate}]
    return torch.optim.AdamW(groups, weight_decay=0.0)


def make_trainer(model, dataset, settings: TrainSettings):
    """A ``transformers.Trainer`` with checkpoints in ``output_dir/checkpoints`` and mixed precision on GPU."""
    from transformers import Trainer, TrainingArguments

    if settings.freeze_feature_encoder:
        model.freeze_feature_encoder()
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    args = TrainingArguments(
        output_dir=str(Path(settings.output_dir) / "checkpoints"),
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=0,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=2,
        seed=settings.seed,
        bf16=bf16,
        fp16=cuda and not bf16,
        use_cpu=not cuda,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=not settings.progress_bar,
    )
    return Trainer(model=model, args=args, train_dataset=dataset, optimizers=(make_optimizer(model, settings), None))


def train(model, dataset, settings: TrainSettings) -> list[dict]:
    """Fine-tune, resuming from the newest checkpoint in ``output_dir/checkpoints`` if there is one.

    Returns:
        The Trainer's log history: dicts with ``step`` and ``loss`` (normalised MSE) among others.
    """
    from transformers.trainer_utils import get_last_checkpoint

    trainer = make_trainer(model, dataset, settings)
    checkpoint_dir = Path(trainer.args.output_dir)
    last = get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None
    if last:
        print(f"Resuming from {last}")
    trainer.train(resume_from_checkpoint=last)
    return trainer.state.log_history


def loss_curve(log_history: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, loss)`` of the training log, loss as normalised MSE."""
    rows = [(row["step"], row["loss"]) for row in log_history if "loss" in row and "step" in row]
    if not rows:
        return np.zeros(0), np.zeros(0)
    steps, losses = zip(*rows)
    return np.asarray(steps), np.asarray(losses)


# ────────────────────────────── inference ─────────────────────────────


def chunk_spans(num_samples: int, chunk_samples: int, context_samples: int):
    """Yield ``(start, keep_start, keep_stop)``: the model reads ``[start, keep_stop)`` and keeps ``[keep_start, keep_stop)``.

    The kept parts tile ``[0, num_samples)``; each is preceded by up to ``context_samples`` of past.
    """
    for keep_start in range(0, num_samples, chunk_samples):
        yield max(0, keep_start - context_samples), keep_start, min(keep_start + chunk_samples, num_samples)


@torch.no_grad()
def predict_inverse(
    model: Wav2Vec2ForNoiseCancellation, audio: np.ndarray, chunk_seconds: float = 10.0, use_encoder: bool = True
) -> np.ndarray:
    """Predict the anti-noise of a clip of any length, one chunk at a time.

    The model is causal, so a chunk only needs the past: each is run with the model's warm-up of
    audio before it, and chunk and warm-up are whole blocks, so the result equals one pass over the
    whole file while memory stays bounded by the chunk.

    Args:
        audio: shape ``(samples,)`` at 16 kHz.

    Returns:
        float32 array of shape ``(samples,)``.
    """
    model.eval()
    device = next(model.parameters()).device
    chunk = max(1, int(chunk_seconds * SAMPLE_RATE) // model.block) * model.block
    inverse = np.zeros(len(audio), dtype=np.float32)
    for start, keep_start, keep_stop in chunk_spans(len(audio), chunk, model.warmup):
        window = torch.as_tensor(audio[start:keep_stop], dtype=torch.float32, device=device)[None]
        out = model(window, use_encoder=use_encoder).inverse[0]
        inverse[keep_start:keep_stop] = out[keep_start - start :].float().cpu().numpy()
    return inverse


class StreamingCanceller:
    """Feed blocks of input of any size, get back the anti-noise of the same samples.

    It keeps only the past the model needs (``warmup`` samples of input and of its raw output) and the
    gains of the current and previous block, so memory is flat however long the stream. The output equals
    ``model(whole_stream).inverse``.

    Example:
        >>> canceller = StreamingCanceller(model)
        >>> for block in blocks:                 # float32 arrays at 16 kHz
        ...     anti_noise = canceller.process(block)
    """

    def __init__(self, model: Wav2Vec2ForNoiseCancellation, use_encoder: bool = True):
        self.model = model.eval()
        self.use_encoder = use_encoder
        self.device = next(model.parameters()).device
        self.history = torch.zeros(model.warmup, device=self.device)  # x before the stream counts as silence
        # The two raw parts of the anti-noise (shared, correction), before the safety gains.
        self.raw_history = torch.zeros(2, model.warmup, dtype=waveform_dtype(self.device), device=self.device)
        self.position = 0  # samples consumed so far
        self.gains: dict[int, torch.Tensor] = {}  # block index → (rank,)
        self.compute_seconds = 0.0

    def _block_gains(self, index: int, buffer: torch.Tensor, buffer_start: int) -> torch.Tensor:
        """Gains of block ``index`` from ``buffer`` (which starts at absolute sample ``buffer_start``)."""
        if index not in self.gains:
            model = self.model
            end = index * model.block - model.latency + 1 - buffer_start  # window ends at b·block − D
            window = buffer[end - model.context : end]
            self.gains[index] = model.block_gains(window[None, None], self.use_encoder)[0, 0]
        return self.gains[index]

    @torch.no_grad()
    def process(self, block: np.ndarray) -> np.ndarray:
        """Anti-noise for ``block`` (shape ``(samples,)``, 16 kHz), the continuation of earlier blocks."""
        import time

        started = time.perf_counter()
        model = self.model
        new = torch.as_tensor(np.asarray(block, dtype=np.float32), device=self.device)
        buffer = torch.cat([self.history, new])
        buffer_start = self.position - len(self.history)
        first, last = self.position // model.block, (self.position + len(new) - 1) // model.block
        indices = [max(first - 1, 0)] + list(range(first, last + 1))
        per_block = torch.stack([self._block_gains(index, buffer, buffer_start) for index in indices])
        x = buffer.to(self.raw_history.dtype)
        parts = model.filter_parts(x[None], self._per_sample(per_block, first, len(buffer), len(new)))
        raw = torch.cat([self.raw_history, torch.cat(parts)[:, -len(new) :]], dim=1)
        shared, correction = raw[:, -len(new) :]
        if model.safety_window:
            ends = [index * model.block - model.latency + 1 - buffer_start for index in indices]
            past = [torch.stack([signal[end - model.safety_window : end] for end in ends]) for signal in (x, *raw)]
            per_sample = self._per_sample(torch.stack(safety_gains(*past), -1), first, len(new), len(new))[0]
            inverse = mix_parts(shared, correction, per_sample[:, 0], per_sample[:, 1])
        else:
            inverse = shared + correction
        self.position += len(new)
        self.history = buffer[len(buffer) - model.warmup :]
        self.raw_history = raw[:, raw.shape[1] - model.warmup :]
        self.gains = {i: g for i, g in self.gains.items() if i >= self.position // model.block - 1}
        self.compute_seconds += time.perf_counter() - started
        return inverse.float().cpu().numpy()

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


def stream_inverse(model, audio: np.ndarray, block_samples: int = 320) -> tuple[np.ndarray, float]:
    """Run ``audio`` through a ``StreamingCanceller`` in blocks; return ``(inverse, real_time_factor)``."""
    canceller = StreamingCanceller(model)
    inverse = np.concatenate([canceller.process(audio[i : i + block_samples]) for i in range(0, len(audio), block_samples)])
    return inverse, canceller.real_time_factor


def heldout_inverses(model, clips: list[Clip], chunk_seconds: float = 10.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The held-out anti-noise of the model and of every baseline, at the model's latency.

    Each clip's tail is predicted with the clip's own past as context: the model, negation and NLMS
    run over the whole clip (NLMS online, as a controller would, so it has adapted by the tail); the
    Wiener predictor is fitted on the training parts only.

    Returns:
        ``(heldout, inverses)``: the tails concatenated in file order, shape ``(samples,)``, and for
        ``negation``, ``nlms``, ``wiener``, ``model`` and ``model_no_encoder`` the anti-noise of the same
        samples.
    """
    delay = model.latency
    coefficients = fit_wiener_predictor(np.concatenate([clip.train for clip in clips]), delay, model.filter_taps)
    methods = {
        "negation": lambda audio: delayed_negation(audio, delay),
        "nlms": lambda audio: nlms_inverse(audio, delay),
        "wiener": lambda audio: wiener_inverse(audio, coefficients, delay),
        "model": lambda audio: predict_inverse(model, audio, chunk_seconds),
        "model_no_encoder": lambda audio: predict_inverse(model, audio, chunk_seconds, use_encoder=False),
    }
    inverses = {name: [] for name in methods}
    for clip in clips:
        audio = np.concatenate([clip.train, clip.heldout])
        for name, method in methods.items():
            inverses[name].append(method(audio)[len(clip.train) :])
    heldout = np.concatenate([clip.heldout for clip in clips])
    return heldout, {name: np.concatenate(parts) for name, parts in inverses.items()}


def per_file_metrics(clips: list[Clip], heldout: np.ndarray, inverse: np.ndarray) -> list[dict]:
    """Name, held-out seconds and NR of each file, from the concatenated held-out tails and their inverse."""
    bounds = np.cumsum([0] + [len(clip.heldout) for clip in clips])
    return [
        {"file": clip.name, "heldout_seconds": (stop - start) / SAMPLE_RATE,
         "noise_reduction_db": noise_reduction_db(heldout[start:stop], inverse[start:stop])}
        for clip, start, stop in zip(clips, bounds[:-1], bounds[1:])
    ]


def format_comparison(heldout: np.ndarray, inverses: dict[str, np.ndarray]) -> str:
    """A small table: NR, 1-s median and worst 10 %, and A-weighted NR of every method, in dB."""
    lines = [f"{'method':<18}{'NR':>8}{'median 1s':>11}{'worst 10%':>11}{'NR(A)':>8}"]
    for name, inverse in inverses.items():
        m = all_metrics(heldout, inverse)
        lines.append(f"{name:<18}{m['nr_db']:>8.1f}{m['nr_db_median_1s']:>11.1f}{m['nr_db_worst10_1s']:>11.1f}{m['nr_dba']:>8.1f}")
    return "\n".join(lines)


def cancel_file(model, path, output_dir, chunk_seconds: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Predict the inverse of a whole new file and write ``<stem>_inverse.wav`` and ``<stem>_residual.wav``.

    Returns:
        ``(audio, inverse)``, float32 of shape ``(samples,)`` at 16 kHz.
    """
    path = Path(path)
    audio = load_audio(path)
    inverse = predict_inverse(model, audio, chunk_seconds)
    save_audio(Path(output_dir) / f"{path.stem}_inverse.wav", inverse)
    save_audio(Path(output_dir) / f"{path.stem}_residual.wav", audio + inverse)
    return audio, inverse


# ────────────────────────────── metrics ───────────────────────────────

OCTAVE_CENTRES_HZ = (63, 125, 250, 500, 1000, 2000, 4000, 8000)


def noise_reduction_db(noise: np.ndarray, inverse: np.ndarray) -> float:
    """NR = 10·log10(Σx² / Σ(x + y)²) in dB; +inf when the residual is exactly zero.

    Args:
        noise: the noise ``x``, shape ``(samples,)``.
        inverse: the anti-noise ``y``, same shape.
    """
    noise = np.asarray(noise, dtype=np.float64)
    residual = noise + np.asarray(inverse, dtype=np.float64)
    return _ratio_db(float(np.sum(noise**2)), float(np.sum(residual**2)))


def _ratio_db(noise_energy: float, residual_energy: float) -> float:
    if noise_energy == 0.0:
        return math.nan
    if residual_energy == 0.0:
        return math.inf
    if not math.isfinite(residual_energy):
        return -math.inf  # a diverged canceller
    return 10.0 * math.log10(noise_energy / residual_energy)


def octave_band_noise_reduction_db(noise: np.ndarray, inverse: np.ndarray, centres=OCTAVE_CENTRES_HZ) -> dict[int, float]:
    """NR per octave band, from the FFT energies of noise and residual (Parseval).

    A band spans ``[centre/√2, centre·√2)``, cut at the Nyquist frequency (so the 8 kHz band is
    5.7–8 kHz). A band the noise has no energy in is NaN.

    Returns:
        ``{centre_hz: dB}``.
    """
    noise = np.asarray(noise, dtype=np.float64)
    noise_power = np.abs(np.fft.rfft(noise)) ** 2
    residual_power = np.abs(np.fft.rfft(noise + np.asarray(inverse, dtype=np.float64))) ** 2
    frequencies = np.fft.rfftfreq(len(noise), 1 / SAMPLE_RATE)
    bands = {}
    for centre in centres:
        inside = (frequencies >= centre / math.sqrt(2)) & (frequencies < centre * math.sqrt(2))
        bands[int(centre)] = _ratio_db(float(noise_power[inside].sum()), float(residual_power[inside].sum()))
    return bands


def segment_noise_reduction_db(noise: np.ndarray, inverse: np.ndarray, segment_seconds: float = 1.0) -> np.ndarray:
    """NR of each non-overlapping segment; a trailing part shorter than half a segment is dropped.

    Returns:
        shape ``(segments,)``, dB.
    """
    length = int(segment_seconds * SAMPLE_RATE)
    starts = [s for s in range(0, len(noise), length) if len(noise) - s >= length / 2 or s == 0]
    return np.array([noise_reduction_db(noise[s : s + length], inverse[s : s + length]) for s in starts])


def segment_nr_summary(noise: np.ndarray, inverse: np.ndarray, segment_seconds: float = 1.0) -> dict[str, float]:
    """Median and worst-10% (10th percentile, taken from the segments themselves) of the per-segment NR in dB."""
    values = segment_noise_reduction_db(noise, inverse, segment_seconds)
    # "lower" picks a real segment's value, so exact cancellation (inf) never turns into NaN.
    return {"median": float(np.percentile(values, 50, method="lower")), "worst10": float(np.percentile(values, 10, method="lower"))}


def a_weighting_db(frequencies_hz: np.ndarray) -> np.ndarray:
    """The IEC 61672-1 A-weighting curve in dB (0 dB at 1 kHz)."""
    f2 = np.asarray(frequencies_hz, dtype=np.float64) ** 2
    with np.errstate(divide="ignore"):
        response = (12194.0**2 * f2**2) / (
            (f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2)
        )
        return 20 * np.log10(response) + 2.0


def a_weighted_noise_reduction_db(noise: np.ndarray, inverse: np.ndarray) -> float:
    """NR of A-weighted Welch spectra: 10·log10(Σ S_x·w / Σ S_e·w) with w = 10^(A(f)/10)."""
    from scipy.signal import welch

    noise = np.asarray(noise, dtype=np.float64)
    segment = min(1024, len(noise))
    frequencies, noise_psd = welch(noise, SAMPLE_RATE, nperseg=segment)
    _, residual_psd = welch(noise + np.asarray(inverse, dtype=np.float64), SAMPLE_RATE, nperseg=segment)
    weights = 10 ** (a_weighting_db(frequencies) / 10)  # 0 at DC
    return _ratio_db(float(np.sum(noise_psd * weights)), float(np.sum(residual_psd * weights)))


def all_metrics(noise: np.ndarray, inverse: np.ndarray) -> dict:
    """Every metric of one result: ``nr_db``, the 1-s median and worst 10%, ``nr_dba`` and ``octave_nr_db``."""
    segments = segment_nr_summary(noise, inverse)
    return {
        "nr_db": noise_reduction_db(noise, inverse),
        "nr_db_median_1s": segments["median"],
        "nr_db_worst10_1s": segments["worst10"],
        "nr_dba": a_weighted_noise_reduction_db(noise, inverse),
        "octave_nr_db": {str(k): v for k, v in octave_band_noise_reduction_db(noise, inverse).items()},
    }


# ───────────────────────────── baselines ──────────────────────────────
# Each returns the anti-noise ``y`` of the same length as the noise, so ``x + y`` is the residual,
# and honours a latency of D samples: y[n] uses x[m] with m ≤ n − D only.


def delayed_negation(noise: np.ndarray, delay: int) -> np.ndarray:
    """``y[n] = −x[n − D]``: negation with D samples of uncompensated delay; at D = 0 the exact inverse."""
    noise = np.asarray(noise, dtype=np.float32)
    return -np.concatenate([np.zeros(delay, np.float32), noise[: len(noise) - delay]])[: len(noise)]


def _nlms_loop(noise, delay, taps, step_size, eps):
    samples = len(noise)
    padded = np.concatenate((np.zeros(taps - 1 + delay), noise))  # noise[i] is padded[i + taps − 1 + delay]
    prediction = np.zeros(samples + delay)
    weights = np.zeros(taps)
    for t in range(samples):
        now = np.ascontiguousarray(padded[t + delay : t + taps + delay][::-1])  # x[t], x[t−1], …
        then = np.ascontiguousarray(padded[t : t + taps][::-1])  # x[t−D], …: what x[t]'s prediction used
        if delay == 0:
            prediction[t] = np.dot(weights, now)
        error = noise[t] - prediction[t]  # observed now: it needs x[t]
        weights += (step_size * error / (eps + np.dot(then, then))) * then
        if delay > 0:
            prediction[t + delay] = np.dot(weights, now)  # made at t, emitted at t + D
    return -prediction[:samples]


def nlms_inverse(
    noise: np.ndarray, delay: int = 0, taps: int = 64, step_size: float | None = None, eps: float = 1e-6
) -> np.ndarray:
    """Online NLMS adaptive predictor, run sample by sample as a feedforward noise controller runs.

    At each time t it observes ``x[t]``, measures the error ``e = x[t] − p[t]`` of the prediction it
    made D samples earlier from ``u = [x[t−D], …, x[t−D−taps+1]]``, adapts
    ``w += μ·e·u / (ε + u·u)``, and predicts ``p[t+D] = w·[x[t], …]``. The anti-noise is ``y = −p``,
    so ``y[n]`` depends only on ``x[m]`` with ``m ≤ n − D``. Compiled with numba (a dependency of
    librosa), so it runs hundreds of times faster than real time.

    Args:
        noise: shape ``(samples,)``.
        delay: D, samples.
        step_size: μ; default ``0.2 / (D + 1)``. Delayed LMS is stable only for steps that shrink as
            the delay grows; at μ = 0.1 it diverged on the suite's tones from D = 16 on, and
            0.2 / (D + 1) sat in the stable, best range of a sweep over the suite at D = 16, 80, 320.

    Returns:
        float32 of shape ``(samples,)``.
    """
    if step_size is None:
        step_size = 0.2 / (delay + 1)
    noise64 = np.asarray(noise, dtype=np.float64)
    return _compiled_nlms()(noise64, int(delay), int(taps), float(step_size), float(eps)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _compiled_nlms():
    import numba

    return numba.njit(_nlms_loop)


def fit_wiener_predictor(train: np.ndarray, delay: int = 0, order: int = 64) -> np.ndarray:
    """The optimal linear D-step predictor fitted on ``train``: ``h`` minimising E[(x[n] − Σₖ h[k]·x[n−D−k])²].

    Solves the normal equations ``R h = r[D : D+order]`` (Toeplitz ``R`` from the autocorrelation)
    with ``scipy.linalg.solve_toeplitz``. At D = 0 the answer is exactly ``[1, 0, …]``: negation.

    Returns:
        ``h``, shape ``(order,)``.
    """
    from scipy.linalg import solve_toeplitz
    from scipy.signal import fftconvolve

    if delay == 0:
        # The right side is then R's own first column, so e₀ solves it exactly, however ill-conditioned
        # R is; solving numerically (with the loading below) would only blur it at the rounding level.
        return np.eye(order)[0]
    x = np.asarray(train, dtype=np.float64)
    lags = delay + order
    autocorrelation = fftconvolve(x, x[::-1], mode="full")[len(x) - 1 : len(x) - 1 + lags] / len(x)
    column = autocorrelation[:order].copy()
    column[0] *= 1 + 1e-9  # a whisper of diagonal loading keeps pure tones solvable
    return solve_toeplitz(column, autocorrelation[delay : delay + order])


def wiener_inverse(noise: np.ndarray, coefficients: np.ndarray, delay: int = 0) -> np.ndarray:
    """Anti-noise from a fixed predictor: ``y[n] = −Σₖ h[k]·x[n−D−k]``."""
    from scipy.signal import lfilter

    impulse_response = np.concatenate([np.zeros(delay), coefficients])
    return (-lfilter(impulse_response, [1.0], np.asarray(noise, dtype=np.float64))).astype(np.float32)


def linear_prediction_bound_db(power_spectrum: np.ndarray, delay: int) -> float:
    """Best NR any causal linear predictor can reach D samples ahead on a stationary process.

    Kolmogorov–Szegő: factor the spectrum into a minimum-phase ``ψ`` (ψ₀ = 1) through the cepstrum;
    then ``NR_max(D) = −10·log10(Σ_{k<D} ψₖ² / Σₖ ψₖ²)``.

    Args:
        power_spectrum: two-sided spectrum on a uniform FFT grid, shape ``(N,)``, any scale.
        delay: D, samples; D = 0 gives +inf (negation is exact).
    """
    if delay == 0:
        return math.inf
    size = len(power_spectrum)
    cepstrum = np.fft.ifft(np.log(power_spectrum)).real
    folded = np.zeros(size)
    folded[0] = cepstrum[0] / 2
    folded[1 : (size + 1) // 2] = cepstrum[1 : (size + 1) // 2]
    if size % 2 == 0:
        folded[size // 2] = cepstrum[size // 2] / 2
    psi = np.fft.ifft(np.exp(np.fft.fft(folded))).real
    energy = psi**2
    return _ratio_db(float(energy.sum()), float(energy[:delay].sum()))


# ─────────────────────────────── outputs ──────────────────────────────


def write_outputs(output_dir, heldout: np.ndarray, inverse: np.ndarray, metrics: dict) -> dict[str, Path]:
    """Write the held-out input, its predicted inverse, the residual and ``metrics.json`` to ``output_dir``."""
    output_dir = Path(output_dir)
    paths = {
        "input": save_audio(output_dir / "input.wav", heldout),
        "inverse": save_audio(output_dir / "inverse.wav", inverse),
        "residual": save_audio(output_dir / "residual.wav", heldout + inverse),
        "metrics": output_dir / "metrics.json",
    }
    paths["metrics"].write_text(json.dumps(metrics, indent=2))
    return paths


def play_all(signals: dict[str, np.ndarray]):
    """Show a labelled audio player per signal, all scaled by one factor so their levels compare."""
    from IPython.display import Audio, display

    peak = max(float(np.max(np.abs(s))) for s in signals.values())
    scale = 1.0 / peak if peak > 1.0 else 1.0
    for label, signal in signals.items():
        print(label)
        display(Audio(np.asarray(signal, dtype=np.float32) * scale, rate=SAMPLE_RATE, normalize=False))


# ──────────────────────────────── plots ───────────────────────────────


def plot_loss_curve(log_history: list[dict], path=None):
    """Training loss (normalised MSE, log scale) against step; saved to ``path`` if given."""
    import matplotlib.pyplot as plt

    steps, losses = loss_curve(log_history)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.semilogy(steps, losses, marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("normalised MSE")
    ax.set_title("Fine-tuning loss (−10·log10 of it is the training NR in dB)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_waveforms(noise: np.ndarray, inverse: np.ndarray, title: str, path=None, zoom_seconds: float = 0.02):
    """Input, predicted inverse and residual: full length (left) and zoomed on the loudest part (right)."""
    import matplotlib.pyplot as plt

    residual = noise + inverse
    time = np.arange(len(noise)) / SAMPLE_RATE
    centre = int(np.argmax(np.abs(noise)))
    half = int(zoom_seconds * SAMPLE_RATE / 2)
    zoom = slice(max(0, centre - half), min(len(noise), centre + half))
    fig, axes = plt.subplots(3, 2, figsize=(12, 7), sharex="col", sharey=True)
    for row, (name, signal) in enumerate([("input", noise), ("predicted inverse", inverse), ("residual", residual)]):
        for col, part in enumerate([slice(None), zoom]):
            axes[row, col].plot(time[part], signal[part], linewidth=0.6)
            axes[row, col].set_ylabel(name)
            axes[row, col].grid(alpha=0.3)
    axes[2, 0].set_xlabel("time (s)")
    axes[2, 1].set_xlabel(f"time (s), {zoom_seconds * 1000:g} ms around the peak")
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_spectrograms(noise: np.ndarray, inverse: np.ndarray, title: str, path=None):
    """Log-magnitude spectrograms of input, predicted inverse and residual on one colour scale."""
    import librosa
    import librosa.display
    import matplotlib.pyplot as plt

    signals = [("input", noise), ("predicted inverse", inverse), ("residual", noise + inverse)]
    reference = float(np.max(np.abs(librosa.stft(noise, n_fft=1024, hop_length=256))))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True, layout="constrained")
    for ax, (name, signal) in zip(axes, signals):
        magnitude = np.abs(librosa.stft(np.asarray(signal, dtype=np.float32), n_fft=1024, hop_length=256))
        db = librosa.amplitude_to_db(magnitude, ref=reference, amin=1e-10, top_db=None)
        image = librosa.display.specshow(
            db, sr=SAMPLE_RATE, hop_length=256, x_axis="time", y_axis="log", ax=ax, vmin=-120, vmax=0
        )
        ax.set_title(name)
    fig.colorbar(image, ax=axes, format="%+.0f dB")
    fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
