"""Metrics against hand-computed values; baselines against closed-form results."""

import math

import numpy as np
import pytest
from suite import linear_prediction_bound_db, shaped_noise, shaped_noise_spectrum

import helpers
from wav2vec2_anc.acoustics import none_scene
from wav2vec2_anc.baselines import WHISPER_LOADING
from wav2vec2_anc.metrics import (
    a_weighted_noise_reduction_db,
    a_weighting_db,
    octave_band_noise_reduction_db,
    segment_noise_reduction_db,
    segment_nr_summary,
)
from wav2vec2_anc.pairs import split_heldout

RATE = helpers.SAMPLE_RATE


def sine(frequency, seconds=1.0, amplitude=1.0):
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * RATE)) / RATE)


def ar1(a, samples, seed=0):
    """x[n] = a·x[n−1] + w[n]."""
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -a], np.random.default_rng(seed).standard_normal(samples))


# ── metrics ──


def test_octave_band_sees_only_the_band_that_changed():
    x = sine(1000) + sine(250)
    inverse = -0.9 * sine(1000) - sine(250)  # residual: 0.1 of the 1 kHz tone, none of the 250 Hz one
    bands = octave_band_noise_reduction_db(x, inverse)
    assert bands[1000] == pytest.approx(20.0, abs=0.01)
    assert bands[250] > 100


def test_band_without_noise_is_nan():
    bands = octave_band_noise_reduction_db(np.zeros(16_000), np.zeros(16_000))
    assert all(math.isnan(v) for v in bands.values())


def test_octave_bands_split_at_the_band_edges():
    # 1.5 kHz is above the 1 kHz band's top edge (1414 Hz), so it falls in the 2 kHz band.
    x = sine(1500)
    bands = octave_band_noise_reduction_db(x, -0.5 * x)
    assert bands[2000] == pytest.approx(20 * math.log10(2), abs=0.01)


def test_segment_summary_of_known_segments():
    # Five 1-s segments whose residual is 10^(-k/20) of the noise: NR = k dB for k = 10, 20, 30, 40, 50.
    x = np.tile(sine(440), 5)
    gains = np.repeat([10 ** (-k / 20) for k in (30, 10, 50, 20, 40)], RATE)
    inverse = -(1 - gains) * x
    np.testing.assert_allclose(segment_noise_reduction_db(x, inverse), [30, 10, 50, 20, 40], atol=1e-6)
    summary = segment_nr_summary(x, inverse)
    assert summary["median"] == pytest.approx(30)
    assert summary["worst10"] == pytest.approx(10)


def test_short_tail_segment_is_dropped_and_long_one_kept():
    x = sine(440, seconds=2.4)
    assert len(segment_noise_reduction_db(x, -0.5 * x)) == 2
    assert len(segment_noise_reduction_db(sine(440, seconds=2.6), -0.5 * sine(440, seconds=2.6))) == 3


def test_exact_cancellation_summarises_to_infinity_not_nan():
    x = sine(440, seconds=3)
    summary = segment_nr_summary(x, -x)
    assert summary == {"median": math.inf, "worst10": math.inf}


def test_a_weighting_matches_the_standard_table():
    # IEC 61672-1 table values, which are rounded and given at nominal frequencies.
    expected = {31.5: -39.4, 100: -19.1, 1000: 0.0, 4000: 1.0, 10000: -2.5}
    values = a_weighting_db(np.array(list(expected)))
    np.testing.assert_allclose(values, list(expected.values()), atol=0.15)


def test_a_weighted_nr_discounts_low_frequencies():
    x = sine(1000) + sine(50)
    # Cancel only the 1 kHz tone perfectly: unweighted NR is 3 dB, but A-weighting all but ignores 50 Hz.
    inverse = -sine(1000)
    assert helpers.noise_reduction_db(x, inverse) == pytest.approx(10 * math.log10(2), abs=0.01)
    assert a_weighted_noise_reduction_db(x, inverse) > 25


# ── baselines ──


def test_delayed_negation_of_a_tone_follows_the_delay_formula():
    # NR = −20·log10|2·sin(π f τ)|: one sample at 16 kHz gives 8.2 dB at 1 kHz (REFERENCES.md).
    x = sine(1000, seconds=2)
    nr = helpers.noise_reduction_db(x[1:], helpers.delayed_negation(x, 1)[1:])
    assert nr == pytest.approx(-20 * math.log10(2 * math.sin(math.pi * 1000 / RATE)), abs=0.05)
    assert nr == pytest.approx(8.2, abs=0.1)


def test_wiener_at_zero_delay_is_negation():
    x = ar1(0.9, 20_000).astype(np.float32)  # audio as loaded; the anti-noise is float32 too
    coefficients = helpers.fit_wiener_predictor(x, delay=0, order=8)
    np.testing.assert_array_equal(coefficients, [1, 0, 0, 0, 0, 0, 0, 0])
    assert helpers.noise_reduction_db(x, helpers.wiener_inverse(x, coefficients, 0)) == math.inf


@pytest.mark.parametrize("delay", [1, 2, 5])
def test_wiener_on_ar1_reaches_the_theoretical_bound(delay):
    a = 0.9
    x = ar1(a, 200_000)
    train, heldout = x[:140_000], x[140_000:]
    coefficients = helpers.fit_wiener_predictor(train, delay=delay, order=8)
    np.testing.assert_allclose(coefficients, [a**delay] + [0] * 7, atol=0.01)
    inverse = helpers.wiener_inverse(x, coefficients, delay)[140_000:]
    bound = -10 * math.log10(1 - a ** (2 * delay))
    assert helpers.noise_reduction_db(heldout, inverse) == pytest.approx(bound, abs=0.1)


def test_loading_solves_the_loaded_normal_equations():
    # (R + λ·r[0]·I) h = r[D : D+order], R built here from direct sums, not the FFT the code uses.
    x = ar1(0.8, 4_000, seed=3)
    delay, order, loading = 3, 6, 0.05
    r = np.array([np.dot(x[: len(x) - k], x[k:]) / len(x) for k in range(delay + order)])
    lags = np.abs(np.subtract.outer(np.arange(order), np.arange(order)))
    expected = np.linalg.solve(r[lags] + loading * r[0] * np.eye(order), r[delay : delay + order])
    np.testing.assert_allclose(helpers.fit_wiener_predictor(x, delay, order, loading), expected, rtol=1e-9)
    np.testing.assert_allclose(helpers.fit_wiener_controller(x, none_scene(), delay, order, loading), -expected, rtol=1e-9)


def test_a_bank_filter_cannot_boost_noise_it_was_not_fitted_for():
    # Noise low-passed at 2 kHz leaves the bands above empty, and the optimal controller 1 ms ahead uses
    # them freely: on white noise it adds ‖w‖²·σ² (independent of x at lag ≥ D), a boost of 10·log10(1 + ‖w‖²).
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(0)
    x = sosfilt(butter(10, 2000, fs=RATE, output="sos"), rng.standard_normal(6 * RATE))
    train, heldout, white = x[: 4 * RATE], x[4 * RATE :], rng.standard_normal(2 * RATE)
    delay, taps = 16, 64
    optimal = helpers.fit_filter_bank({"lowpass": train}, none_scene(), delay, taps, WHISPER_LOADING)["lowpass"]
    bank = helpers.fit_filter_bank({"lowpass": train}, none_scene(), delay, taps)["lowpass"]
    for w in (optimal, bank):
        boost = -helpers.noise_reduction_db(white, helpers.controller_drive(white, w, delay))
        assert boost == pytest.approx(10 * math.log10(1 + np.sum(w**2)), abs=0.3)
    assert np.sum(optimal**2) > 50  # a boost of more than 17 dB
    assert np.sum(bank**2) < 1  # under 3 dB, where ‖w‖² ≤ 1/BANK_LOADING is all the loading guarantees
    own = [helpers.noise_reduction_db(heldout, helpers.controller_drive(heldout, w, delay)) for w in (optimal, bank)]
    assert own[1] == pytest.approx(own[0], abs=0.1)


def test_a_stretch_bank_fits_each_state_of_a_noise_that_changes():
    # A 50 Hz hum for 2 s, then a 70 Hz one: the whole-signal filter is a compromise, each stretch's fits its own tone.
    from suite import harmonic_noise

    hum = np.concatenate([harmonic_noise(2.0, 50.0, harmonics=4, seed=1), harmonic_noise(2.0, 70.0, harmonics=4, seed=2)])
    delay, taps = 16, 256
    bank = helpers.fit_stretch_bank(hum, none_scene(), delay, taps, stretches=2)
    assert list(bank) == ["0.00–2.00 s", "2.00–4.00 s"]
    whole = helpers.fit_wiener_controller(hum, none_scene(), delay, taps)

    def nr_db(w, part):
        x = hum[part * 2 * RATE : (part + 1) * 2 * RATE]
        return helpers.noise_reduction_db(x[RATE:], helpers.controller_drive(x, w, delay)[RATE:])

    first, second = bank.values()
    assert nr_db(first, 0) > 30 and nr_db(second, 1) > 30
    assert nr_db(first, 1) < 10 and nr_db(second, 0) < 10
    assert min(nr_db(whole, 0), nr_db(whole, 1)) < min(nr_db(first, 0), nr_db(second, 1)) - 5
    with pytest.raises(ValueError, match="delay \\+ taps = 272"):
        helpers.fit_stretch_bank(hum[:500], none_scene(), delay, taps, stretches=2)


def test_nlms_converges_to_negation_at_zero_delay():
    x = np.random.default_rng(0).standard_normal(32_000)
    inverse = helpers.nlms_inverse(x, delay=0, taps=32, step_size=0.5)
    assert helpers.noise_reduction_db(x[16_000:], inverse[16_000:]) > 60


def test_nlms_predicts_a_tone_ahead_and_cannot_predict_white_noise():
    tone = sine(200, seconds=4)
    inverse = helpers.nlms_inverse(tone, delay=16)
    assert helpers.noise_reduction_db(tone[32_000:], inverse[32_000:]) > 20
    white = np.random.default_rng(1).standard_normal(64_000)
    inverse = helpers.nlms_inverse(white, delay=16)
    assert abs(helpers.noise_reduction_db(white[32_000:], inverse[32_000:])) < 0.5


def test_nlms_matches_a_plain_reference_and_is_causal():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(300)
    delay, taps, mu, eps = 3, 4, 0.2, 1e-6

    def reference(t):  # [x[t], x[t−1], …], zeros before the start
        return np.array([x[t - k] if t - k >= 0 else 0.0 for k in range(taps)])

    weights, prediction = np.zeros(taps), np.zeros(300 + delay)
    for t in range(300):
        error = x[t] - prediction[t]  # prediction[t] was made at t − D
        u = reference(t - delay)
        weights += mu * error * u / (eps + u @ u)
        prediction[t + delay] = weights @ reference(t)
    np.testing.assert_allclose(helpers.nlms_inverse(x, delay, taps, mu, eps), -prediction[:300], atol=1e-5)

    for n in (0, 150, 298):
        perturbed = x.copy()
        perturbed[n - delay + 1 :] += 1.0
        np.testing.assert_array_equal(helpers.nlms_inverse(perturbed, delay, taps, mu, eps)[: n + 1],
                                      helpers.nlms_inverse(x, delay, taps, mu, eps)[: n + 1])


@pytest.mark.parametrize("delay", [1, 2, 5, 16])
def test_linear_bound_of_ar1_matches_the_closed_form(delay):
    a, size = 0.9, 4096
    spectrum = 1 / np.abs(1 - a * np.exp(-2j * np.pi * np.arange(size) / size)) ** 2
    expected = -10 * math.log10(1 - a ** (2 * delay))
    assert linear_prediction_bound_db(spectrum, delay) == pytest.approx(expected, abs=0.01)


def test_linear_bound_of_white_noise_is_zero_and_negation_is_exact():
    flat = np.ones(1024)
    assert linear_prediction_bound_db(flat, 1) == pytest.approx(0.0, abs=1e-9)
    assert linear_prediction_bound_db(flat, 0) == math.inf


def test_wiener_reaches_the_bound_on_generated_brown_noise():
    """Generated noise, fitted predictor and spectral bound must agree: three independent routes."""
    x = shaped_noise(20.0, 2.0, seed=5)
    train, heldout = split_heldout(x, 0.3)
    inverse = helpers.wiener_inverse(x, helpers.fit_wiener_predictor(train, 16, 512), 16)[len(train):]
    bound = linear_prediction_bound_db(shaped_noise_spectrum(2.0), 16)
    assert helpers.noise_reduction_db(heldout, inverse) == pytest.approx(bound, abs=0.5)


def test_a_figure_above_100_db_reads_exact_in_print():
    assert helpers.display_db(39.14) == "39.1 dB"
    assert helpers.display_db(346.5) == helpers.display_db(float("inf")) == "exact (> 100 dB)"
    noise = np.random.default_rng(0).standard_normal(16_000)
    table = helpers.format_comparison(noise, {"negation": -noise, "half": -0.5 * noise})
    negation, half = table.splitlines()[1:3]
    assert negation.split() == ["negation", "exact", "exact", "exact", "exact"]
    assert half.split()[:2] == ["half", "6.0"]  # a residual of half the noise: 10·log10(4)
    assert "inf" not in table


def test_the_headline_names_the_network_its_refinement_and_the_better_baseline():
    methods = {"model": {"nr_db": 12.34}, "model_fxnlms": {"nr_db": 13.0}, "wiener": {"nr_db": 11.0},
               "nlms": {"nr_db": 12.5}, "negation": {"nr_db": -3.0}}
    line = helpers.headline(methods, 1.0, in_scene=False)
    assert line == ("The network's anti-noise makes the noise 12.3 dB quieter on audio the model never heard; refined "
                    "online at the error microphone, 13.0 dB (the better baseline, nlms: 12.5 dB).")
    exact = {name: {"nr_db": float("inf")} for name in methods}
    assert helpers.headline(exact, 0.0, in_scene=False).endswith(
        "At 0 ms a plain sign flip is exact: set LATENCY_MS = 1 for the real prediction problem.")
    assert "exact (> 100 dB) quieter" in helpers.headline(exact, 0.0, in_scene=False)
    assert "quieter at the ear" in helpers.headline(methods, 0.0, in_scene=True)


def test_a_library_larger_than_the_bank_is_grouped_by_spectrum():
    from wav2vec2_anc.baselines import group_by_spectrum

    rng = np.random.default_rng(0)
    t = np.arange(8_000) / 16_000
    kinds = {"hum": lambda: np.sin(2 * np.pi * 60 * t + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(t.size),
             "whine": lambda: np.sin(2 * np.pi * 3_000 * t + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(t.size),
             "hiss": lambda: rng.standard_normal(t.size),
             "rumble": lambda: np.cumsum(rng.standard_normal(t.size)) * 0.01}
    trains = {f"{kind}_{i:02d}.wav": (make() * rng.uniform(0.1, 3)).astype(np.float32)  # any level
              for i in range(10) for kind, make in kinds.items()}
    grouped = group_by_spectrum(trains, groups=4)
    assert len(grouped) == 4
    for name, audio in grouped.items():
        kind = name.split("_")[0]
        assert name.endswith("+9 more") and len(audio) == 10 * 8_000
        members = [n for n in trains if n.startswith(kind)]
        np.testing.assert_array_equal(audio, np.concatenate([trains[n] for n in members]))
    small = dict(list(trains.items())[:3])
    assert group_by_spectrum(small, groups=4).keys() == small.keys()  # no more files than filters: one each


def test_a_thousand_files_start_a_bank_of_at_most_bank_size_filters():
    from wav2vec2_anc.acoustics import none_scene
    from wav2vec2_anc.baselines import BANK_SIZE

    rng = np.random.default_rng(1)
    t = np.arange(4_000) / 16_000
    clips = [helpers.Clip(f"{i:04d}.wav", train=np.sin(2 * np.pi * rng.uniform(50, 4_000) * t).astype(np.float32)
                          + 0.01 * rng.standard_normal(t.size).astype(np.float32), heldout=np.zeros(100, np.float32))
             for i in range(1_000)]
    starts = helpers.start_filters(clips, helpers.Plant(none_scene()), 16, 64, file_bank=True)
    assert len(starts.bank) == BANK_SIZE == 16
    assert all(taps.shape == (64,) for taps in starts.bank.values())
    sizes = [1 if "+" not in name else 1 + int(name.split("+")[1].split()[0]) for name in starts.bank]
    assert sum(sizes) == 1_000


def test_a_group_never_takes_a_files_name():
    from wav2vec2_anc.baselines import group_by_spectrum

    t = np.arange(4_000) / 16_000
    trains = {"hum": np.sin(2 * np.pi * 60 * t), "hum2": np.sin(2 * np.pi * 61 * t),
              "hum +1 more": np.random.default_rng(0).standard_normal(t.size)}  # a file named as the hums' group
    grouped = group_by_spectrum(trains, groups=2)
    assert sum(len(audio) for audio in grouped.values()) == 3 * 4_000  # no file's audio dropped
    with pytest.raises(ValueError, match="at least one filter"):
        group_by_spectrum(trains, groups=0)
