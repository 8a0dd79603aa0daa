"""Noise-reduction metrics in dB: whole clip, per 1-s segment, per octave band and A-weighted."""

from __future__ import annotations

import math

import numpy as np

from .audio_io import SAMPLE_RATE

OCTAVE_CENTRES_HZ = (63, 125, 250, 500, 1000, 2000, 4000, 8000)


def noise_reduction_db(noise: np.ndarray, inverse: np.ndarray) -> float:
    """NR = 10·log10(Σx² / Σ(x + y)²) in dB; +inf when the residual is exactly zero.

    Args:
        noise: the noise ``x``, shape ``(samples,)``.
        inverse: the anti-noise ``y``, same shape.
    """
    noise = np.asarray(noise, dtype=np.float64)
    residual = noise + np.asarray(inverse, dtype=np.float64)
    return ratio_db(float(np.sum(noise**2)), float(np.sum(residual**2)))


def ratio_db(noise_energy: float, residual_energy: float) -> float:
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
        bands[int(centre)] = ratio_db(float(noise_power[inside].sum()), float(residual_power[inside].sum()))
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
    return {
        "median": float(np.percentile(values, 50, method="lower")),
        "worst10": float(np.percentile(values, 10, method="lower")),
    }


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
    return ratio_db(float(np.sum(noise_psd * weights)), float(np.sum(residual_psd * weights)))


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


# Above this a residual is float rounding: the cancellation is exact, and "346.5 dB" would only mislead.
EXACT_DB = 100.0


def display_db(value: float, unit: bool = True) -> str:
    """An NR for people to read: ``"12.3 dB"``, or ``"exact (> 100 dB)"`` above ``EXACT_DB`` (the records keep the value);
    without ``unit`` (a table's cell) ``"12.3"`` or ``"exact"``."""
    if value > EXACT_DB:
        return f"exact (> {EXACT_DB:g} dB)" if unit else "exact"
    return f"{value:.1f} dB" if unit else f"{value:.1f}"


def lower_median(values) -> float:
    """The median as one of the values themselves (the lower of the middle two), so ∞ never turns into NaN."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.percentile(values, 50, method="lower")) if len(values) else float("nan")
