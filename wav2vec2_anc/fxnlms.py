"""Filtered-x NLMS, the field's adaptive yardstick in a scene, and FxNLMS refining a fixed drive (the model's).

FxNLMS runs online from zero weights, sample by sample, as a feedforward controller runs: it hears the error
microphone and adapts with the reference filtered through the identified Ŝ. Its step is tuned at installation
on the training audio (``tune_fxnlms_step``). Compiled with numba (a dependency of librosa). Signals are float
arrays of shape ``(samples,)``; each function returns the drive ``y``, whose residual at the ear is
``acoustics.plant_residual(x, y, scene, eta)``.
"""

from __future__ import annotations

import functools
import math
import types

import numpy as np


def _fxnlms_loop(noise, desired, filtered, secondary, delay, taps, step_sizes, eps, eta, adapt_samples, base_drives,
                 filtered_bases, secondary_estimate, guard_samples, mix_step, mix_samples, mix_limit, fixed_mix_step,
                 eta_estimate, sef_cap, predistorted):
    controllers, samples = base_drives.shape[0], len(noise)
    padded = np.concatenate((np.zeros(taps - 1 + delay), noise))  # noise[i] is padded[i + taps − 1 + delay]
    filtered_padded = np.concatenate((np.zeros(taps - 1 + delay), filtered))  # the same for x′ = Ŝ∗x
    own = np.zeros((controllers, samples + delay))  # each controller's own drive
    corrections = np.zeros((controllers, samples + delay))  # each adaptive filter's part of its own drive
    shares = np.zeros(samples + delay)  # λ: controller 1's share of what is sent, fixed when the drives were made
    fixed_shares = np.zeros(samples + delay)  # κ: controller 2's (the fixed drive's) share of the rest, likewise
    # What each controller would send alone: its own drive, or f̂⁻¹ of it for the members ``predistorted`` marks.
    played = own if not predistorted.any() else np.zeros((controllers, samples + delay))
    drive = np.zeros(samples)  # what the loudspeaker is sent
    loudspeaker = np.zeros(samples)  # f(y), what S hears
    weights = np.zeros((controllers, taps))
    base_gains = np.ones((controllers, base_drives.shape[2]))
    steps = step_sizes.copy()
    errors = np.zeros(controllers)  # each controller's error, as if it alone had played
    gaps_at_ear = np.zeros(controllers)  # (Ŝ∗(y − yₖ))[t]: what the others' share added at the ear, as far as Ŝ knows
    corrections_at_ear = np.zeros(controllers)  # (Ŝ∗cₖ)[t]: what each adaptive part added at the ear, as far as Ŝ knows
    linear = math.isinf(eta)
    scale = eta * math.sqrt(math.pi / 2)
    forget = 1.0 / guard_samples if guard_samples > 0 else 0.0
    power_with = np.zeros(controllers)  # running mean squares of each error and of its estimate without the correction
    power_without = np.zeros(controllers)
    since_reset = np.zeros(controllers, np.int64)
    # λ = (σ(a) − σ(−A)) / (σ(A) − σ(−A)), clipped to [0, 1]: a = −A, the start, plays controller 0 alone, exactly.
    low, high = 1.0 / (1.0 + math.exp(mix_limit)), 1.0 / (1.0 + math.exp(-mix_limit))
    logit, mix_power, share = -mix_limit, 0.0, 0.0
    fixed_logit, fixed_power, fixed_share = -mix_limit, 0.0, 0.0
    mix_forget = 1.0 / mix_samples
    for t in range(delay):  # made before any error could reach the weights: the fixed parts alone
        for k in range(controllers):
            own[k, t] = np.sum(base_drives[k, t])
            played[k, t] = _as_played(own[k, t], predistorted[k], eta_estimate, sef_cap)
    for t in range(samples):
        now = np.ascontiguousarray(padded[t + delay : t + taps + delay][::-1])  # x[t], x[t−1], …
        if delay == 0:
            for k in range(controllers):
                own[k, t] = np.dot(base_gains[k], base_drives[k, t]) + np.dot(weights[k], now)
                corrections[k, t] = own[k, t] - np.sum(base_drives[k, t])
                played[k, t] = _as_played(own[k, t], predistorted[k], eta_estimate, sef_cap)
            shares[t] = share
            fixed_shares[t] = fixed_share
        # y = (1 − κ)·((1 − λ)·y₀ + λ·y₁) + κ·y₂, written so that λ = κ = 0 sends y₀ to the bit.
        drive[t] = played[0, t] if shares[t] == 0.0 else (1.0 - shares[t]) * played[0, t] + shares[t] * played[1, t]
        if controllers == 3 and fixed_shares[t] != 0.0:
            drive[t] = (1.0 - fixed_shares[t]) * drive[t] + fixed_shares[t] * played[2, t]
        loudspeaker[t] = drive[t] if linear else scale * math.erf(drive[t] / (math.sqrt(2.0) * eta))
        at_ear = 0.0  # (S∗f(y))[t], with the true S and f
        for k in range(min(len(secondary), t + 1)):
            at_ear += secondary[k] * loudspeaker[t - k]
        error = desired[t] + at_ear  # the error microphone, now: it hears x[t] through P
        gaps_at_ear[:] = 0.0
        corrections_at_ear[:] = 0.0
        if controllers > 1 or guard_samples > 0:
            for j in range(min(len(secondary_estimate), t + 1)):
                for k in range(controllers):
                    if controllers > 1:  # alone, a controller's gap is zero: what it made is what was sent
                        gaps_at_ear[k] += secondary_estimate[j] * (drive[t - j] - played[k, t - j])
                    corrections_at_ear[k] += secondary_estimate[j] * corrections[k, t - j]
        for k in range(controllers):
            # Modified filtered-x: each adapts on the error it would have made alone, as far as Ŝ knows; for the
            # one that alone has played (λ 0 or 1 over Ŝ's span) that is e itself, to the bit.
            errors[k] = error - gaps_at_ear[k]
        if guard_samples > 0:
            for k in range(controllers):
                power_with[k] += forget * (errors[k] * errors[k] - power_with[k])
                power_without[k] += forget * ((errors[k] - corrections_at_ear[k]) ** 2 - power_without[k])
                since_reset[k] += 1
                # Written so that an overflow (inf or NaN) counts as louder too.
                if since_reset[k] >= guard_samples and not power_with[k] <= 2.0 * power_without[k]:
                    weights[k, :] = 0.0  # the correction made the ear louder: drop it and adapt again, more slowly
                    base_gains[k, :] = 1.0
                    steps[k] *= 0.5
                    since_reset[k] = 0
                    power_with[k] = power_without[k] = 0.0
        then = np.ascontiguousarray(filtered_padded[t : t + taps][::-1])  # x′[t−D], …: what y[t] was made from
        if t < adapt_samples:
            for k in range(controllers):
                if steps[k] == 0.0:  # the fixed member
                    continue
                normalised = steps[k] * errors[k] / (eps + np.dot(then, then)
                                                     + np.dot(filtered_bases[k, t], filtered_bases[k, t]))
                weights[k] -= normalised * then
                base_gains[k] -= normalised * filtered_bases[k, t]
            if controllers >= 2:
                # ∂e/∂λ = (1 − κ)·Ŝ∗(y₁ − y₀); Ŝ∗(yⱼ − yₖ) = gapsₖ − gapsⱼ, and κ moves slowly enough to be taken
                # as constant over Ŝ's span.
                slope = gaps_at_ear[0] - gaps_at_ear[1]
                if controllers == 3:
                    slope *= 1.0 - fixed_share
                logit, mix_power, share = _mix_update(logit, mix_power, mix_step * error, slope, mix_forget, eps,
                                                      low, high, mix_limit)
            if controllers == 3:
                # ∂e/∂κ = Ŝ∗(y₂ − z), z the mix of the other two: the fixed drive against what adapting plays. (Mixed
                # inside, against the refined drive alone, the slope was the refinement's small correction and its
                # normalised step mostly noise: a fast-drifting engine lost 1.3 dB on the tuning set.)
                fixed_slope = (gaps_at_ear[0] - gaps_at_ear[2]) - share * (gaps_at_ear[0] - gaps_at_ear[1])
                fixed_logit, fixed_power, fixed_share = _mix_update(fixed_logit, fixed_power, fixed_mix_step * error,
                                                                    fixed_slope, mix_forget, eps, low, high, mix_limit)
        if delay > 0 and t + delay < samples:
            for k in range(controllers):  # made at t, emitted at t + D
                own[k, t + delay] = np.dot(base_gains[k], base_drives[k, t + delay]) + np.dot(weights[k], now)
                corrections[k, t + delay] = own[k, t + delay] - np.sum(base_drives[k, t + delay])
                played[k, t + delay] = _as_played(own[k, t + delay], predistorted[k], eta_estimate, sef_cap)
            shares[t + delay] = share
            fixed_shares[t + delay] = fixed_share
    return drive


def _as_played(drive, predistorted, eta, cap):
    """What a controller sends for its own ``drive`` sample: ``f̂⁻¹(drive)`` if it is ``predistorted``, else the drive."""
    return _inverse_sef_sample(drive, eta, cap) if predistorted else drive


def _inverse_sef_sample(u, eta, cap):
    """``acoustics.inverse_sef`` of one sample, for the compiled loop (numba has no erfinv): ``u`` capped to
    ``±cap·η·√(π/2)``, M. Giles' erfinv approximation ("Approximating the erfinv function", GPU Computing Gems, 2011),
    then three Newton steps on erf: within 1e-11 relative of scipy's erfinv up to the cap, a few ulp mid-range."""
    reach = eta * math.sqrt(math.pi / 2)
    p = min(max(u, -cap * reach), cap * reach) / reach
    w = -math.log((1.0 - p) * (1.0 + p))
    if w < 5.0:
        w -= 2.5
        c = 2.81022636e-08
        for a in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503, -0.00417768164,
                  0.246640727, 1.50140941):
            c = a + c * w
    else:
        w = math.sqrt(w) - 3.0
        c = -0.000200214257
        for a in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047,
                  1.00167406, 2.83297682):
            c = a + c * w
    z = c * p
    for _ in range(3):
        z -= (math.erf(z) - p) / (2.0 / math.sqrt(math.pi) * math.exp(-z * z))
    return math.sqrt(2.0) * eta * z


def _mix_update(logit, power, step_error, slope, forget, eps, low, high, limit):
    """One step of a convex mix's logit ``a`` on the error at the ear: ``a ← a − μₐ·e·s·λ′(a) / (ε + ⟨s²⟩)``.

    ``s`` is ∂e/∂λ, ``⟨s²⟩`` its running power; ``λ = (σ(a) − low) / (high − low)`` clipped to [0, 1]. Returns
    ``(a, ⟨s²⟩, λ)``.
    """
    power += forget * (slope * slope - power)
    sigma = 1.0 / (1.0 + math.exp(-logit))
    logit -= step_error * slope * sigma * (1.0 - sigma) / ((high - low) * (eps + power))
    if not -limit <= logit <= limit:  # an overflow (NaN) falls back on the first member
        logit = limit if logit > limit else -limit
    return logit, power, min(max((1.0 / (1.0 + math.exp(-logit)) - low) / (high - low), 0.0), 1.0)


def fxnlms_drive(
    noise: np.ndarray,
    scene,
    secondary_estimate: np.ndarray,
    delay: int = 0,
    taps: int = 64,
    step_size: float | None = None,
    eta: float | None = None,
    eps: float = 1e-6,
    adapt_samples: int | None = None,
    base_drive: np.ndarray | None = None,
    guard_samples: int = 0,
    mix_step: float = 0.0,
    companion_step: float | None = None,
    fixed_member: bool = False,
    eta_estimate: float | None = None,
) -> np.ndarray:
    """Filtered-x NLMS, run online from zero weights, sample by sample, as a feedforward controller runs.

    At each time t the controller has emitted ``y[t] = w·[x[t−D], …]`` (weights as they were at t − D;
    plus ``Σᵢ gᵢ·bᵢ[t]`` with a ``base_drive``), the loudspeaker and the true secondary path deliver it,
    the error microphone hears ``e[t] = (P∗x)[t] + (S∗f(y))[t]``, and the weights adapt with the reference
    filtered through the estimate Ŝ: ``w ← w − μ·e[t]·u / (ε + u·u)``, ``u = [x′[t−D], …]``, ``x′ = Ŝ∗x``.
    Then it makes ``y[t+D] = w·[x[t], …]``. So ``y[n]`` depends on ``x[m]`` with ``m ≤ n − D`` only, even
    through the weights (``e[t]`` holds ``x[t]``). In the ``none`` scene with Ŝ = [1] and a linear
    loudspeaker it is ``nlms_inverse`` exactly (the drive equals its anti-noise). Compiled with numba: at
    512 taps it ran 53× (room) and 69× (band-pass) faster than real time on a 20-s clip
    on this machine's 2 shared cores (load 2.6), after the first call's compilation (about a second).

    Args:
        noise: the reference-microphone noise ``x``, shape ``(samples,)``.
        scene: an ``acoustics.Scene``, the true plant.
        secondary_estimate: Ŝ (``acoustics.identify_secondary_path``), shape ``(taps_S,)``.
        delay: D, samples.
        taps: length of ``w``.
        step_size: μ; default ``fxnlms_step_size``, ``0.2 / (D + argmax|Ŝ| + 1)``: an error reaches the weights
            after D plus S's own delay, and delayed LMS needs steps that shrink with that loop delay (in the
            ``none`` scene this is ``nlms_inverse``'s ``0.2 / (D + 1)``). That rule is safe on tones but slow on
            broadband noise (7 dB on the band-pass scene's white noise, where μ = 0.1 gives 47): the FxNLMS
            baseline plays the step tuned on the training audio instead (``tune_fxnlms_step``, ``Plant.fxnlms_step``).
        eta: the true loudspeaker's η (``acoustics.sef``); None is linear.
        eps: ε, the regulariser of the normalisation.
        adapt_samples: the weights adapt on the error of samples ``t < adapt_samples`` only and are held
            after that (None: always): FxNLMS frozen where a model's training audio ends, to show what
            its online adaptation is worth (``benchmarks/fxnlms_tracking.py``).
        base_drive: a fixed controller's drive ``b`` (a model's), shape ``(samples,)``, or its parts,
            shape ``(parts, samples)``, which the adaptive filter refines: the emitted drive is
            ``Σᵢ gᵢ·bᵢ[t] + w·[x[t−D], …]``, where each gain ``gᵢ`` (from 1) adapts with ``w`` as one
            more weight whose regressor is ``(Ŝ∗bᵢ)[t]``, so the refinement can also turn down a fixed
            part that no longer fits (``fxnlms_refined_drive``). It must honour the latency itself
            (``bᵢ[n]`` from ``x[m]``, ``m ≤ n − D``). None: zeros, plain FxNLMS.
        guard_samples: 0 (off), or the time constant of a divergence guard, in samples: it keeps running
            mean squares of the error and of the error without the adaptive part (``e − Ŝ∗(y − b)``)
            and, once ``guard_samples`` have passed since the last reset, if the first exceeds twice
            the second (3 dB louder than the fixed part alone), or either overflowed, sets ``w`` to
            zero and every ``gᵢ`` to 1 and halves μ. The estimate is linear (Ŝ, no loudspeaker model):
            with a saturating loudspeaker it is an approximation.
        mix_step: 0 (off), or the step μₐ of a convex combination (Arenas-García et al., IEEE TSP 2006;
            for ANC, Ferrer et al., IEEE TASLP 2013): a second controller, plain FxNLMS from zero at the
            default step rule (and the same guard), runs beside this one, and the loudspeaker is sent
            ``(1 − λ)·y₀ + λ·y₁``, ``λ = (σ(a) − σ(−A)) / (σ(A) − σ(−A))``, ``A = MIX_LIMIT``: from ``a = −A``,
            this controller alone, exactly, ``a`` (kept within ±A) adapts on the error at the ear,
            ``a ← a − μₐ·e·s·λ′(a) / (ε + ⟨s²⟩)``, ``s = Ŝ∗(y₁ − y₀)`` (∂e/∂λ), its power averaged over
            ``MIX_POWER_SAMPLES``. Each controller adapts on the error it would
            have made alone, as far as Ŝ knows (``e − Ŝ∗y + Ŝ∗yₖ``, the modified filtered-x structure),
            so neither is pulled by the other.
        companion_step: the companion's μ (``Plant.fxnlms_step``, tuned on the training audio); default the rule
            ``fxnlms_step_size``.
        fixed_member: with ``mix_step``, a third member: the ``base_drive`` as it came, never adapted. The
            loudspeaker is then sent ``(1 − κ)·z + κ·y₂``, ``z = (1 − λ)·y₀ + λ·y₁``, ``κ`` a second convex mix of
            the same form from ``z`` alone (``∂e/∂κ = Ŝ∗(y₂ − z)``), its step ``FIXED_MIX_STEP_SCALE`` × μₐ: where
            adapting costs more than it follows (brown noise, whose steady misadjustment cost the refinement
            0.9 dB), the mix can fall back on the fixed drive.
        eta_estimate: the identified loudspeaker's η̂ (None: no pre-distortion). This controller's drive and the
            fixed member are then sent through the identified curve's inverse, ``f̂⁻¹(y)`` (``acoustics.inverse_sef``,
            as ``model.shape_drive``), so that they adapt on a loudspeaker that is linear as far as f̂ is right; a
            ``base_drive`` is then the drive before that inverse (``acoustics.sef(shaped, η̂)``). Plain FxNLMS in the
            mix plays as it does alone, so that the mix can fall back on it exactly, and on the fixed drive to within
            the inverse's rounding (``f̂⁻¹(f̂(d))``, capped at ±4.9·η̂). None or inf: no pre-distortion.

    Returns:
        What the loudspeaker is sent, float64 of shape ``(samples,)``.
    """
    from scipy.signal import lfilter

    from .acoustics import SEF_CAP

    if eta_estimate is not None and math.isinf(eta_estimate):
        eta_estimate = None  # a linear curve: nothing to invert

    secondary_estimate = np.asarray(secondary_estimate, dtype=np.float64)
    if step_size is None:
        step_size = fxnlms_step_size(secondary_estimate, delay)
    noise = np.asarray(noise, dtype=np.float64)
    base_drive = np.zeros((1, len(noise))) if base_drive is None else np.atleast_2d(np.asarray(base_drive, dtype=np.float64))
    if base_drive.ndim != 2 or base_drive.shape[1] != len(noise):
        raise ValueError(f"base_drive must have shape (samples,) or (parts, samples) with {len(noise)} samples, "
                         f"got {base_drive.shape}")
    step_sizes, predistorted = [float(step_size)], [eta_estimate is not None]
    base_drives = base_drive.T[None]  # (controllers, samples, parts): one contiguous row per time
    if mix_step > 0:  # the companion: plain FxNLMS, its base zero parts (their gains never move), played as alone
        step_sizes.append(fxnlms_step_size(secondary_estimate, delay) if companion_step is None else companion_step)
        predistorted.append(False)
        base_drives = np.concatenate([base_drives, np.zeros_like(base_drives)])
        if fixed_member:  # the fixed drive as it came: step 0, so its weights stay zero and its gains one
            step_sizes.append(0.0)
            predistorted.append(eta_estimate is not None)
            base_drives = np.concatenate([base_drives, base_drives[:1]])
    # Direct-form filtering, not FFT: an FFT spreads every sample's rounding over the whole block,
    # and the drive must not depend on the future even at the last bit.
    return _compiled_fxnlms()(
        noise,
        lfilter(np.asarray(scene.primary, dtype=np.float64), [1.0], noise),
        lfilter(secondary_estimate, [1.0], noise),
        np.asarray(scene.secondary, dtype=np.float64),
        int(delay),
        int(taps),
        np.asarray(step_sizes),
        float(eps),
        math.inf if eta is None else float(eta),
        len(noise) if adapt_samples is None else int(adapt_samples),
        np.ascontiguousarray(base_drives),
        np.ascontiguousarray(lfilter(secondary_estimate, [1.0], base_drives, axis=1)),
        secondary_estimate,
        int(guard_samples),
        float(mix_step),
        MIX_POWER_SAMPLES,
        MIX_LIMIT,
        FIXED_MIX_STEP_SCALE * float(mix_step),
        math.inf if eta_estimate is None else float(eta_estimate),
        SEF_CAP,
        np.array(predistorted),
    )


# FxNLMS's step is tuned at installation, as an installer would: FxNLMS runs live from zero over the training
# audio at each step of this grid, and the one that left the error microphone quietest over the last
# FXNLMS_TUNING_TAIL of it is kept (``tune_fxnlms_step``). No fixed rule served both kinds of noise: broadband
# noise in the band-pass scene wants μ = 0.1 (the old rule 0.2 / loop delay left white noise 7 dB where 0.1 gives
# 47), while tones and every noise in the room diverge from μ = 0.01–0.03. On the tuning suite the tuned step was
# within 0.5 dB of the best fixed μ of the grid on every clip (room and band-pass, 0 and 1 ms; benchmarks/README.md,
# "FxNLMS's step"); the grid's step below the tuned one missed by up to 8 dB.
FXNLMS_STEP_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)
FXNLMS_TUNING_TAIL = 0.3


def tune_fxnlms_step(train: np.ndarray, scene, secondary_estimate: np.ndarray, delay: int = 0, taps: int = 64,
                     eta: float | None = None, grid: tuple[float, ...] = FXNLMS_STEP_GRID) -> float:
    """FxNLMS's μ, chosen live on the training audio: the step of ``grid`` whose run left the least at the ear.

    Each trial is FxNLMS from zero over ``train`` in the true plant (a live run: the error microphone hears
    the real paths), scored by its NR over the last ``FXNLMS_TUNING_TAIL`` of ``train``; a trial that
    diverged scores −∞. Nothing of the held-out audio is used.

    Args:
        train: the reference-microphone training audio, shape ``(samples,)``.
        scene, secondary_estimate, delay, taps, eta: as ``fxnlms_drive``.

    Returns:
        μ, one of ``grid``.
    """
    from .acoustics import noise_at_ear, plant_residual
    from .metrics import ratio_db

    train = np.asarray(train, dtype=np.float64)
    tail = int(len(train) * (1 - FXNLMS_TUNING_TAIL))
    noise_energy = float(np.sum(noise_at_ear(train, scene)[tail:] ** 2))

    def score(step_size: float) -> float:
        drive = fxnlms_drive(train, scene, secondary_estimate, delay, taps, step_size, eta)
        with np.errstate(all="ignore"):  # a trial that diverges overflows: it scores −∞
            residual_energy = float(np.sum(plant_residual(train, drive, scene, eta)[tail:] ** 2))
        return ratio_db(noise_energy, residual_energy) if math.isfinite(residual_energy) else -math.inf

    scores = [score(step) for step in grid]
    return float(grid[int(np.argmax(scores))])


def loop_delay(secondary_estimate: np.ndarray, delay: int) -> int:
    """``D + argmax|Ŝ| + 1``, samples: how late an error reaches what adapts on it (D plus S's own delay)."""
    return delay + int(np.argmax(np.abs(np.asarray(secondary_estimate)))) + 1


def fxnlms_step_size(secondary_estimate: np.ndarray, delay: int) -> float:
    """FxNLMS's default μ, ``0.2 / loop_delay(Ŝ, D)``: delayed LMS needs steps that shrink with the loop delay."""
    return 0.2 / loop_delay(secondary_estimate, delay)


# The refinement's step is twice FxNLMS's rule: its guard catches a correction that diverges, which
# FxNLMS alone cannot afford (the room's brown noise diverges at the plain rule). Room scene, D = 0 / 1 ms,
# Wiener drive as the fixed part, held-out NR of the drifting engine (FxNLMS alone 19.8 / 18.3 dB) and of
# brown noise (Wiener 3.7 / 3.7): ×1 19.1 / 17.8 and 3.1 / 2.9; ×2 19.7 / 19.8 and 3.1 / 2.9; ×3 19.8 / 16.1
# and 3.5 / 3.2 (guard resets); ×2 without the guard diverges on brown (−∞).
REFINEMENT_STEP_SCALE = 2.0
# The guard's time constant: 0.25 s, the model's safety window.
REFINEMENT_GUARD_SAMPLES = 4000
# The refined drive is mixed with plain FxNLMS (``fxnlms_drive(mix_step=…)``): where a fixed part keeps
# moving (the encoder's correction, every 50 ms) the refinement cannot follow the drifting engine in the
# room as FxNLMS does from zero (15.2 against 19.8 dB held out at 0 ms), and the mix can take FxNLMS's part.
# Its step μₐ = MIX_STEP_SCALE / loop_delay(Ŝ, D): the mix's error is as late as FxNLMS's, and fixed steps
# were stable in the room but not in the band-pass scene's longer loop (the engine at 1 ms, A = 3: 37.8 dB
# at μₐ = 0.01, 21.7 at 0.1, FxNLMS 26.4). Chosen on the room and band-pass suites (benchmarks/README.md, "The model
# refined online") with a stress case, the 2-tap refinement of a fixed part at twice its gain
# (tests/test_acoustics.py), where the mix first moves halfway and must come back as the gain converges: with
# A = 3 it came back only to 27–37 dB of the refined drive's 46.4; with A = 2 to 35.6 / 45.5 / 46.4 dB at scale
# 0.25 / 0.5 / 1. Every scale and limit tried kept the mix at or above FxNLMS on every clip of both scenes and
# within 0.06–0.27 dB of the refined drive alone where that was better. The power's time constant is 0.1 s.
MIX_STEP_SCALE = 1.0
MIX_POWER_SAMPLES = 1600
MIX_LIMIT = 2.0
# κ, the fixed drive's share, moves at a quarter of λ's step. At λ's own step it wandered up while the network's
# drive fell behind an engine drifting fast and cost the room's canceller 1.1 dB there (a tuning-seed engine drifting
# 25 → 70 Hz twice, trained network: −0.44 dB against FxNLMS, 0.69 with two members, 0.66 at a quarter, 0.55 at
# half); with the optimal controller's drive as the fixed part a quarter was within 0.06 dB of the full step or
# better on every clip of the tuning suite, without a scene and in the room (benchmarks/refinement_mix.py).
FIXED_MIX_STEP_SCALE = 0.25


def fxnlms_refined_drive(noise: np.ndarray, base_drive: np.ndarray, scene, secondary_estimate: np.ndarray,
                         delay: int = 0, taps: int = 64, eta: float | None = None,
                         step_scale: float = REFINEMENT_STEP_SCALE, mix_step: float | None = None,
                         companion_step: float | None = None, fixed_member: bool = True,
                         eta_estimate: float | None = None) -> np.ndarray:
    """A fixed controller's drive refined online by FxNLMS at the error microphone: the hybrid of NTU's SFANC-FxNLMS.

    The fixed part (a model's drive) answers at once; the adaptive filter, from zero, follows what the
    fixed part cannot: noise that drifts after training. ``fxnlms_drive`` with ``base_drive``, a step of
    ``step_scale`` × its rule and the divergence guard (``REFINEMENT_GUARD_SAMPLES``), mixed with plain
    FxNLMS from zero (``mix_step``) and with the fixed drive itself (``fixed_member``): it starts as the refined
    drive alone, exactly, and moves towards FxNLMS or the fixed drive where either does better at the ear.

    Args:
        noise: the reference-microphone noise ``x``, shape ``(samples,)``.
        base_drive: the fixed controller's drive over the same samples, made with the same latency D.
        scene, secondary_estimate, delay, taps, eta: as ``fxnlms_drive``.
        step_scale: the step over FxNLMS's rule (``fxnlms_step_size``); default ``REFINEMENT_STEP_SCALE``.
        mix_step: μₐ of the mix with plain FxNLMS (``fxnlms_drive``); default ``MIX_STEP_SCALE / loop_delay(Ŝ, D)``;
            0: the refined drive alone.
        companion_step: plain FxNLMS's μ in the mix: the step it plays alone with (``Plant.fxnlms_step``); default
            the rule ``fxnlms_step_size``.
        fixed_member: with the mix, the fixed drive as its third member (``fxnlms_drive``).
        eta_estimate: η̂, to send the refined and the fixed drive through the identified curve's inverse, plain
            FxNLMS without it (``fxnlms_drive``); the ``base_drive`` is then the drive before it.

    Returns:
        What the loudspeaker is sent, float64 of shape ``(samples,)``.
    """
    step_size = step_scale * fxnlms_step_size(secondary_estimate, delay)
    if mix_step is None:
        mix_step = MIX_STEP_SCALE / loop_delay(secondary_estimate, delay)
    return fxnlms_drive(noise, scene, secondary_estimate, delay, taps, step_size, eta, base_drive=base_drive,
                        guard_samples=REFINEMENT_GUARD_SAMPLES, mix_step=mix_step, companion_step=companion_step,
                        fixed_member=fixed_member, eta_estimate=eta_estimate)


@functools.cache
def _compiled_fxnlms():
    import numba

    return numba.njit(types.FunctionType(_fxnlms_loop.__code__, loop_namespace(_fxnlms_loop.__globals__)))


def loop_namespace(namespace: dict) -> dict:
    """``namespace`` with the loop's helpers compiled: the loop calls them by their global names, and numba compiles
    what those names hold."""
    import numba

    inverse = numba.njit(_inverse_sef_sample)
    as_played = numba.njit(types.FunctionType(_as_played.__code__, {**_as_played.__globals__, "_inverse_sef_sample": inverse}))
    return {**namespace, "_mix_update": numba.njit(_mix_update), "_inverse_sef_sample": inverse, "_as_played": as_played}
