"""Audio in and out: decode, check, resample to 16 kHz mono, write 32-bit float WAV.

Arrays are float32 ``(samples,)`` at ``SAMPLE_RATE`` unless a docstring says otherwise. The input file
is only ever read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif")
SAMPLE_AUDIO_DIR = Path(__file__).resolve().parents[1] / "sample_audio"
DEFAULT_SAMPLE = SAMPLE_AUDIO_DIR / "engine_honda_nsx.wav"
# A clip whose peak is below this (-120 dBFS) carries nothing to cancel.
SILENCE_PEAK = 1e-6


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


def at_rms(x: np.ndarray, rms: float = 0.1) -> np.ndarray:
    """``x`` scaled to the root-mean-square ``rms``, float32 of the same shape."""
    return (x * (rms / np.sqrt(np.mean(x**2)))).astype(np.float32)


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
