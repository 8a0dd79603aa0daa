"""A run's plant: the true scene and loudspeaker, and what a real system identifies of them with ANC off.

Before it cancels, a real set-up measures: the loudspeaker plays an excitation and the error microphone
records it, the noise of the place present. From that it knows Ŝ (``identify_secondary_path``) and the
loudspeaker's curve (``identify_loudspeaker``), never the true S or η. ``make_plant`` sets a run up that
way; ``Plant`` carries both sides, the world (which judges) and the estimates (which a canceller uses).
Signals are float arrays of shape ``(samples,)`` at ``SAMPLE_RATE``; numba and the baselines load inside
the functions that need them.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from .acoustics import Scene, causal_filter, make_scene, noise_at_ear, parse_loudspeaker, sef
from .audio_io import SAMPLE_RATE

# ── identification with ANC off: Ŝ and the loudspeaker's curve ──

# What a real set-up measures before it cancels (``make_plant``): with ANC off, the loudspeaker plays an
# excitation and the error microphone records it, with the noise of the place present. The excitation's
# level at the error microphone above that noise is ``IDENTIFICATION_SNR_DB``; the noise is the scene's
# own (the training audio at the ear, looped), scaled to that distance below the excitation.
IDENTIFICATION_SNR_DB = 30.0
# Ŝ's excitation: white noise for 10 s, as long as a real set-up may take, at a small level (its RMS this
# fraction of the reference noise's) so that a saturating loudspeaker stays in its linear range.
IDENTIFICATION_SECONDS = 10.0
IDENTIFICATION_LEVEL = 0.01
# The NLMS step of Ŝ's identification. With the place's noise 30 dB down and 10 s, μ = 0.5 left Ŝ −30 to −36 dB
# misaligned, μ = 0.05 −33 to −52 dB (the noise averages out over more samples); its time constant, taps/μ,
# is 0.6 s at 512 taps, so 10 s converge. Chosen on the tuning suite (``benchmarks/README.md``, "Honest protocol").
IDENTIFICATION_STEP = 0.05
# The loudspeaker's level sweep: white-noise steps whose RMS rises geometrically from 0.1 to 10 × the drive
# RMS the controller will play (the controller fitted with Ŝ), each step 0.25 s.
SWEEP_LEVELS = 12
SWEEP_RANGE = (0.1, 10.0)
SWEEP_STEP_SECONDS = 0.25
# An η estimate more than this many times the sweep's top RMS means the curve did not bend where the
# system drives it: the loudspeaker is taken as linear (at the top, a gain of 1/√(1 + 1/100) = 0.995).
LINEAR_ETA_FACTOR = 10.0


def misalignment_db(estimate: np.ndarray, true: np.ndarray) -> float:
    """``10·log10(‖Ŝ − S‖² / ‖S‖²)`` in dB, the shorter response zero-padded to the longer."""
    size = max(len(estimate), len(true))
    estimate, true = (np.pad(np.asarray(h, dtype=np.float64), (0, size - len(h))) for h in (estimate, true))
    error = float(np.sum((estimate - true) ** 2))
    return -math.inf if error == 0.0 else 10.0 * math.log10(error / float(np.sum(true**2)))


def _excitation_rng(seed: int) -> np.random.Generator:
    # A stream of its own: the generated suite draws its noises from default_rng(seed) too, and an excitation
    # equal to the place's noise would be perfectly correlated with it.
    return np.random.default_rng([seed, 0x5EC])


def place_noise_at_ear(scene: Scene, place_noise: np.ndarray, samples: int, rms: float) -> np.ndarray:
    """The noise of the place at the error microphone during identification: ``P∗x`` looped to ``samples``, at ``rms``.

    Args:
        place_noise: the noise at the reference microphone, shape ``(n,)``; repeated or cut to ``samples``.
        rms: its RMS at the error microphone.

    Returns:
        float64 of shape ``(samples,)``.
    """
    noise = noise_at_ear(np.resize(np.asarray(place_noise, dtype=np.float64), samples), scene)
    power = float(np.mean(noise**2))
    return noise * (rms / math.sqrt(power)) if power > 0 else noise


def excitation_rms(place_noise: np.ndarray | None) -> float:
    """The RMS of Ŝ's excitation: ``IDENTIFICATION_LEVEL`` × the place noise's RMS at the reference microphone (1 without).

    Raises:
        ValueError: a silent place noise, which gives the excitation no level to be set by.
    """
    if place_noise is None:
        return 1.0
    rms = float(np.sqrt(np.mean(np.square(place_noise))))
    if not rms > 0:
        raise ValueError("the place's noise is silent: the identification's excitation has no level to be set by")
    return IDENTIFICATION_LEVEL * rms


def identification_noise_rms(scene: Scene, place_noise: np.ndarray | None, snr_db: float = IDENTIFICATION_SNR_DB) -> float:
    """The RMS of the place's noise at the error microphone while the system identifies, ``snr_db`` below the excitation there.

    The excitation is white at ``excitation_rms``, so its power at the error microphone is that squared times ``‖S‖²``.
    """
    at_microphone = excitation_rms(place_noise) * float(np.linalg.norm(scene.secondary))
    return at_microphone * 10 ** (-snr_db / 20)


def recorded_with_anc_off(scene: Scene, drive: np.ndarray, eta: float | None, noise_rms: float,
                          place_noise: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """What the error microphone records while the loudspeaker plays ``drive`` with ANC off: ``S∗f(drive)`` plus
    the place's noise at ``noise_rms`` (``place_noise_at_ear``; white noise drawn from ``rng`` without one).

    Returns:
        float64 of shape ``(samples,)``, as ``drive``.
    """
    heard = causal_filter(scene.secondary, sef(drive, eta))
    if place_noise is None:
        return heard + noise_rms * rng.standard_normal(len(drive))
    return heard + place_noise_at_ear(scene, place_noise, len(drive), noise_rms)


def identify_secondary_path(
    scene: Scene, place_noise: np.ndarray | None = None, snr_db: float = IDENTIFICATION_SNR_DB,
    seconds: float = IDENTIFICATION_SECONDS, eta: float | None = None, taps: int | None = None, seed: int = 0,
) -> np.ndarray:
    """Ŝ, identified as a real system does with ANC off: white noise through the loudspeaker, NLMS at the microphone.

    The loudspeaker plays white noise ``v`` at ``excitation_rms`` (small, so a saturating loudspeaker stays
    linear); the error microphone hears ``S∗f(v)`` plus the place's noise at the ear ``snr_db`` below it
    (``identification_noise_rms``, ``place_noise_at_ear``; white noise where no ``place_noise`` is given); an
    NLMS filter (μ = ``IDENTIFICATION_STEP``) adapts over the ``seconds`` to predict the microphone from ``v``.
    Its misalignment (``misalignment_db``) at the defaults is −40 to −55 dB in the room and the band-pass scene,
    about 10 dB worse for every 10 dB less ``snr_db``: the place's noise is what limits it. The ``none`` scene
    has no loudspeaker to measure (the anti-noise is added digitally), so it returns the unit impulse exactly
    (padded to ``taps``).

    Args:
        place_noise: the noise at the reference microphone (the training audio), shape ``(n,)``.
        snr_db: the excitation's level above the place's noise at the error microphone, dB.
        seconds: how long the excitation plays, s.
        eta: the true loudspeaker's η (``sef``), None linear: what the excitation passes through.
        taps: length of Ŝ; default the length of the scene's S.
        seed: for the excitation.

    Returns:
        Ŝ, float64 of shape ``(taps,)``.
    """
    taps = len(scene.secondary) if taps is None else int(taps)
    if len(scene.secondary) == 1 and scene.secondary[0] == 1.0:
        return np.eye(taps)[0]
    rng = _excitation_rng(seed)
    samples = int(seconds * SAMPLE_RATE)
    level = excitation_rms(place_noise)
    excitation = level * rng.standard_normal(samples)
    measured = recorded_with_anc_off(scene, excitation, eta, identification_noise_rms(scene, place_noise, snr_db),
                                     place_noise, rng)
    return _compiled_identification()(excitation / level, measured / level, taps, IDENTIFICATION_STEP, 1e-6)


def sweep_levels(drive_rms: float) -> np.ndarray:
    """The RMS of each step of the loudspeaker's level sweep: geometric over ``SWEEP_RANGE`` × ``drive_rms``.

    Returns:
        shape ``(SWEEP_LEVELS,)``, drive units.
    """
    return drive_rms * np.geomspace(*SWEEP_RANGE, SWEEP_LEVELS)


def identify_loudspeaker(scene: Scene, secondary_estimate: np.ndarray, eta: float | None, drive_rms: float,
                         noise_rms: float, place_noise: np.ndarray | None = None, seed: int = 0) -> float | None:
    """η̂, the loudspeaker's curve identified by a level sweep with ANC off; None where it stayed linear.

    The loudspeaker plays white noise in ``SWEEP_LEVELS`` steps of rising RMS σₖ (``sweep_levels``); the error
    microphone records ``S∗f(v)`` plus the place's noise at ``noise_rms`` (the level it had for Ŝ's excitation, so the
    sweep, louder, hears it 45–55 dB further down: η̂ came out within 1.5 % of η at any ``IDENTIFICATION_SNR_DB``,
    and ``make_plant``'s ``eta_error`` is the sensitivity test). Each step's gain
    ``gₖ = ⟨m, Ŝ∗v⟩ / ⟨Ŝ∗v, Ŝ∗v⟩`` is the loudspeaker's gain for Gaussian noise of that RMS, which for the
    scaled error function is ``E[f′(v)] = 1/√(1 + σₖ²/η²)`` (Bussgang): so ``1/gₖ² − 1 = σₖ²/η²``, and the
    least-squares fit of that line gives ``η̂² = Σσₖ⁴ / Σσₖ²·(1/gₖ² − 1)``. The curve's form (the SEF) is
    assumed; its one parameter is measured. An η̂ above ``LINEAR_ETA_FACTOR`` × the sweep's top RMS (or no
    compression at all) is linear.

    Args:
        secondary_estimate: Ŝ (``identify_secondary_path``), what the gains are judged through.
        eta: the true loudspeaker's η, None linear: what the sweep passes through.
        drive_rms: the RMS of the drive the controller will play.
        noise_rms: the place's noise at the error microphone (``identification_noise_rms``).

    Returns:
        η̂ in drive units, or None (linear).
    """
    rng = _excitation_rng(seed + 1)
    levels = sweep_levels(drive_rms)
    step = int(SWEEP_STEP_SECONDS * SAMPLE_RATE)
    drive = np.concatenate([level * rng.standard_normal(step) for level in levels])
    measured = recorded_with_anc_off(scene, drive, eta, noise_rms, place_noise, rng)
    through_estimate = causal_filter(secondary_estimate, drive)
    # Each step's first len(Ŝ) samples still hold the step before it in the convolution: left out.
    settle = min(len(secondary_estimate), step // 2)
    heard = [slice(k * step + settle, (k + 1) * step) for k in range(len(levels))]
    gains = np.array([np.dot(measured[k], through_estimate[k]) / np.dot(through_estimate[k], through_estimate[k]) for k in heard])
    compression = 1.0 / np.maximum(gains, 1e-12) ** 2 - 1.0
    slope = float(np.dot(levels**2, compression))
    if slope <= 0.0:
        return None
    eta_estimate = math.sqrt(float(np.sum(levels**4)) / slope)
    return None if eta_estimate > LINEAR_ETA_FACTOR * levels[-1] else eta_estimate


def _identification_loop(excitation, measured, taps, step_size, eps):
    padded = np.concatenate((np.zeros(taps - 1), excitation))  # excitation[n] is padded[n + taps − 1]
    estimate = np.zeros(taps)
    for n in range(len(excitation)):
        recent = np.ascontiguousarray(padded[n : n + taps][::-1])  # v[n], v[n−1], …
        error = measured[n] - np.dot(estimate, recent)
        estimate += (step_size * error / (eps + np.dot(recent, recent))) * recent
    return estimate


@functools.cache
def _compiled_identification():
    import numba

    return numba.njit(_identification_loop)


# ── a run's plant ──


@dataclasses.dataclass(frozen=True, eq=False)
class Plant:
    """An acoustic scene as a run meets it: the true paths and loudspeaker, and what the system identified of them.

    The true ``scene`` and ``eta`` are the world: they make what the error microphone hears and judge every
    method. A canceller knows only what it measured with ANC off: Ŝ (``secondary_estimate``), the
    loudspeaker's identified curve (``eta_estimate``), and the noise at the ear ``P∗x`` that the error
    microphone records (``identified_scene`` holds the two paths as the system knows them).

    Attributes:
        scene: the true P and S.
        eta: the true loudspeaker's η in drive units; None is linear.
        secondary_estimate: Ŝ, identified with ANC off (``identify_secondary_path``), shape ``(taps,)``.
        loudspeaker: how it was asked for, ``"linear"`` or ``"sat:R"``.
        eta_estimate: η̂, identified by a level sweep (``identify_loudspeaker``), times any ``eta_error``;
            None: the sweep found the loudspeaker linear.
        identification_snr_db: the excitation's level above the place's noise when Ŝ and η̂ were measured, dB.
        fxnlms_step: FxNLMS's μ, tuned live on the training audio at installation (``fxnlms.tune_fxnlms_step``);
            None without a scene (NLMS keeps its rule).
    """

    scene: Scene
    eta: float | None = None
    secondary_estimate: np.ndarray = dataclasses.field(default_factory=lambda: np.ones(1))
    loudspeaker: str = "linear"
    eta_estimate: float | None = None
    identification_snr_db: float | None = None
    fxnlms_step: float | None = None

    @property
    def is_identity(self) -> bool:
        """True for today's task: no paths, a linear loudspeaker; the anti-noise meets the input itself."""
        return self.eta is None and all(len(np.trim_zeros(h, "b")) == 1 and h[0] == 1.0
                                        for h in (self.scene.primary, self.scene.secondary))

    @property
    def identified_scene(self) -> Scene:
        """The paths as the system knows them: P (through ``P∗x``, which the error microphone records with ANC off) and Ŝ.

        Every filter the system fits (the optimal controller, the banks) is fitted in this scene.
        """
        return Scene(self.scene.name, self.scene.primary, np.asarray(self.secondary_estimate, dtype=np.float64),
                     self.scene.rt60_s)

    @property
    def s_hat_misalignment_db(self) -> float:
        """``10·log10(‖Ŝ − S‖² / ‖S‖²)``, dB (−inf where Ŝ is exact, as in the ``none`` scene)."""
        return misalignment_db(self.secondary_estimate, self.scene.secondary)

    def noise_at_ear(self, x: np.ndarray) -> np.ndarray:
        """``P∗x``, float64 of shape ``(samples,)``."""
        return noise_at_ear(x, self.scene)

    def anti_noise_at_ear(self, drive: np.ndarray) -> np.ndarray:
        """``S∗f(drive)`` with the true S and f, float64 of shape ``(samples,)``."""
        return causal_filter(self.scene.secondary, sef(np.asarray(drive, dtype=np.float64), self.eta))

    def describe(self) -> dict:
        """JSON-able: the scene's summary, the loudspeaker, the true η and its estimate, and Ŝ's misalignment."""
        return {**self.scene.describe(), "scene": self.scene.name, "loudspeaker": self.loudspeaker, "eta": self.eta,
                "eta_estimate": self.eta_estimate, "identification_snr_db": self.identification_snr_db,
                "s_hat_misalignment_db": self.s_hat_misalignment_db, "fxnlms_step": self.fxnlms_step}


def make_plant(scene_spec: str, loudspeaker: str, train: np.ndarray, delay: int, taps: int, rt60: float = 0.2,
               identification_snr_db: float = IDENTIFICATION_SNR_DB, eta_error: float = 1.0, seed: int = 0):
    """Set a run's plant up as a real system would, and fit the optimal linear controller with what it measured.

    The world: the scene's true paths and, for ``"sat:R"``, a loudspeaker of ``η = R ×`` the RMS of the
    drive of the optimal controller fitted with the true S on ``train`` (so the severity is the same at any
    recording level). What the system measures with ANC off, the place's own noise (``train``) present:
    Ŝ (``identify_secondary_path``), then the loudspeaker's curve by a level sweep around the drive of the
    controller fitted with Ŝ (``identify_loudspeaker``). In a scene FxNLMS's step is tuned live on ``train``
    (``fxnlms.tune_fxnlms_step``). The controller returned is the one fitted with Ŝ,
    what a real system deploys; the true-S controller is a bound (``baselines.fit_wiener_controller`` with
    ``plant.scene``).

    Args:
        scene_spec: ``"none"``, ``"room"``, ``"bandpass"`` or a path (``make_scene``).
        loudspeaker: ``"linear"`` or ``"sat:R"``.
        train: the training audio, shape ``(samples,)``.
        delay, taps: the latency D and the controller's length.
        identification_snr_db: the excitation's level above the place's noise at the error microphone, dB.
        eta_error: a factor on η̂, to mis-set the loudspeaker's estimate on purpose (1: as measured).
        seed: for the excitations.

    Returns:
        ``(plant, wiener_filter)``: the ``Plant`` and the controller ``w`` fitted with Ŝ (shape ``(taps,)``; its
        drive is ``baselines.controller_drive(x, w, delay)``).
    """
    from .baselines import controller_drive, fit_wiener_controller
    from .fxnlms import tune_fxnlms_step

    scene = make_scene(scene_spec, rt60=rt60)
    ratio = parse_loudspeaker(loudspeaker)
    eta = None
    if ratio is not None:
        drive = controller_drive(train, fit_wiener_controller(train, scene, delay, taps), delay)
        eta = float(ratio * np.sqrt(np.mean(drive**2)))
    estimate = identify_secondary_path(scene, train, identification_snr_db, eta=eta, seed=seed)
    noise_rms = identification_noise_rms(scene, train, identification_snr_db)
    known = Plant(scene, eta, estimate, loudspeaker).identified_scene
    wiener_filter = fit_wiener_controller(train, known, delay, taps)
    drive_rms = float(np.sqrt(np.mean(controller_drive(train, wiener_filter, delay) ** 2)))
    eta_estimate = identify_loudspeaker(scene, estimate, eta, drive_rms, noise_rms, train, seed) if drive_rms > 0 else None
    if eta_estimate is not None:
        eta_estimate *= eta_error
    plant = Plant(scene, eta, estimate, loudspeaker, eta_estimate, identification_snr_db)
    if plant.is_identity:
        return plant, wiener_filter
    step = tune_fxnlms_step(train, scene, estimate, delay, taps, eta)
    return dataclasses.replace(plant, fxnlms_step=step), wiener_filter
