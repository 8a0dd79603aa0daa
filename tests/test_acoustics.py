"""The acoustic plant (scenes, loudspeaker, residual, Ŝ) and the scene-aware baselines, against values worked out apart."""

import json
import math

import numpy as np
import pytest
from scipy.linalg import solve_toeplitz
from scipy.signal import lfilter

from wav2vec2_anc.acoustics import (
    Scene,
    bandpass_scene,
    causal_filter,
    inverse_sef,
    load_scene,
    make_scene,
    noise_at_ear,
    none_scene,
    parse_loudspeaker,
    plant_residual,
    room_paths,
    room_scene,
    secondary_path_torch,
    sef,
)
from wav2vec2_anc.audio_io import SAMPLE_RATE
from wav2vec2_anc.baselines import (
    _compiled_nlms,
    autocorrelation_lags,
    controller_drive,
    crosscorrelation_lags,
    fit_wiener_controller,
    fit_wiener_predictor,
    lag_covariance,
    nlms_inverse,
    predistorted_drive,
)
from wav2vec2_anc.fxnlms import fxnlms_drive, fxnlms_refined_drive, fxnlms_step_size
from wav2vec2_anc.plant import identify_secondary_path

RATE = SAMPLE_RATE
SPEED_OF_SOUND = 343.0  # pyroomacoustics' default


@pytest.fixture(scope="module")
def bandpass():
    return bandpass_scene()


@pytest.fixture(scope="module")
def room():
    return room_scene(0.2)


def white(seconds, seed=0):
    return np.random.default_rng(seed).standard_normal(int(seconds * RATE))


def hum(seconds, fundamental=50.0, harmonics=5, seed=0):
    """Mains hum: a fundamental and its harmonics at falling levels, with a trace of white noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    tones = sum(np.sin(2 * np.pi * fundamental * k * t + k) / k for k in range(1, harmonics + 1))
    return tones + 1e-3 * white(seconds, seed)


def nr_db(x, drive, scene, eta=None, start=0):
    """NR = 10·log10(Σd² / Σe²) over ``[start:]``, d the noise at the ear and e the residual."""
    d = noise_at_ear(x, scene)[start:]
    e = plant_residual(x, drive, scene, eta)[start:]
    return 10 * math.log10(np.sum(d**2) / np.sum(e**2))


def heldout_wiener(x, scene, delay, taps=512):
    """The wiener drive fitted on the first 70 % of ``x``; returns (held-out NR in dB, drive, split)."""
    split = int(0.7 * len(x))
    drive = controller_drive(x, fit_wiener_controller(x[:split], scene, delay, taps), delay)
    return nr_db(x, drive, scene, start=split), drive, split


# ── scenes ──


def test_leads_and_shapes(bandpass, room):
    none = none_scene()
    assert none.lead_samples == 0 and none.primary.tolist() == [1.0] and none.secondary.tolist() == [1.0]
    # Linear-phase FIRs delay by (taps − 1) / 2: 255.5 and 127.5 samples.
    assert bandpass.primary.shape == (512,) and bandpass.secondary.shape == (256,)
    assert bandpass.lead_samples == 128
    assert room.primary.shape == (512,) and room.secondary.shape == (512,)
    # Direct paths of 2 m and 0.5 m: 1.5 m / c at 16 kHz = 70.0 samples.
    assert abs((2.0 - 0.5) / SPEED_OF_SOUND * RATE - 70) < 0.1
    assert 65 <= room.lead_samples <= 75
    summary = json.loads(json.dumps(room.describe()))
    assert summary == {"name": "room", "primary_taps": 512, "secondary_taps": 512,
                       "lead_samples": room.lead_samples, "rt60_s": 0.2}


def test_bandpass_paths_pass_the_band_and_differ_in_gain(bandpass):
    for path, gain in ((bandpass.primary, 1.0), (bandpass.secondary, 0.5)):
        response = np.abs(np.fft.rfft(path, 4096))
        frequencies = np.fft.rfftfreq(4096, 1 / RATE)
        assert response[np.argmin(abs(frequencies - 1000))] == pytest.approx(gain, rel=0.01)
        assert response[0] < 0.01 * gain  # DC is outside 200–7900 Hz


def test_room_response_decays():
    primary, secondary = room_paths(0.2, taps=None)
    tenth = RATE // 10
    for path in (primary, secondary):
        first, later = np.sum(path[:tenth] ** 2), np.sum(path[tenth : 2 * tenth] ** 2)
        # RT60 0.2 s: 60 dB in 0.2 s, so the next 100 ms carries tens of dB less; ask for 15.
        assert later < first / 10**1.5


def test_room_is_deterministic(room):
    again = room_scene(0.2)
    assert np.array_equal(again.primary, room.primary) and np.array_equal(again.secondary, room.secondary)


def test_make_scene_names_and_rejects_unknown(tmp_path):
    assert make_scene("none").name == "none"
    assert make_scene("bandpass").lead_samples == 128
    with pytest.raises(ValueError, match="nowhere"):
        make_scene("nowhere")


# ── user scenes ──


def test_load_scene_round_trips_npz(tmp_path):
    primary, secondary = np.array([0.0, 0.0, 0.3, 1.0, 0.2]), np.array([0.5, 0.1])
    path = tmp_path / "paths.npz"
    np.savez(path, primary=primary, secondary=secondary)
    scene = load_scene(path)
    assert np.array_equal(scene.primary, primary) and np.array_equal(scene.secondary, secondary)
    assert scene.lead_samples == 3 and scene.name == str(path)


def test_load_scene_resamples_a_48k_wav(tmp_path):
    import soundfile as sf
    from scipy.signal import firwin, resample_poly

    primary = np.concatenate([np.zeros(300), firwin(301, 2000, fs=48_000)])  # a low-pass after a delay
    secondary = np.concatenate([0.5 * firwin(151, 2000, fs=48_000), np.zeros(450)])  # channels share a length
    path = tmp_path / "paths.wav"
    sf.write(path, np.stack([primary, secondary], axis=1), 48_000, subtype="FLOAT")
    scene = load_scene(path)
    for loaded, original in ((scene.primary, primary), (scene.secondary, secondary)):
        np.testing.assert_allclose(loaded, 3 * resample_poly(original.astype(np.float32), 1, 3), atol=1e-6)
        # A filter keeps its gain at the new rate: the low-pass passes DC at 1 (and 0.5).
        assert loaded.sum() == pytest.approx(original.sum(), rel=1e-3)
    # 300 samples at 48 kHz are 100 at 16 kHz, and the two kernels' centres differ by 75 at 48 kHz.
    assert scene.lead_samples == pytest.approx((300 + 150 - 75) / 3, abs=1)


def test_load_scene_rejects_bad_files(tmp_path):
    import soundfile as sf

    mono = tmp_path / "mono.wav"
    sf.write(mono, np.ones(64), RATE)
    with pytest.raises(ValueError, match=r"mono\.wav.*2 channels.*1"):
        load_scene(mono)
    partial = tmp_path / "partial.npz"
    np.savez(partial, primary=np.ones(4))
    with pytest.raises(ValueError, match=r"partial\.npz.*secondary"):
        load_scene(partial)
    empty = tmp_path / "empty.npz"
    np.savez(empty, primary=np.ones(4), secondary=np.zeros(0))
    with pytest.raises(ValueError, match=r"empty\.npz.*secondary.*empty"):
        load_scene(empty)


# ── the loudspeaker ──


def test_sef_passes_small_signals_and_is_bounded():
    eta = 0.3
    step = 1e-6
    assert (sef(step, eta) - sef(-step, eta)) / (2 * step) == pytest.approx(1.0, rel=1e-9)  # f′(0) = 1
    ceiling = eta * math.sqrt(math.pi / 2)
    large = sef(np.array([-1e3, -10.0, 10.0, 1e3]), eta)
    assert np.all(np.abs(large) <= ceiling) and large[-1] == pytest.approx(ceiling, rel=1e-12)
    y = np.linspace(-1, 1, 11)
    assert np.array_equal(sef(y, None), y) and np.array_equal(sef(y, math.inf), y)


def test_inverse_sef_undoes_sef_below_the_cap():
    eta = 0.5
    y = np.linspace(-4 * eta, 4 * eta, 101)  # f reaches 0.99994 of its ceiling at 4η: inside the cap
    np.testing.assert_allclose(inverse_sef(sef(y, eta), eta), y, atol=1e-8)
    beyond = inverse_sef(np.array([10.0, -10.0]), eta)  # more than f can give: capped, finite
    assert np.all(np.isfinite(beyond)) and beyond[0] == -beyond[1] > 4 * eta


def test_sef_torch_matches_numpy_and_has_the_right_gradient():
    import torch

    eta = 0.4
    y = np.linspace(-2, 2, 41)
    tensor = torch.tensor(y, requires_grad=True)
    output = sef(tensor, eta)
    np.testing.assert_allclose(output.detach().numpy(), sef(y, eta), atol=1e-12)
    output.sum().backward()
    np.testing.assert_allclose(tensor.grad.numpy(), np.exp(-(y**2) / (2 * eta**2)), atol=1e-12)  # f′ = exp(−y²/2η²)
    u = sef(y, eta)
    np.testing.assert_allclose(inverse_sef(torch.tensor(u), eta).numpy(), inverse_sef(u, eta), atol=1e-9)


def test_parse_loudspeaker():
    assert parse_loudspeaker("linear") is None
    assert parse_loudspeaker("sat:2") == 2.0 and parse_loudspeaker("sat:0.5") == 0.5
    for bad in ("sat:", "sat:-1", "sat:x", "clip:2", ""):
        with pytest.raises(ValueError, match="linear"):
            parse_loudspeaker(bad)


# ── the plant ──


def test_plant_residual_by_hand():
    scene = Scene("hand", np.array([0.0, 1.0]), np.array([0.5]))
    x, drive = np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, -2.0])
    # e = P∗x + S∗y = [0, 1, 2] + [0.5, 0.5, −1]
    np.testing.assert_array_equal(plant_residual(x, drive, scene), [0.5, 1.5, 1.0])
    np.testing.assert_array_equal(plant_residual(x, drive, none_scene()), x + drive)


def test_secondary_path_torch_matches_numpy(bandpass):
    import torch

    eta = 0.7
    drive = np.random.default_rng(3).standard_normal((2, 1000))
    expected = [plant_residual(np.zeros(1000), row, bandpass, eta) for row in drive]
    tensor = torch.tensor(drive, requires_grad=True)
    output = secondary_path_torch(tensor, bandpass.secondary, eta)
    assert output.shape == (2, 1000)
    np.testing.assert_allclose(output.detach().numpy(), expected, atol=1e-10)
    output.pow(2).sum().backward()
    assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0


# ── secondary-path identification ──


@pytest.mark.parametrize("scene_name", ["bandpass", "room"])
def test_identified_secondary_path_is_close(scene_name, bandpass, room):
    scene = {"bandpass": bandpass, "room": room}[scene_name]
    estimate = identify_secondary_path(scene)
    misalignment_db = 10 * math.log10(np.sum((estimate - scene.secondary) ** 2) / np.sum(scene.secondary**2))
    assert misalignment_db < -20


def test_none_scene_identifies_the_unit_impulse():
    np.testing.assert_array_equal(identify_secondary_path(none_scene(), taps=4), [1.0, 0.0, 0.0, 0.0])


# ── the optimal causal linear controller ──


def test_wiener_controller_in_the_none_scene_is_the_negated_predictor():
    x = white(2)
    none = none_scene()
    np.testing.assert_allclose(fit_wiener_controller(x, none, 16, 64), -fit_wiener_predictor(x, 16, 64), atol=1e-12)
    np.testing.assert_array_equal(fit_wiener_controller(x, none, 0, 8), -np.eye(8)[0])


def test_wiener_controller_is_the_exact_least_squares_fit_on_the_training_samples(bandpass):
    """Against numpy's lstsq on the regressor matrix itself: column i is r delayed by D + i, zeros before the start."""
    x = white(1, seed=3)[:3000]
    delay, taps = 5, 12
    r, d = causal_filter(bandpass.secondary, x), noise_at_ear(x, bandpass)
    lagged = lambda shift: np.stack([np.concatenate([np.zeros(shift + i), r])[: len(r)] for i in range(taps)], 1)  # noqa: E731
    np.testing.assert_allclose(lag_covariance(r, taps), lagged(0).T @ lagged(0) / len(r), rtol=1e-10, atol=1e-15)
    short = lagged(0)[:5]  # fewer samples than lags: still the exact sums
    np.testing.assert_allclose(lag_covariance(r[:5], taps), short.T @ short / 5, rtol=1e-10, atol=1e-15)
    expected = -np.linalg.lstsq(lagged(delay), d, rcond=None)[0]
    np.testing.assert_allclose(fit_wiener_controller(x, bandpass, delay, taps, loading=0.0), expected, rtol=1e-9)
    # The autocorrelation's Toeplitz matrix alone (Levinson's shortcut) is not that fit.
    toeplitz_fit = -solve_toeplitz(autocorrelation_lags(r, taps), crosscorrelation_lags(d, r, delay + taps)[delay:])
    assert np.abs(toeplitz_fit - expected).max() > 1e-3 * np.abs(expected).max()


def test_latency_within_the_lead_cancels_white_noise_beyond_it_does_not(bandpass):
    """The physics: the lead pays for the latency; beyond it white noise is unpredictable."""
    x = white(4, seed=1)
    within, _, _ = heldout_wiener(x, bandpass, bandpass.lead_samples - 16)
    beyond, _, _ = heldout_wiener(x, bandpass, bandpass.lead_samples + 32)
    assert within >= beyond + 20
    assert abs(beyond) < 1  # nothing left to cancel but chance


def test_calibration_against_references(bandpass, room):
    bandpass_white, _, _ = heldout_wiener(white(5, seed=2), bandpass, 16)
    room_hum, _, _ = heldout_wiener(hum(5), room, 16)
    room_white, _, _ = heldout_wiener(white(5, seed=3), room, 16)
    assert bandpass_white >= 35  # REFERENCES.md: 44–47 dB
    assert room_hum >= 25  # about 37 dB
    assert 3 <= room_white <= 12  # 6–9 dB: reverberation limits a 512-tap controller


def test_saturation_costs_and_predistortion_wins_some_back(bandpass):
    x = white(5, seed=4)
    linear, drive, split = heldout_wiener(x, bandpass, 16)
    eta = 2 * np.sqrt(np.mean(drive[:split] ** 2))
    saturated = nr_db(x, drive, bandpass, eta, split)
    predistorted = nr_db(x, predistorted_drive(drive, eta), bandpass, eta, split)
    assert saturated < linear - 15
    assert predistorted >= saturated
    np.testing.assert_array_equal(predistorted_drive(drive, None), drive)


# ── FxNLMS ──


def test_fxnlms_in_the_none_scene_is_nlms():
    x = white(1, seed=5)
    none = none_scene()
    for delay in (0, 16):
        drive = fxnlms_drive(x, none, identify_secondary_path(none, taps=8), delay, 32)
        reference = _compiled_nlms()(x, delay, 32, 0.2 / (delay + 1), 1e-6)  # nlms_inverse before float32
        np.testing.assert_allclose(drive, reference, rtol=0, atol=1e-9)
        np.testing.assert_allclose(drive, nlms_inverse(x, delay, 32), rtol=1e-5, atol=1e-6)


def test_fxnlms_converges_on_a_hum(bandpass):
    x = hum(4, fundamental=100.0, harmonics=2)
    drive = fxnlms_drive(x, bandpass, identify_secondary_path(bandpass), 16, 512)
    assert nr_db(x, drive, bandpass, start=3 * RATE) >= 20


def test_fxnlms_held_after_adapt_samples_is_one_fixed_filter(bandpass):
    delay, taps, freeze = 16, 32, 4000
    x = white(0.5, seed=7)
    estimate = identify_secondary_path(bandpass, seconds=0.5)
    online = fxnlms_drive(x, bandpass, estimate, delay, taps)
    held = fxnlms_drive(x, bandpass, estimate, delay, taps, adapt_samples=freeze)
    # Up to the freeze (and the D samples already made from weights adapted before it) nothing differs.
    np.testing.assert_array_equal(held[: freeze + delay], online[: freeze + delay])

    def fir_misfit(drive):
        """Relative residual of the best single FIR y[n] = Σₖ w[k]·x[n−D−k] over the samples after the freeze."""
        rows = np.arange(freeze + delay + 1, len(x))
        design = np.stack([x[rows - delay - k] for k in range(taps)], 1)
        weights = np.linalg.lstsq(design, drive[rows], rcond=None)[0]
        return np.linalg.norm(design @ weights - drive[rows]) / np.linalg.norm(drive[rows])

    assert fir_misfit(held) < 1e-9  # weights held: one fixed filter
    assert fir_misfit(online) > 1e-3  # still adapting: no single filter fits
    assert np.all(fxnlms_drive(x, bandpass, estimate, delay, taps, adapt_samples=0) == 0.0)


def test_fxnlms_is_causal_at_its_latency(bandpass):
    delay, moment = 16, 3000
    x = white(0.5, seed=6)
    estimate = identify_secondary_path(bandpass, seconds=0.5)
    drive = fxnlms_drive(x, bandpass, estimate, delay, 64, step_size=0.01, eta=1.0)
    nudged = x.copy()
    nudged[moment] += 1.0
    nudged_drive = fxnlms_drive(nudged, bandpass, estimate, delay, 64, step_size=0.01, eta=1.0)
    np.testing.assert_array_equal(nudged_drive[: moment + delay], drive[: moment + delay])
    assert nudged_drive[moment + delay] != drive[moment + delay]  # and it does respond, at once


# ── a fixed controller refined online by FxNLMS ──


def test_refinement_leaves_an_exact_fixed_part_alone():
    """At D = 0 without a scene −x cancels exactly, so the error is zero and nothing adapts."""
    x = white(0.5, seed=8)
    none = none_scene()
    drive = fxnlms_refined_drive(x, -x, none, identify_secondary_path(none, taps=8), 0, 32)
    np.testing.assert_array_equal(drive, -x)


def test_refinement_follows_a_noise_that_changed_after_fitting(bandpass):
    """A controller fitted on a 100 Hz hum meets a 170 Hz one: fixed, it keeps about 30 dB (its fit, through the
    white trace, holds some of the path's inverse); refined, within a few dB of the new hum's own fit (93 dB)."""
    delay, taps = 16, 512
    fixed = fit_wiener_controller(hum(2, fundamental=100.0, harmonics=2), bandpass, delay, taps)
    x = hum(4, fundamental=170.0, harmonics=2, seed=1)
    base = controller_drive(x, fixed, delay)
    refined = fxnlms_refined_drive(x, base, bandpass, identify_secondary_path(bandpass), delay, taps)
    last_second = 3 * RATE
    assert nr_db(x, base, bandpass, start=last_second) < 35
    assert nr_db(x, refined, bandpass, start=last_second) >= 85


def test_refinement_turns_down_a_fixed_part_twice_too_loud(bandpass):
    """White noise, a 256-tap optimal controller played at twice its gain (≈ 0 dB): 2 adaptive taps cannot
    undo that, so it is the gain on the fixed part, adapting to ½, that brings the NR back near the optimum's."""
    delay, x = 16, white(4, seed=10)
    estimate = identify_secondary_path(bandpass, seconds=0.5)
    optimal = controller_drive(x, fit_wiener_controller(x, bandpass, delay, 256), delay)
    last_second = 3 * RATE
    assert nr_db(x, 2 * optimal, bandpass, start=last_second) < 1
    refined = fxnlms_refined_drive(x, 2 * optimal, bandpass, estimate, delay, 2, fixed_member=False)
    assert nr_db(x, refined, bandpass, start=last_second) >= nr_db(x, optimal, bandpass, start=last_second) - 1
    # With the mix's fixed member, a fixed part that is only mis-scaled is collinear with the refined drive: the mix
    # has many settings that play nearly the optimum and leaves the one it found slowly (29 dB after 3 s, not 47).
    shipped = fxnlms_refined_drive(x, 2 * optimal, bandpass, estimate, delay, 2)
    assert nr_db(x, shipped, bandpass, start=last_second) >= 25
    # The same base split in two parts: each part's gain adapts, and their sum still plays the optimum.
    parts = fxnlms_drive(x, bandpass, estimate, delay, 2, 2 * fxnlms_step_size(estimate, delay),
                         base_drive=np.stack([optimal, optimal]))
    assert nr_db(x, parts, bandpass, start=last_second) >= nr_db(x, optimal, bandpass, start=last_second) - 1
    with pytest.raises(ValueError, match="base_drive"):
        fxnlms_drive(x, bandpass, estimate, delay, 2, base_drive=optimal[:-1])


def test_mix_takes_fxnlms_where_the_refined_drive_cannot_follow(bandpass):
    """A fixed part that jumps between 0 and twice the optimum every 50 ms on a 170 Hz hum: refined alone, it
    stays far below plain FxNLMS, which converges on the hum; mixed, the drive reaches FxNLMS's NR."""
    delay, taps = 16, 256
    x = hum(4, fundamental=170.0, harmonics=2, seed=1)
    estimate = identify_secondary_path(bandpass, seconds=0.5)
    optimal = controller_drive(x, fit_wiener_controller(x, bandpass, delay, taps), delay)
    jumps = np.repeat(np.random.default_rng(3).choice([0.0, 2.0], size=len(x) // 800 + 1), 800)[: len(x)]
    last_second = 3 * RATE
    fxnlms = nr_db(x, fxnlms_drive(x, bandpass, estimate, delay, taps), bandpass, start=last_second)
    refined = nr_db(x, fxnlms_refined_drive(x, jumps * optimal, bandpass, estimate, delay, taps, mix_step=0),
                    bandpass, start=last_second)
    mixed = nr_db(x, fxnlms_refined_drive(x, jumps * optimal, bandpass, estimate, delay, taps), bandpass,
                  start=last_second)
    assert fxnlms >= 40 and refined < fxnlms - 20
    assert mixed >= fxnlms - 1


def test_mix_falls_back_on_the_fixed_drive_where_adapting_costs(bandpass):
    """Brown noise without a scene at 1 ms: the optimal controller of the first 70 % is as good as a linear filter gets
    on the rest, and anything that keeps adapting there only adds its misadjustment (NLMS, the refined drive: about
    1 dB less). The mix's third member, the drive as it came, brings the canceller back to within 0.3 dB of it."""
    scene, delay, taps = none_scene(), 16, 256
    x = lfilter([1.0], [1, -0.995], white(8, seed=4))
    start = int(0.7 * len(x))
    fixed = controller_drive(x, fit_wiener_controller(x[:start], scene, delay, taps), delay)
    estimate = np.array([1.0])
    optimum = nr_db(x, fixed, scene, start=start)
    without = nr_db(x, fxnlms_refined_drive(x, fixed, scene, estimate, delay, taps, fixed_member=False), scene,
                    start=start)
    assert without < optimum - 0.5
    assert nr_db(x, fxnlms_refined_drive(x, fixed, scene, estimate, delay, taps), scene, start=start) >= optimum - 0.3


def test_refinement_is_causal_at_its_latency(bandpass):
    delay, moment = 16, 3000
    x = white(0.5, seed=6)
    estimate = identify_secondary_path(bandpass, seconds=0.5)
    # Direct form for the fixed part too: an FFT's rounding would reach back before the nudge.
    fixed = np.concatenate([np.zeros(delay), fit_wiener_controller(x, bandpass, delay, 64)])
    refine = lambda audio: fxnlms_refined_drive(audio, lfilter(fixed, [1.0], audio), bandpass, estimate,  # noqa: E731
                                                delay, 64)
    nudged = x.copy()
    nudged[moment] += 1.0
    np.testing.assert_array_equal(refine(nudged)[: moment + delay], refine(x)[: moment + delay])
    assert refine(nudged)[moment + delay] != refine(x)[moment + delay]


def test_guard_stops_a_refinement_that_diverges(bandpass):
    """μ = 1.5 with a loop delay of ~150 samples diverges; the guard drops it, halves μ and keeps the fixed part's NR."""
    delay, taps = 16, 64
    x = white(3, seed=9)
    estimate = identify_secondary_path(bandpass, seconds=0.5)
    base = controller_drive(x, fit_wiener_controller(x, bandpass, delay, taps), delay)
    run = lambda guard: fxnlms_drive(x, bandpass, estimate, delay, taps, step_size=1.5, base_drive=base,  # noqa: E731
                                     guard_samples=guard)
    last_second = 2 * RATE
    base_nr = nr_db(x, base, bandpass, start=last_second)
    with np.errstate(all="ignore"):
        assert not nr_db(x, run(0), bandpass, start=last_second) > base_nr - 20  # diverged (or overflowed to nan)
    assert nr_db(x, run(800), bandpass, start=last_second) >= base_nr - 1.0


@pytest.mark.parametrize("delay", [0, 16])
def test_fxnlms_through_the_identified_inverse_adapts_as_on_a_linear_loudspeaker(bandpass, delay):
    """With η̂ = η, f(f̂⁻¹(y)) = y wherever the drive stays within the curve's reach: FxNLMS refining a fixed part
    (the refined drive alone, no mix) then sends f̂⁻¹ of exactly what it makes before a linear loudspeaker, and the
    ear hears the linear run."""
    taps, x = 64, hum(1, fundamental=100.0, harmonics=2)
    estimate = identify_secondary_path(bandpass, seconds=0.5)
    base = controller_drive(x, fit_wiener_controller(x, bandpass, delay, taps), delay)
    eta = 3 * np.max(np.abs(base))  # far from the cap, yet the curve takes about 2 % off the base's peaks
    assert np.max(np.abs(base - sef(base, eta))) > 0.01 * np.max(np.abs(base))
    linear = fxnlms_refined_drive(x, base, bandpass, estimate, delay, taps, mix_step=0)
    sent = fxnlms_refined_drive(x, base, bandpass, estimate, delay, taps, eta=eta, mix_step=0, eta_estimate=eta)
    np.testing.assert_allclose(sent, inverse_sef(linear, eta), rtol=0, atol=1e-9 * np.max(np.abs(linear)))
    np.testing.assert_allclose(plant_residual(x, sent, bandpass, eta), plant_residual(x, linear, bandpass, None),
                               rtol=0, atol=1e-9 * np.max(np.abs(x)))
    # Without the inverse the same refinement meets the saturation: what reaches the ear differs.
    raw = fxnlms_refined_drive(x, base, bandpass, estimate, delay, taps, eta=eta, mix_step=0)
    assert np.max(np.abs(plant_residual(x, raw, bandpass, eta) - plant_residual(x, linear, bandpass, None))) > 1e-4


def test_the_mix_before_a_saturating_loudspeaker_plays_finite_drives_and_an_infinite_eta_is_linear(bandpass):
    """The full mix (refined drive and fixed member through f̂⁻¹, plain FxNLMS without) on peaks past the curve's
    bend stays finite; η̂ = inf, a linear curve, sends what the linear refinement sends, to the bit."""
    delay, taps, x = 16, 64, hum(1, fundamental=100.0, harmonics=2)
    estimate = identify_secondary_path(bandpass, seconds=0.5)
    linear = controller_drive(x, fit_wiener_controller(x, bandpass, delay, taps), delay)
    eta = 0.8 * np.max(np.abs(linear))
    refined = fxnlms_refined_drive(x, linear, bandpass, estimate, delay, taps, eta=eta, eta_estimate=eta)
    assert np.all(np.isfinite(refined)) and np.max(np.abs(refined)) > 0.9 * eta  # it plays on the bent part
    np.testing.assert_array_equal(fxnlms_refined_drive(x, linear, bandpass, estimate, delay, taps, eta_estimate=math.inf),
                                  fxnlms_refined_drive(x, linear, bandpass, estimate, delay, taps))
