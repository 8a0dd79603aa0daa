"""The field's yardsticks at the same latency: delayed negation, online NLMS and the optimal linear (Wiener) predictor.

Each returns the anti-noise ``y`` of the same length as the noise, so ``x + y`` is the residual, and
honours a latency of D samples: ``y[n]`` uses ``x[m]`` with ``m ≤ n − D`` only.
"""

from __future__ import annotations

import functools

import numpy as np


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


@functools.cache
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

    if delay == 0:
        # The right side is then R's own first column, so e₀ solves it exactly, however ill-conditioned
        # R is; solving numerically (with the loading below) would only blur it at the rounding level.
        return np.eye(order)[0]
    autocorrelation = autocorrelation_lags(np.asarray(train, dtype=np.float64), delay + order)
    column = autocorrelation[:order].copy()
    column[0] *= 1 + 1e-9  # a whisper of diagonal loading keeps pure tones solvable
    return solve_toeplitz(column, autocorrelation[delay : delay + order])


def autocorrelation_lags(x: np.ndarray, lags: int) -> np.ndarray:
    """The biased autocorrelation ``r[k] = Σₙ x[n]·x[n+k] / N`` for ``k < lags`` only, shape ``(lags,)``.

    One FFT padded to ``N + lags`` (not ``2N``) keeps the circular wrap out of the lags asked for.
    """
    size = 1 << (len(x) + lags - 1).bit_length()
    spectrum = np.fft.rfft(x, size)
    return np.fft.irfft(spectrum * spectrum.conj(), size)[:lags] / len(x)


def wiener_inverse(noise: np.ndarray, coefficients: np.ndarray, delay: int = 0) -> np.ndarray:
    """Anti-noise from a fixed predictor: ``y[n] = −Σₖ h[k]·x[n−D−k]``."""
    from scipy.signal import lfilter

    impulse_response = np.concatenate([np.zeros(delay), coefficients])
    return (-lfilter(impulse_response, [1.0], np.asarray(noise, dtype=np.float64))).astype(np.float32)
