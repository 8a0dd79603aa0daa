"""The acoustics of feedforward ANC: scenes (primary and secondary paths), the loudspeaker, the residual.

A reference microphone hears the noise ``x``; it reaches the error microphone (the ear) through the
primary path P. The controller's drive ``y`` reaches it through the loudspeaker ``f`` and the
secondary path S, so the residual is ``e = P∗x + S∗f(y)``. Paths are FIR impulse responses at
``SAMPLE_RATE``, arrays of shape ``(taps,)``; signals are float arrays of shape ``(samples,)``.
Nothing runs at import time; scipy, pyroomacoustics, soundfile, numba and torch load inside the
functions that need them.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from .audio_io import SAMPLE_RATE

BANDPASS_EDGES_HZ = (200.0, 7900.0)
BANDPASS_PRIMARY_TAPS = 512
BANDPASS_SECONDARY_TAPS = 256
# S below unity, so the two paths differ in gain as well as in delay and length: a controller or an
# FxNLMS that forgot S (or assumed it unity) would be off by 6 dB, not merely late.
BANDPASS_SECONDARY_GAIN = 0.5

ROOM_DIMENSIONS_M = (3.0, 4.0, 2.0)
ROOM_REFERENCE_MIC_M = (1.5, 1.0, 1.0)
ROOM_LOUDSPEAKER_M = (1.5, 2.5, 1.0)
ROOM_ERROR_MIC_M = (1.5, 3.0, 1.0)
ROOM_TAPS = 512

# A tap counts as the first arrival once it reaches this fraction of the path's largest tap. Not the
# largest tap itself: in Deep ANC's symmetric room, image sources coincide in pairs and fours, so
# reflections of P sum to 2.4× its direct path and the argmax lands on one of them (228 samples of
# "lead" instead of the physical 70). The sinc side lobes before a direct path stay below 0.22 of it.
ARRIVAL_FRACTION = 0.25

# inverse_sef caps its target at this fraction of the loudspeaker's largest output η·√(π/2): the
# output beyond it needs an unbounded drive (at the cap the drive is already 4.9·η).
SEF_CAP = 1.0 - 1e-6


@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
    """The two acoustic paths of a feedforward ANC system, FIR at ``SAMPLE_RATE``.

    Attributes:
        name: ``"none"``, ``"bandpass"``, ``"room"`` or the file a user scene came from.
        primary: P, reference microphone → error microphone, shape ``(taps,)``.
        secondary: S, loudspeaker input → error microphone, shape ``(taps,)``.
        rt60_s: the room's reverberation time in seconds, for the ``room`` scene only.
    """

    name: str
    primary: np.ndarray
    secondary: np.ndarray
    rt60_s: float | None = None

    @property
    def lead_samples(self) -> int:
        """The acoustic lead in samples: P's first arrival minus S's (``first_arrival``).

        Where each path's largest tap is its direct path (band-pass FIRs, free field) this is
        ``argmax|P| − argmax|S|``.
        """
        return first_arrival(self.primary) - first_arrival(self.secondary)

    def describe(self) -> dict:
        """A JSON-able summary: name, taps of each path, lead in samples (and RT60 for a room)."""
        summary = {
            "name": self.name,
            "primary_taps": int(len(self.primary)),
            "secondary_taps": int(len(self.secondary)),
            "lead_samples": int(self.lead_samples),
        }
        if self.rt60_s is not None:
            summary["rt60_s"] = float(self.rt60_s)
        return summary


def first_arrival(impulse_response: np.ndarray, fraction: float = ARRIVAL_FRACTION) -> int:
    """The first tap whose magnitude reaches ``fraction`` of the largest, refined to the top of its peak.

    Args:
        impulse_response: shape ``(taps,)``.

    Returns:
        The index in samples of the direct path's largest tap (the first local maximum of ``|h|``
        at or after the first tap above the threshold).
    """
    magnitude = np.abs(np.asarray(impulse_response, dtype=np.float64))
    index = int(np.argmax(magnitude >= fraction * magnitude.max()))
    while index + 1 < len(magnitude) and magnitude[index + 1] > magnitude[index]:
        index += 1  # a fractional delay spreads the arrival over neighbouring taps; take its top
    return index


# ── scenes ──


def none_scene() -> Scene:
    """No acoustics: the anti-noise is added straight to the input (P = S = [1], lead 0)."""
    return Scene("none", np.ones(1), np.ones(1))


def bandpass_scene() -> Scene:
    """NTU SFANC/GFANC's synthetic paths: linear-phase band-pass FIRs, 200–7900 Hz.

    P has 512 taps (delay 255.5 samples), S has 256 (delay 127.5) scaled by
    ``BANDPASS_SECONDARY_GAIN`` = 0.5, so the lead is 128 samples.
    """
    from scipy.signal import firwin

    def band(taps):
        return firwin(taps, BANDPASS_EDGES_HZ, pass_zero=False, fs=SAMPLE_RATE)

    return Scene("bandpass", band(BANDPASS_PRIMARY_TAPS), BANDPASS_SECONDARY_GAIN * band(BANDPASS_SECONDARY_TAPS))


def room_paths(rt60: float = 0.2, taps: int | None = ROOM_TAPS) -> tuple[np.ndarray, np.ndarray]:
    """Deep ANC's room by the image method (pyroomacoustics ``ShoeBox``), deterministic.

    A 3×4×2 m room whose uniform wall absorption and image order come from ``pra.inverse_sabine``
    for ``rt60``; the reference microphone at (1.5, 1, 1) m, the loudspeaker at (1.5, 2.5, 1) and
    the error microphone at (1.5, 3, 1). Both paths are computed as sources at the reference
    microphone and at the loudspeaker heard at the error microphone.

    Args:
        rt60: reverberation time, seconds.
        taps: truncate both responses to this many taps; ``None`` keeps the whole of each.

    Returns:
        ``(primary, secondary)``, float64 of shape ``(taps,)`` (or each its full length).
    """
    import pyroomacoustics as pra

    absorption, max_order = pra.inverse_sabine(rt60, ROOM_DIMENSIONS_M)
    room = pra.ShoeBox(
        list(ROOM_DIMENSIONS_M), fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=max_order
    )
    room.add_source(list(ROOM_REFERENCE_MIC_M))
    room.add_source(list(ROOM_LOUDSPEAKER_M))
    room.add_microphone(list(ROOM_ERROR_MIC_M))
    room.compute_rir()
    # pyroomacoustics centres each image's fractional-delay sinc, so every response comes delayed by
    # frac_delay_length // 2 samples (40). Dropping those samples from both paths alike leaves the lead
    # as it was and puts each direct path at its distance over c (P at 93.3 samples, S at 23.3), as
    # the RIR generator Deep ANC used has them. What it drops of S is −30 dB of its energy: the
    # pre-echo of pyroomacoustics' zero-phase 10 Hz high-pass (the sinc tails alone are −47 dB).
    global_delay = pra.constants.get("frac_delay_length") // 2
    primary, secondary = (np.asarray(room.rir[0][s], dtype=np.float64)[global_delay:] for s in (0, 1))
    if taps is not None:
        primary, secondary = primary[:taps], secondary[:taps]
    return primary, secondary


def room_scene(rt60: float = 0.2) -> Scene:
    """Deep ANC's room (``room_paths``), both paths truncated to 512 taps; lead 70 samples."""
    primary, secondary = room_paths(rt60, ROOM_TAPS)
    return Scene("room", primary, secondary, rt60_s=float(rt60))


def load_scene(path: str | os.PathLike) -> Scene:
    """A user's measured or designed paths, resampled to ``SAMPLE_RATE``.

    Either an ``.npz`` with arrays ``primary`` and ``secondary`` (and optionally a scalar
    ``sample_rate``, default 16000), or a 2-channel audio file (WAV, FLAC) with P in channel 0 and
    S in channel 1. Resampling scales by ``rate / SAMPLE_RATE`` so each filter keeps its gain.

    Raises:
        ValueError: naming the file and the problem (missing arrays, wrong channel count, empty or
            non-finite paths, unreadable file).
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        primary, secondary, rate = _read_npz_paths(path)
    else:
        primary, secondary, rate = _read_audio_paths(path)
    paths = [_check_path(response, role, path) for response, role in ((primary, "primary"), (secondary, "secondary"))]
    if rate != SAMPLE_RATE:
        paths = [resample_impulse_response(response, rate) for response in paths]
    return Scene(str(path), *paths)


def _read_npz_paths(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("primary", "secondary") if key not in archive.files]
            if missing:
                raise ValueError(f"{path}: scene file lacks array(s) {missing}; it has {sorted(archive.files)}")
            rate = int(archive["sample_rate"]) if "sample_rate" in archive.files else SAMPLE_RATE
            return np.asarray(archive["primary"]), np.asarray(archive["secondary"]), rate
    except (OSError, EOFError) as error:  # not a zip archive, truncated, …
        raise ValueError(f"{path}: cannot read the scene file as .npz ({error})") from error


def _read_audio_paths(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    import soundfile as sf

    try:
        audio, rate = sf.read(path, dtype="float64", always_2d=True)
    except Exception as error:  # soundfile raises its own LibsndfileError, RuntimeError, TypeError
        raise ValueError(f"{path}: cannot read the scene file as audio ({error})") from error
    if audio.shape[1] != 2:
        raise ValueError(
            f"{path}: a scene audio file needs 2 channels (0: primary path, 1: secondary path); it has {audio.shape[1]}"
        )
    return audio[:, 0], audio[:, 1], int(rate)


def _check_path(response: np.ndarray, role: str, path: Path) -> np.ndarray:
    response = np.asarray(response, dtype=np.float64)
    if response.ndim != 1:
        raise ValueError(f"{path}: the {role} path must be 1-D; it has shape {response.shape}")
    if response.size == 0 or not np.any(response):
        raise ValueError(f"{path}: the {role} path is empty (no taps, or all zero)")
    if not np.all(np.isfinite(response)):
        raise ValueError(f"{path}: the {role} path has non-finite taps")
    return response


def resample_impulse_response(impulse_response: np.ndarray, sample_rate: int) -> np.ndarray:
    """An FIR path at ``sample_rate`` as the same filter at ``SAMPLE_RATE``, shape ``(taps',)``.

    ``resample_poly`` keeps the waveform's values; a filter's taps are its impulse response times the
    sampling interval, so they are scaled by ``sample_rate / SAMPLE_RATE`` to keep its gain (a unit
    impulse at 48 kHz becomes a low-pass kernel whose taps sum to 1, not 1/3).
    """
    from scipy.signal import resample_poly

    divisor = math.gcd(int(sample_rate), SAMPLE_RATE)
    resampled = resample_poly(np.asarray(impulse_response, dtype=np.float64), SAMPLE_RATE // divisor, sample_rate // divisor)
    return resampled * (sample_rate / SAMPLE_RATE)


def make_scene(spec: str | os.PathLike, rt60: float = 0.2) -> Scene:
    """``"none"`` | ``"bandpass"`` | ``"room"`` (with ``rt60``, seconds) | a path for ``load_scene``."""
    builders = {"none": none_scene, "bandpass": bandpass_scene, "room": lambda: room_scene(rt60)}
    if str(spec) in builders:
        return builders[str(spec)]()
    if not Path(spec).exists():
        raise ValueError(f"scene {str(spec)!r} is neither one of {sorted(builders)} nor an existing file")
    return load_scene(spec)


# ── the loudspeaker: the scaled error function ──


def _is_linear(eta) -> bool:
    return eta is None or math.isinf(eta)


def sef(y, eta: float | None):
    """The loudspeaker, Deep ANC's scaled error function: ``f(y) = η·√(π/2)·erf(y / (√2·η))``.

    ``f(y) = ∫₀^y exp(−z²/(2η²)) dz``, so ``f′(0) = 1`` (small signals pass unchanged) and
    ``|f| < η·√(π/2)``. ``η`` None or inf is a linear loudspeaker.

    Args:
        y: the drive, a numpy array (or float) or a torch tensor (differentiable), any shape.
        eta: η, in the drive's units.

    Returns:
        ``f(y)``, the same type and shape.
    """
    if _is_linear(eta):
        return y
    if _is_numpy(y):
        from scipy.special import erf

        return eta * math.sqrt(math.pi / 2) * erf(np.asarray(y, dtype=np.float64) / (math.sqrt(2) * eta))
    import torch

    return eta * math.sqrt(math.pi / 2) * torch.special.erf(y / (math.sqrt(2) * eta))


def inverse_sef(u, eta: float | None):
    """The drive that makes the loudspeaker output ``u``: ``f⁻¹(u) = √2·η·erfinv(u / (η·√(π/2)))``.

    ``u`` is first capped to ``±SEF_CAP·η·√(π/2)``, just below f's supremum, which no finite drive
    reaches; so ``|f⁻¹(u)| ≤ 4.9·η``.

    Args:
        u: the wanted output, a numpy array (or float) or a torch tensor, any shape.
        eta: η; None or inf is linear (``u`` is returned).

    Returns:
        The drive, the same type and shape.
    """
    if _is_linear(eta):
        return u
    ceiling = SEF_CAP * eta * math.sqrt(math.pi / 2)
    if _is_numpy(u):
        from scipy.special import erfinv

        capped = np.clip(np.asarray(u, dtype=np.float64), -ceiling, ceiling)
        return math.sqrt(2) * eta * erfinv(capped / (eta * math.sqrt(math.pi / 2)))
    import torch

    capped = u.clamp(-ceiling, ceiling)
    return math.sqrt(2) * eta * torch.special.erfinv(capped / (eta * math.sqrt(math.pi / 2)))


def _is_numpy(value) -> bool:
    return isinstance(value, (np.ndarray, np.generic, float, int, list, tuple))


def parse_loudspeaker(spec: str) -> float | None:
    """``"linear"`` → None; ``"sat:R"`` → R, the saturation as a multiple of a drive RMS.

    The caller sets ``η = R ×`` the RMS of the optimal linear controller's drive on the clip's
    training part, so R = 2 saturates the loudest few percent of that drive.

    Raises:
        ValueError: for anything else, or R not a positive finite number.
    """
    text = str(spec).strip().lower()
    if text == "linear":
        return None
    if text.startswith("sat:"):
        try:
            ratio = float(text[4:])
        except ValueError:
            ratio = math.nan
        if math.isfinite(ratio) and ratio > 0:
            return ratio
    raise ValueError(f"loudspeaker {spec!r}: expected 'linear' or 'sat:R' with R a positive number (e.g. 'sat:2')")


# ── the plant ──


def causal_filter(impulse_response: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """``(h∗x)[n]`` for ``n < len(x)``, from zero initial state, float64 of shape ``(samples,)``.

    Trailing zero taps are dropped first. A one-tap path is then a multiplication (exact, so the
    ``none`` scene, and a zero-padded unit impulse, reproduce today's arithmetic bit for bit); longer
    paths use overlap-add FFT convolution.
    """
    impulse_response = np.trim_zeros(np.asarray(impulse_response, dtype=np.float64), "b")
    signal = np.asarray(signal, dtype=np.float64)
    if len(impulse_response) <= 1:
        if len(impulse_response) == 0:
            return np.zeros_like(signal)
        return impulse_response[0] * signal
    from scipy.signal import oaconvolve

    return oaconvolve(signal, impulse_response)[: len(signal)]


def noise_at_ear(x: np.ndarray, scene: Scene) -> np.ndarray:
    """``d = P∗x``, the noise at the error microphone with ANC off, float64 of shape ``(samples,)``."""
    return causal_filter(scene.primary, x)


def plant_residual(x: np.ndarray, drive: np.ndarray, scene: Scene, eta: float | None = None) -> np.ndarray:
    """The residual at the error microphone, ``e = P∗x + S∗f(drive)``, from zero initial state.

    Args:
        x: the noise at the reference microphone, shape ``(samples,)``.
        drive: the controller's drive ``y``, same shape.
        eta: the loudspeaker's η (``sef``); None is linear.

    Returns:
        float64 of shape ``(samples,)``.
    """
    return noise_at_ear(x, scene) + causal_filter(scene.secondary, sef(np.asarray(drive, dtype=np.float64), eta))


def secondary_path_torch(drive, secondary, eta: float | None = None):
    """``S∗f(drive)`` in torch, causal and the same length, differentiable (FFT convolution).

    Args:
        drive: tensor of shape ``(batch, samples)`` or ``(samples,)``.
        secondary: S, array or tensor of shape ``(taps,)``.
        eta: the loudspeaker's η; None is linear.

    Returns:
        A tensor like ``drive``: what the loudspeaker adds at the error microphone.
    """
    import torch

    from .signal_path import causal_fir

    output = sef(drive, eta)
    secondary = torch.as_tensor(np.asarray(secondary) if _is_numpy(secondary) else secondary)
    secondary = secondary.to(dtype=output.dtype, device=output.device)
    batch = output if output.dim() == 2 else output[None]
    at_ear = causal_fir(batch, secondary[None])[:, 0]
    return at_ear if output.dim() == 2 else at_ear[0]
