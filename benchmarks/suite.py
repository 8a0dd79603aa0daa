"""The benchmarks' generated noises, the tuning suite's and the test set's, and the linear-prediction bound.

The tuning set is ``synthetic_suite`` and ``switching_suite`` with ``sample_audio/``: every constant chosen by
measurement was chosen there (``docs/tuned_constants.md``). The test set is ``test_suite`` and
``test_switching_suite`` with ``benchmarks/test_audio/``: the headline figures come from it.

Each generator returns float32 of shape ``(seconds·16000,)`` at an RMS of 0.1.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wav2vec2_anc.audio_io import SAMPLE_RATE, at_rms  # noqa: E402,F401 (at_rms: the suite's level, imported from here)
from wav2vec2_anc.metrics import ratio_db  # noqa: E402


def shaped_noise(seconds: float, exponent: float, seed: int = 0) -> np.ndarray:
    """Gaussian noise with power spectrum ∝ 1/f**exponent above 20 Hz (flat below): 0 white, 1 pink, 2 brown."""
    rng = np.random.default_rng(seed)
    samples = int(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequencies = np.maximum(np.fft.rfftfreq(samples, 1 / SAMPLE_RATE), 20.0)
    return at_rms(np.fft.irfft(spectrum * frequencies ** (-exponent / 2), n=samples))


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
    tones = at_rms(sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, harmonics + 1)))
    return tones + at_rms(rng.standard_normal(samples), 0.1 * 10 ** (floor_db / 20))


def engine_noise(seconds: float, seed: int = 0, low_hz: float = 30.0, high_hz: float = 60.0, cycles: float = 1.0,
                 harmonics: int = 12) -> np.ndarray:
    """An engine-like harmonic tone whose firing frequency drifts ``low_hz`` → ``high_hz`` → ``low_hz``, ``cycles`` times.

    The default, 30 → 60 → 30 Hz once, is 1800–3600 RPM of a four-stroke four-cylinder (2 firings a revolution).
    """
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    middle, swing = (high_hz + low_hz) / 2, (high_hz - low_hz) / 2
    fundamental = middle - swing * np.cos(2 * np.pi * cycles * t / seconds)
    return harmonic_noise(seconds, fundamental, harmonics=harmonics, seed=seed)


def synthetic_suite(seconds: float = 20.0, seed: int = 0) -> dict[str, np.ndarray]:
    """The benchmark's generated clips: white, pink, brown, 50 Hz mains hum with harmonics, drifting engine."""
    return {
        "white": shaped_noise(seconds, 0.0, seed),
        "pink": shaped_noise(seconds, 1.0, seed + 1),
        "brown": shaped_noise(seconds, 2.0, seed + 2),
        "mains_hum": harmonic_noise(seconds, 50.0, harmonics=8, seed=seed + 3),
        "engine": engine_noise(seconds, seed + 4),
    }


# The test set's generated noises: the tuning suite's kinds under other seeds and other parameters, so that no
# constant chosen on the tuning suite was chosen on them. The seeds are far from the tuning suite's (0–10).
TEST_SEED = 100


def test_suite(seconds: float = 20.0, seed: int = TEST_SEED) -> dict[str, np.ndarray]:
    """The test set's generated clips: white, pink and brown noise of other seeds, a 60 Hz hum with 6 harmonics
    (the tuning suite's is 50 Hz with 8), and an engine drifting 25 → 70 → 25 Hz twice, with 10 harmonics (the
    tuning suite's drifts 30 → 60 → 30 Hz once, with 12). Each float32 of shape ``(seconds·16000,)``, RMS 0.1."""
    return {
        "white_test": shaped_noise(seconds, 0.0, seed),
        "pink_test": shaped_noise(seconds, 1.0, seed + 1),
        "brown_test": shaped_noise(seconds, 2.0, seed + 2),
        "mains_hum_60hz": harmonic_noise(seconds, 60.0, harmonics=6, seed=seed + 3),
        "engine_fast_drift": engine_noise(seconds, seed + 4, low_hz=25.0, high_hz=70.0, cycles=2.0, harmonics=10),
    }


# The test set's switching library: hum at 60 Hz (6 harmonics), engines at other fixed firing frequencies, brown
# noise of another seed; the benchmark adds a test recording (``TEST_SWITCHING_RECORDING``) in place of the Honda.
TEST_SWITCHING_ENGINE_FIRING_HZ = (35.0, 55.0)
TEST_SWITCHING_RECORDING = "engine_ferrari_f360.wav"


def test_switching_suite(seconds: float = 20.0, seed: int = TEST_SEED) -> dict[str, np.ndarray]:
    """Generated noises of the test set's switching library, each with its own optimal filter, RMS 0.1."""
    return {
        "mains_60hz_test": harmonic_noise(seconds, 60.0, harmonics=6, seed=seed + 3),
        **{f"engine_{hz:g}hz_test": harmonic_noise(seconds, hz, harmonics=10, seed=seed + 6 + i)
           for i, hz in enumerate(TEST_SWITCHING_ENGINE_FIRING_HZ)},
        "brown_test": shaped_noise(seconds, 2.0, seed + 2),
    }


# The switching suite's engines: firing frequencies in Hz of three fixed engine speeds (a 4-cylinder
# four-stroke fires twice a revolution, so 900, 1350 and 2100 RPM), far enough apart that their
# harmonic combs, and so their optimal filters, differ.
SWITCHING_ENGINE_FIRING_HZ = (30.0, 45.0, 70.0)


def switching_suite(seconds: float = 20.0, seed: int = 0, with_white: bool = False) -> dict[str, np.ndarray]:
    """Generated noises for the switching benchmark, each predictable and each with its own optimal filter.

    Mains hum at 50 Hz and at 60 Hz (8 harmonics, as ``mains_hum``), engine tones at the fixed firing
    frequencies of ``SWITCHING_ENGINE_FIRING_HZ`` (12 harmonics) and brown noise; with ``with_white``
    also white noise, which no filter predicts (left out of the headline run, where it would only add
    a segment every method fails on alike). The bundled ``engine_honda_nsx.wav`` is added by the benchmark.

    Returns:
        ``{name: float32 of shape (seconds·16000,)}`` at an RMS of 0.1 (tones plus a floor 40 dB down).
    """
    suite = {
        "mains_50hz": harmonic_noise(seconds, 50.0, harmonics=8, seed=seed + 3),
        "mains_60hz": harmonic_noise(seconds, 60.0, harmonics=8, seed=seed + 5),
        **{f"engine_{hz:g}hz": harmonic_noise(seconds, hz, harmonics=12, seed=seed + 6 + i)
           for i, hz in enumerate(SWITCHING_ENGINE_FIRING_HZ)},
        "brown": shaped_noise(seconds, 2.0, seed + 2),
    }
    if with_white:
        suite["white"] = shaped_noise(seconds, 0.0, seed)
    return suite


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
    return ratio_db(float(energy.sum()), float(energy[:delay].sum()))
