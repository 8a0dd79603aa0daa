"""The field's yardsticks at the same latency: delayed negation, online NLMS and the optimal linear (Wiener) predictor.

Each returns the anti-noise ``y`` of the same length as the noise, so ``x + y`` is the residual, and
honours a latency of D samples: ``y[n]`` uses ``x[m]`` with ``m ≤ n − D`` only.
"""

from __future__ import annotations

import functools

import numpy as np

# Diagonal loading, as a fraction of the input's power added to R's diagonal: as if a white floor that far
# below the noise had been in the training audio. A whisper (1e-9) keeps pure tones solvable and changes
# nothing else; a filter bank's filters get a real floor (30 dB down), because each also plays, for up to one
# update block after a switch, on noise it was not fitted for: unloaded, a filter fitted where a recording
# has empty bands (the bundled engine, 1 ms ahead) boosts white noise by 22.6 dB, loaded by 5.7 dB, for 0.1 dB
# on its own noise (0.4–2.2 dB on the switching suite's tones fitted alone at 1 ms; in the trained model nothing
# measurable: benchmarks/README.md, "Noise that changes").
WHISPER_LOADING = 1e-9
BANK_LOADING = 1e-3


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


def fit_wiener_predictor(train: np.ndarray, delay: int = 0, order: int = 64, loading: float = WHISPER_LOADING) -> np.ndarray:
    """The optimal linear D-step predictor fitted on ``train``: ``h`` minimising E[(x[n] − Σₖ h[k]·x[n−D−k])²].

    Solves the normal equations ``R h = r[D : D+order]`` (Toeplitz ``R`` from the autocorrelation,
    its diagonal times ``1 + loading``) with ``scipy.linalg.solve_toeplitz``. At D = 0 the answer is
    exactly ``[1, 0, …]``: negation. The Toeplitz ``R`` is Levinson's shortcut, not the exact least-squares
    fit of the training samples (``fit_wiener_controller`` solves that in a scene); kept so that the
    figures without a scene stay as published (the exact fit would move them by at most 0.8 dB, the hum at 1 ms).

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
    column[0] *= 1 + loading
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


# ── scene-aware baselines: a controller whose drive reaches the ear through S (``acoustics``) ──
#
# These return the drive ``y`` (float64, shape ``(samples,)``); the residual is
# ``acoustics.plant_residual(x, y, scene, eta)``. In the ``none`` scene that is ``x + y`` again.


def crosscorrelation_lags(a: np.ndarray, b: np.ndarray, lags: int) -> np.ndarray:
    """The biased cross-correlation ``c[k] = Σₙ a[n+k]·b[n] / N`` for ``k < lags`` only, shape ``(lags,)``.

    The same single padded FFT as ``autocorrelation_lags``; with ``a`` equal to ``b`` it returns
    that function's values bit for bit.
    """
    size = 1 << (len(a) + lags - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(a, size) * np.fft.rfft(b, size).conj(), size)[:lags] / len(a)


def lag_covariance(x: np.ndarray, lags: int) -> np.ndarray:
    """``R[i, j] = Σₙ x[n−i]·x[n−j] / N`` over the signal's own samples ``n < N`` (zeros before it), shape ``(lags, lags)``.

    The exact normal matrix of a causal FIR least-squares fit on ``x``: the autocorrelation's Toeplitz
    matrix less the end terms it counts beyond the last sample (``R[i+1, j+1] = R[i, j] − x[N−1−i]·x[N−1−j]/N``),
    which at 40–70 dB of cancellation are not negligible.
    """
    from scipy.linalg import toeplitz

    tail = np.pad(np.asarray(x, dtype=np.float64)[::-1][: lags - 1], (0, max(0, lags - 1 - len(x))))
    ends = toeplitz(np.concatenate([[0.0], tail]), np.zeros(lags))
    return toeplitz(autocorrelation_lags(x, lags)) - ends @ ends.T / len(x)


def fit_wiener_controller(train: np.ndarray, scene, delay: int = 0, taps: int = 64,
                          loading: float = WHISPER_LOADING) -> np.ndarray:
    """The optimal causal linear controller fitted on ``train``: ``w`` minimising Σ(d + w∗r_D)².

    ``d = P∗x`` is the noise at the ear and ``r = S∗x`` the filtered reference, delayed by D:
    because ``S∗(w∗x) = w∗(S∗x)`` for a fixed filter, this is an ordinary least-squares problem over
    the training samples, solved exactly by its normal equations ``R w = −c`` (``R`` the lag covariance
    of r, ``lag_covariance``; ``c`` the cross-correlation of d with r at lags D…D+taps−1). The
    autocorrelation's Toeplitz matrix in place of ``R`` (Levinson's shortcut) lost up to 20 dB on
    held-out audio in the band-pass scene (a hum 55 against 73 dB, the rock-slide recording 34 against
    45). In the ``none`` scene ``w = −fit_wiener_predictor(train, delay, taps)``; at D = 0 exactly ``[−1, 0, …]``.

    Args:
        train: the reference-microphone noise ``x``, shape ``(samples,)``.
        scene: an ``acoustics.Scene``.
        delay: D, samples.
        taps: length of ``w``.
        loading: diagonal loading, a fraction of the filtered reference's power (``BANK_LOADING``).

    Returns:
        ``w``, shape ``(taps,)``; its drive is ``controller_drive(x, w, delay)``.
    """
    from scipy.linalg import solve

    from .acoustics import causal_filter, noise_at_ear

    if np.array_equal(np.trim_zeros(scene.primary, "b"), np.trim_zeros(scene.secondary, "b")) and len(
            np.trim_zeros(scene.primary, "b")) == 1:
        # d = r = a·x: the predictor's problem, solved by its own code so that the none scene keeps its figures
        # to the bit (and exactly −δ at D = 0); that code keeps Levinson's shortcut (its docstring says what it costs).
        return -fit_wiener_predictor(train, delay, taps, loading)
    train = np.asarray(train, dtype=np.float64)
    filtered = causal_filter(scene.secondary, train)
    # The sample d[n] sees r up to n − D: the fit's regressors are r's first N − D samples.
    seen = len(filtered) - delay
    covariance = lag_covariance(filtered[:seen], taps) * seen / len(filtered)
    covariance[np.diag_indices(taps)] += loading * covariance[0, 0]
    cross = crosscorrelation_lags(noise_at_ear(train, scene), filtered, delay + taps)
    return -solve(covariance, cross[delay : delay + taps], assume_a="sym")


def fit_filter_bank(trains: dict[str, np.ndarray], scene, delay: int = 0, taps: int = 64,
                    loading: float = BANK_LOADING) -> dict[str, np.ndarray]:
    """One causal linear controller per noise, each fitted on that noise's own training audio.

    With the default ``BANK_LOADING`` each is the optimal controller for its noise plus a white floor
    30 dB down, which bounds what it does to noise it was not fitted for; ``WHISPER_LOADING`` gives
    the optimal controllers themselves (the switching oracles').

    Args:
        trains: ``{name: training audio at the reference microphone, shape (samples,)}``.
        scene, delay, taps, loading: as ``fit_wiener_controller``.

    Returns:
        ``{name: w of shape (taps,)}``, in the order of ``trains``.
    """
    return {name: fit_wiener_controller(train, scene, delay, taps, loading) for name, train in trains.items()}


# A library's filter bank holds at most this many filters: past it, files of like spectra share one (``group_by_spectrum``).
BANK_SIZE = 16


def group_by_spectrum(trains: dict[str, np.ndarray], groups: int = BANK_SIZE, seed: int = 0) -> dict[str, np.ndarray]:
    """The noises of a library in at most ``groups`` groups of like spectra, each group's audio end to end.

    A bank of one filter per file does not scale to a dataset of 1 000 files; files whose spectra are alike want
    the same controller. Each file is described by the shape of its log power spectrum (Welch, 512-sample segments,
    its mean level taken away, since a linear controller does not depend on the level) and the files are grouped by
    k-means (``scipy.cluster.vq.kmeans2``, k-means++ start, ``seed``). With no more files than ``groups`` every file
    is its own group, as before.

    Args:
        trains: ``{name: training audio, shape (samples,)}``.

    Returns:
        ``{group name: audio}``: a lone file keeps its name; a group is named by its first file and how many more.
    """
    if groups < 1:
        raise ValueError(f"a bank needs at least one filter, got bank_size {groups}")
    if len(trains) <= groups:
        return dict(trains)
    from scipy.cluster.vq import kmeans2
    from scipy.signal import welch

    names = list(trains)
    shapes = np.stack([np.log10(welch(trains[n], nperseg=min(512, len(trains[n])))[1] + 1e-20) for n in names])
    shapes -= shapes.mean(axis=1, keepdims=True)
    _, labels = kmeans2(shapes, groups, seed=seed, minit="++")
    grouped = {}
    for label in dict.fromkeys(labels):
        members = [n for n, lab in zip(names, labels) if lab == label]
        name = members[0] if len(members) == 1 else f"{members[0]} +{len(members) - 1} more"
        while name in grouped:  # a file may bear a group's name
            name += "'"
        grouped[name] = np.concatenate([trains[n] for n in members])
    return grouped


def fit_stretch_bank(train: np.ndarray, scene, delay: int = 0, taps: int = 64, stretches: int = 16,
                     loading: float = BANK_LOADING, whole: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One causal linear controller per equal stretch of one noise's training audio: a bank for a noise that drifts.

    A fixed filter fitted on a whole drifting noise (an engine changing speed) is a compromise; the
    filters of its stretches each fit one state of it, and a model that hears which state plays
    (its errors at the ear, ``bank_error_logits``; its encoder) can mix them (``start_filter_bank``).

    Args:
        train: the reference-microphone noise, shape ``(samples,)``.
        stretches: how many equal stretches; each must hold ``delay + taps`` samples.
        scene, delay, taps, loading: as ``fit_filter_bank``.
        whole: the optimal controller of the whole noise (``make_plant``'s), to lead the bank as ``"whole"``,
            for a model to fall back on where no stretch fits better.

    Returns:
        ``{"<start>–<stop> s": w of shape (taps,)}``, in time order (after ``"whole"``).
    """
    from .audio_io import SAMPLE_RATE

    edges = np.linspace(0, len(train), stretches + 1).astype(int)
    if stretches < 2 or np.diff(edges).min() < delay + taps:
        raise ValueError(f"{len(train)} samples cut into {stretches} stretches: need at least 2 stretches, each of "
                         f"at least delay + taps = {delay + taps} samples")
    bank = fit_filter_bank({f"{a / SAMPLE_RATE:.2f}–{b / SAMPLE_RATE:.2f} s": train[a:b]
                            for a, b in zip(edges[:-1], edges[1:])}, scene, delay, taps, loading)
    return bank if whole is None else {"whole": np.asarray(whole), **bank}


def stretch_count(stretches: int, plant) -> int:
    """How many stretches a bank of one noise's stretches gets in ``plant``: ``stretches`` in a linear scene, else 0.

    They are chosen by their errors at the ear (``bank_settings``), which need a scene (without one a
    single noise is cancelled by its whole-noise filter, exactly at D = 0) and a loudspeaker that the
    level sweep found linear (``Plant.eta_estimate`` None).
    """
    return stretches if not plant.is_identity and plant.eta_estimate is None else 0


def controller_drive(noise: np.ndarray, coefficients: np.ndarray, delay: int = 0) -> np.ndarray:
    """The drive of a fixed controller: ``y[n] = Σₖ w[k]·x[n−D−k]``, float64 of shape ``(samples,)``."""
    from .acoustics import causal_filter

    return causal_filter(np.concatenate([np.zeros(delay), coefficients]), noise)


def predistorted_drive(drive: np.ndarray, eta: float | None) -> np.ndarray:
    """A drive through the known inverse loudspeaker, so ``f(result)`` is ``drive`` wherever f can reach it.

    The informed reference for undoing saturation: ``acoustics.inverse_sef`` of the (linear,
    ``wiener``) drive, capped just below f's largest output. Linear (``eta`` None) returns ``drive``.

    Returns:
        float64 of shape ``(samples,)``.
    """
    from .acoustics import inverse_sef

    return np.asarray(inverse_sef(np.asarray(drive, dtype=np.float64), eta), dtype=np.float64)
