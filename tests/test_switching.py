"""The switching benchmark: its test sequence, the oracle filter bank, the after-switch figure and a smoke run."""

import json
import math

import numpy as np
import pytest
import report  # noqa: E402
import soundfile as sf
import switching  # noqa: E402
from scipy.signal import lfilter
from suite import SWITCHING_ENGINE_FIRING_HZ, switching_suite

import helpers
from wav2vec2_anc import switching as sequences
from wav2vec2_anc.acoustics import none_scene
from wav2vec2_anc.plant import Plant
from wav2vec2_anc.switching import Segment

SR = 16_000


def ramp_library(lengths: dict[str, int]) -> dict[str, np.ndarray]:
    """Clips whose samples strictly increase over the whole clip (train and held-out), each in its own range."""
    return {name: (1.0 + 10.0 * i + np.arange(n) / n).astype(np.float64) for i, (name, n) in enumerate(lengths.items())}


def test_the_sequence_switches_every_segment_at_one_rms_from_heldout_audio_only():
    library = ramp_library({"a": 40_000, "b": 60_000, "c": 30_000})  # held out: 12 000, 18 000, 9 000 samples
    clips = switching.library_clips(library)
    sequence, segments = sequences.switching_sequence({c.name: c.heldout for c in clips}, 0.5, 9, seed=3)
    length = 8_000
    assert len(segments) == 10 and len(sequence) == 10 * length
    assert [(s.start, s.stop) for s in segments] == [(k * length, (k + 1) * length) for k in range(10)]
    rms = [np.sqrt(np.mean(np.square(sequence[s.start : s.stop], dtype=np.float64))) for s in segments]
    np.testing.assert_allclose(rms, 0.1, rtol=1e-5)
    next_offset = {"a": 0, "b": 0, "c": 0}
    for segment in segments:
        audio = library[segment.clip]
        split = round(len(audio) * 0.7)
        heldout_samples = len(audio) - split
        assert segment.source_offset == next_offset[segment.clip]  # a clip continues where it stopped …
        expected = audio[split + (segment.source_offset + np.arange(length)) % heldout_samples]  # … wrapping in its tail
        got = sequence[segment.start : segment.stop].astype(np.float64)
        np.testing.assert_allclose(got / got[0], expected / expected[0], rtol=1e-5)  # the tail itself, scaled
        assert expected.min() >= audio[split]  # never a training sample (the ramp is increasing)
        next_offset[segment.clip] = (segment.source_offset + length) % heldout_samples
    assert any(s.clip == "c" and s.source_offset + length > 9_000 for s in segments)  # the wrap was exercised


def test_the_order_never_repeats_a_clip_back_to_back_and_is_reproducible():
    names = ["a", "b", "c", "d"]
    for seed in range(20):
        order = sequences.clip_order(names, 41, seed)
        assert all(x != y for x, y in zip(order, order[1:]))
        assert order == sequences.clip_order(names, 41, seed)
        assert sorted(order[:40]) == sorted(names * 10)  # whole shuffles: every clip equally often
    assert sequences.clip_order(names, 41, 0) != sequences.clip_order(names, 41, 1)
    two = sequences.clip_order(["x", "y"], 9, 5)
    assert all(x != y for x, y in zip(two, two[1:]))
    with pytest.raises(ValueError, match="two clips"):
        sequences.clip_order(["x"], 3, 0)


def test_default_switches_play_every_clip_twice_and_at_least_eight():
    assert sequences.default_switches(2) == 8
    assert sequences.default_switches(7) == 13
    heldouts = {name: np.random.default_rng(i).standard_normal(SR) for i, name in enumerate("abcdefg")}
    _, segments = sequences.switching_sequence(heldouts, 0.25, sequences.default_switches(7), seed=0)
    assert len(segments) - 1 == 13
    assert {name: sum(s.clip == name for s in segments) for name in heldouts} == dict.fromkeys(heldouts, 2)


def test_the_switching_suite_holds_tones_at_the_named_frequencies():
    suite = switching_suite(seconds=1.0)
    assert list(suite) == ["mains_50hz", "mains_60hz", "engine_30hz", "engine_45hz", "engine_70hz", "brown"]
    assert "white" in switching_suite(seconds=1.0, with_white=True)
    engines = [(f"engine_{hz:g}hz", hz) for hz in SWITCHING_ENGINE_FIRING_HZ]
    for name, fundamental in [("mains_50hz", 50), ("mains_60hz", 60), *engines]:
        audio = suite[name]
        assert len(audio) == SR and np.sqrt(np.mean(audio.astype(np.float64) ** 2)) == pytest.approx(0.1, rel=1e-3)
        spectrum = np.abs(np.fft.rfft(audio))  # 1-s clip: bin k is k Hz
        assert np.argmax(spectrum) == fundamental  # the fundamental is the strongest (harmonics at 1/k)


def ar1(a: float, samples: int, seed: int) -> np.ndarray:
    return lfilter([1.0], [1.0, -a], np.random.default_rng(seed).standard_normal(samples))


def test_the_oracle_uses_each_clips_own_filter_and_beats_the_library_filter():
    # AR(1) noises: the optimal one-step (D = 1) predictor of x[n] = a·x[n−1] + e[n] is a·x[n−1], so each
    # clip's controller is w = [−a, 0, …] and a segment's NR is −10·log10(1 − a²): 10.1 dB and 1.9 dB.
    coefficients = {"smooth": 0.95, "rough": -0.6}
    library = {name: ar1(a, 20 * SR, seed) for seed, (name, a) in enumerate(coefficients.items())}
    clips = switching.library_clips(library)
    scene, delay, taps = none_scene(), 1, 8
    optimal = sequences.optimal_bank(clips, scene, delay, taps)
    bank = helpers.fit_filter_bank({c.name: c.train for c in clips}, scene, delay, taps)  # loaded: the model's start
    for name, a in coefficients.items():
        np.testing.assert_allclose(optimal[name], [-a] + [0.0] * (taps - 1), atol=0.02)
        np.testing.assert_allclose(bank[name], [-a] + [0.0] * (taps - 1), atol=0.02)
        assert np.sum(bank[name] ** 2) < np.sum(optimal[name] ** 2)
    sequence, segments = sequences.switching_sequence({c.name: c.heldout for c in clips}, 1.0, 8, seed=0)
    library_filter = helpers.fit_wiener_controller(helpers.training_audio(clips), scene, delay, taps)
    drives = sequences.method_drives(sequence, segments, Plant(scene), library_filter, bank, delay, taps,
                                     oracle_bank=optimal)
    assert set(drives) == {"wiener_library", "nlms", "wiener_oracle"}
    oracle = drives["wiener_oracle"]
    for segment in segments:
        inside = slice(segment.start, segment.stop)
        np.testing.assert_allclose(oracle[inside], helpers.controller_drive(sequence, optimal[segment.clip], delay)[inside])
    nr = sequences.segment_nr_db(sequence, oracle, segments)
    for segment, value in zip(segments, nr):
        assert value == pytest.approx(-10 * math.log10(1 - coefficients[segment.clip] ** 2), abs=0.6)
    library_nr = sequences.segment_nr_db(sequence, drives["wiener_library"], segments)
    assert np.all(nr > library_nr + 0.5)
    assert helpers.noise_reduction_db(sequence, oracle) > helpers.noise_reduction_db(sequence, drives["wiener_library"]) + 1.0


def two_noise_bank(delay: int):
    """Two AR(1) noises' library, their 8-tap filter bank at latency ``delay``, a 1-s switching sequence of their
    held-out parts, its segments, and each filter's drive over the whole sequence."""
    library = {name: ar1(a, 20 * SR, seed) for seed, (name, a) in enumerate({"smooth": 0.95, "rough": -0.6}.items())}
    clips = switching.library_clips(library)
    bank = helpers.fit_filter_bank({c.name: c.train for c in clips}, none_scene(), delay, 8)
    sequence, segments = sequences.switching_sequence({c.name: c.heldout for c in clips}, 1.0, 8, seed=0)
    own = {name: helpers.controller_drive(sequence, taps, delay) for name, taps in bank.items()}
    return bank, sequence, segments, own


def test_the_oracle_on_blocks_switches_at_the_first_block_that_hears_the_new_clip_and_glides():
    delay, block = 1, 160
    bank, sequence, segments, own = two_noise_bank(delay)
    blocks = sequences.oracle_drive(sequence, segments, bank, delay, block)
    ramp = np.arange(1, block + 1) / block
    for before, after in zip(segments[:-1], segments[1:]):
        switch = after.start  # 16 000 · k: a block boundary
        # That block's context ends at switch − 1, in the old clip: the old filter throughout.
        np.testing.assert_allclose(blocks[switch : switch + block], own[before.clip][switch : switch + block])
        # The next block hears the new clip and glides to its filter; after that, the new filter alone.
        glide = slice(switch + block, switch + 2 * block)
        np.testing.assert_allclose(blocks[glide], (1 - ramp) * own[before.clip][glide] + ramp * own[after.clip][glide])
        steady = slice(switch + 2 * block, after.stop)
        np.testing.assert_allclose(blocks[steady], own[after.clip][steady])


def test_the_oracle_with_a_reaction_keeps_the_old_filter_that_long_after_each_switch():
    delay, reaction = 1, 240
    bank, sequence, segments, own = two_noise_bank(delay)
    late = sequences.oracle_drive(sequence, segments, bank, delay, reaction=reaction)
    np.testing.assert_array_equal(sequences.oracle_drive(sequence, segments, bank, delay, reaction=0),
                                  sequences.oracle_drive(sequence, segments, bank, delay))
    first = segments[0]
    np.testing.assert_allclose(late[: first.stop], own[first.clip][: first.stop])  # no switch before the first
    for before, after in zip(segments[:-1], segments[1:]):
        old, new = slice(after.start, after.start + reaction), slice(after.start + reaction, after.stop)
        np.testing.assert_allclose(late[old], own[before.clip][old])
        np.testing.assert_allclose(late[new], own[after.clip][new])
    with pytest.raises(ValueError, match="reaction"):
        sequences.oracle_drive(sequence, segments, bank, delay, block=160, reaction=reaction)


def test_nr_after_a_switch_is_the_first_second_of_each_new_segment():
    # Three switches; the noise is 1 everywhere and the residual r, so NR = −20·log10(r): 20, 40 and 30 dB
    # in the first second after the switches, 60 dB everywhere else (a window that leaked would show it).
    segments = [Segment("a", 0, 2 * SR, 0), Segment("b", 2 * SR, 4 * SR, 0), Segment("a", 4 * SR, 6 * SR, 2 * SR),
                Segment("b", 6 * SR, 7 * SR + SR // 2, 2 * SR)]
    noise = np.ones(7 * SR + SR // 2)
    residual = np.full(len(noise), 1e-3)
    residual[2 * SR : 3 * SR] = 0.1
    residual[4 * SR : 5 * SR] = 0.01
    residual[6 * SR : 7 * SR] = 10 ** (-30 / 20)
    after = sequences.after_switch_nr_db(noise, residual - noise, segments)
    np.testing.assert_allclose(after, [20.0, 40.0, 30.0], atol=1e-9)
    metrics = sequences.switching_metrics(noise, residual - noise, segments)
    assert metrics["nr_db_after_switch_1s"] == pytest.approx(30.0)
    # The last segment is 1.5 s: its half second of 60 dB averages in with the 30 dB second.
    expected_last = 10 * math.log10(1.5 * SR / (SR * 10 ** (-30 / 10) + SR / 2 * 1e-6))
    assert metrics["segment_nr_db"][3] == pytest.approx(expected_last)
    assert metrics["nr_db_median_segment"] == pytest.approx(sorted(metrics["segment_nr_db"])[1])
    short = sequences.after_switch_nr_db(noise, residual - noise, segments, seconds=0.5)
    np.testing.assert_allclose(short, [20.0, 40.0, 30.0], atol=1e-9)
    assert len(metrics["window_nr_db_100ms"]) == 75


KEYS = {"method", "latency_ms", "scene", "nr_db", "nr_db_median_segment", "nr_db_after_switch_1s", "segment_nr_db",
        "train_seconds", "model_name"}


def test_the_benchmark_records_every_method(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    # Different lengths, so training takes the balanced path (pairs cycled up to the longer file's count).
    sf.write(clips / "hum.wav", 0.1 * np.sin(2 * np.pi * 50 * np.arange(5 * SR) / SR), SR, subtype="FLOAT")
    sf.write(clips / "brownish.wav", ar1(0.99, 7 * SR, 1) * 0.01, SR, subtype="FLOAT")
    out = tmp_path / "switching.json"
    records = switching.main(["--clips", str(clips), "--out", str(out), "--max-steps", "2", "--latency-ms", "1",
                              "--switch-seconds", "0.5", "--filter-taps", "64", "--update-ms", "100",
                              "--encoder-update-ms", "100", "--backends", "int8",
                              "--plot", str(tmp_path / "plot.png")])

    def no_bare_constants(name):
        raise AssertionError(f"bare {name} in the results: not strict JSON")

    json.loads(out.read_text(), parse_constant=no_bare_constants)
    assert helpers.loads_strict(out.read_text()) == records
    assert [r["method"] for r in records] == ["wiener_library", "nlms", "wiener_oracle", "wiener_oracle_blocks",
                                              "bank_by_errors", "model", "model_no_encoder", "model_int8",
                                              "model_no_output_gain"]
    assert {r["safety_seconds"] for r in records} == {0.01}
    assert all(KEYS <= set(r) for r in records)
    assert all(len(r["segment_nr_db"]) == 9 and len(r["segments"]) == 9 for r in records)  # 8 switches
    by = {r["method"]: r for r in records}
    assert by["model"]["model_name"] == "scratch:tiny" and by["model"]["train_seconds"] > 0
    assert by["wiener_library"]["model_name"] is None and by["nlms"]["train_seconds"] == 0.0
    assert by["model_int8"]["update_lag_ms"] == helpers.AdvancedSettings.update_lag_ms
    assert by["model_int8"]["encoder_update_ms"] == 100 and by["nlms"]["update_lag_ms"] is None
    assert abs(by["model_int8"]["nr_db"] - by["model"]["nr_db"]) < 0.5  # quantization moves the encoder's features
    assert all(np.isfinite(r["nr_db"]) for r in records)
    assert by["wiener_oracle"]["nr_db"] > by["wiener_library"]["nr_db"]
    assert (tmp_path / "plot.png").stat().st_size > 0
    assert "| wiener_oracle |" in report.switching_tables(records)
