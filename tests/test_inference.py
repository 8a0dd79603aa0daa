"""Chunked inference, metrics against hand-computed values, and the written outputs."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import predictable_noise, predicting_model, set_random_basis

import helpers
from wav2vec2_anc.inference import chunk_spans
from wav2vec2_anc.signal_path import (
    SAFETY_BATCHES,
    GainSums,
    causal_fir,
    clipped_gain,
    filter_parts,
    gain_standard_error,
    judged_windows,
    own_filter_sums,
    past_windows,
    remembered_output_gain,
    safety_gains,
)


def test_chunk_spans_tile_the_signal():
    spans = list(chunk_spans(25, chunk_samples=10, context_samples=3))
    assert spans == [(0, 0, 10), (7, 10, 20), (17, 20, 25)]


@pytest.mark.parametrize("latency", [0, 16, 320])
def test_chunked_inference_equals_one_pass(tiny_model, latency):
    tiny_model.config.latency_samples = latency
    audio = np.random.default_rng(1).standard_normal(30_000).astype(np.float32)
    whole = tiny_model(torch.from_numpy(audio)[None]).inverse[0].detach().numpy()
    chunked = helpers.predict_inverse(tiny_model, audio, chunk_seconds=0.4)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


@pytest.mark.parametrize(("safety_window", "safety_memory"), [(0, 0), (4000, 0), (800, 4000)])
@pytest.mark.parametrize("latency", [0, 1, 16, 80])
def test_output_never_depends_on_input_newer_than_latency(latency, safety_window, safety_memory):
    """Perturb x from n − D + 1 on: y[0..n] must not change, and y after n must (the model is not inert)."""
    x = torch.from_numpy(predictable_noise(12_000))[None]
    model = predicting_model(latency, safety_window, x[0].numpy(), safety_memory=safety_memory)
    y = model(x).inverse
    for n in (0, 799, 800, 5_000, 11_998 - latency):
        perturbed = x.clone()
        perturbed[:, max(0, n - latency + 1) :] += 0.1 * torch.randn(1, x.shape[1] - max(0, n - latency + 1))
        y_perturbed = model(perturbed).inverse
        # The FFT convolution spreads float rounding (~1e-8 here) everywhere; a real dependence is far larger.
        before = (y_perturbed[:, : n + 1] - y[:, : n + 1]).abs().max()
        assert before < 1e-6, f"y[..{n}] changed by {before} at latency {latency}"
        assert (y_perturbed[:, n + 1 :] - y[:, n + 1 :]).abs().max() > 1e-3


@pytest.mark.parametrize(("safety_window", "safety_confidence", "safety_memory"),
                         [(0, 0.0, 0), (4000, 0.0, 0), (4000, 2.0, 0), (160, 0.0, 6208)])
@pytest.mark.parametrize("latency", [0, 80])
def test_streaming_equals_offline_for_any_block_sizes(latency, safety_window, safety_confidence, safety_memory):
    # With a safety memory: at 0 ms the prediction works (the short window's gain stands), at 5 ms it
    # cancels about 1 dB of this noise, so the memory's bound takes over. The memory then sets the warm-up
    # the stream keeps, at 5 ms exactly 10 blocks: 2·800 + 2·80 + 6208 + 32 = 8000.
    audio = predictable_noise(20_000, seed=2)
    model = predicting_model(latency, safety_window, audio, safety_confidence, safety_memory)
    offline = model(torch.from_numpy(audio)[None]).inverse[0].detach().numpy()
    assert np.abs(offline).max() > 0.05  # the model really produces anti-noise
    if safety_memory and latency:
        assert model.warmup == 8000
        model.config.safety_memory_samples = 0
        assert np.abs(model(torch.from_numpy(audio)[None]).inverse[0].detach().numpy() - offline).max() > 1e-3
        model.config.safety_memory_samples = safety_memory
    canceller = helpers.StreamingCanceller(model)
    sizes = np.random.default_rng(3).integers(1, 1500, size=100)
    bounds = np.minimum(np.concatenate([[0], np.cumsum(sizes)]), len(audio))
    streamed = np.concatenate([canceller.process(audio[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a])
    np.testing.assert_allclose(streamed, offline[: len(streamed)], atol=1e-5)
    assert len(streamed) == len(audio)
    # Memory is flat: only the warm-up of past input and output, and two blocks' gains, are kept.
    assert len(canceller.history) == canceller.raw_history.shape[1] == model.warmup and len(canceller.gains) <= 2


def test_real_time_factor_is_compute_over_audio_time(tiny_model, monkeypatch):
    """Each process() call is timed: with a clock that advances 0.01 s per call, 1 s of audio costs 0.01 s per block."""
    import time

    ticks = iter(np.arange(0, 100, 0.005))  # start and stop of each call: 0.005 s apart
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(ticks)))
    canceller = helpers.StreamingCanceller(tiny_model)
    for _ in range(4):
        canceller.process(np.zeros(4000, dtype=np.float32))  # 0.25 s each
    assert canceller.real_time_factor == pytest.approx(4 * 0.005 / 1.0)


def test_predict_inverse_restores_the_training_mode(tiny_model, tone):
    tiny_model.train()
    helpers.predict_inverse(tiny_model, tone[:4000])
    assert tiny_model.training
    tiny_model.eval()
    helpers.predict_inverse(tiny_model, tone[:4000])
    assert not tiny_model.training


@pytest.mark.parametrize("latency", [0, 16])
def test_heldout_prediction_equals_the_tail_of_one_pass(latency):
    """The evaluation runs the model over the tail and its warm-up only; the result is that of the whole clip."""
    from wav2vec2_anc.evaluation import heldout_prediction

    audio = predictable_noise(60_000, seed=5)
    model = predicting_model(latency, 4000, audio)
    clip = helpers.Clip("x", train=audio[:41_234], heldout=audio[41_234:])
    whole = helpers.predict_inverse(model, audio)
    np.testing.assert_allclose(heldout_prediction(model, clip), whole[41_234:], atol=1e-6)


def test_clipped_gain_is_the_clipped_least_squares_gain():
    x = torch.tensor([1.0, 2.0])
    assert clipped_gain(x, -0.5 * x).item() == pytest.approx(1.0)  # best gain 2, clipped to 1
    assert clipped_gain(x, -2.0 * x).item() == pytest.approx(0.5)
    assert clipped_gain(x, x).item() == 0.0  # amplifying: switched off
    assert clipped_gain(x, torch.zeros(2)).item() == 0.0
    y = torch.tensor([-1.0, 0.0])  # best g minimises (1 - g)² + 4: g = 1
    assert clipped_gain(x, y).item() == pytest.approx(1.0)


def test_clipped_gain_with_confidence_keeps_only_a_significant_gain():
    # ĝ = 1 (Σxy = −16, Σy² = 16); the residual x + y is +0.5, +0.5, −0.5, −0.5, …, so each of the 8
    # two-sample batch sums (x + y)·y is ∓1: σ = √(8/7 · 8) / 16 = 1/(2√7) = 0.189, and ĝ/σ = 2√7 = 5.29.
    y = -torch.ones(16)
    x = torch.ones(16) + 0.5 * torch.tensor([1.0, 1.0, -1.0, -1.0] * 4)
    assert SAFETY_BATCHES == 8
    assert gain_standard_error(x, y, torch.tensor(1.0)).item() == pytest.approx(1 / (2 * math.sqrt(7)))
    assert clipped_gain(x, y, confidence=5.0).item() == pytest.approx(1.0)
    assert clipped_gain(x, y, confidence=5.5).item() == 0.0
    assert clipped_gain(x, -x, confidence=100.0).item() == 1.0  # exact: σ = 0
    # A window length that 8 does not divide: the parts cover every sample, so their sums still cancel.
    x17, y17 = torch.cat([x, x[:1]]), torch.cat([y, y[:1]])
    assert clipped_gain(x17, y17, confidence=5.0).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="too short"):
        clipped_gain(x[:15], y[:15], confidence=2.0)


def test_confidence_turns_off_most_gains_on_noise_nothing_predicts():
    rng = np.random.default_rng(0)
    x, y = (torch.from_numpy(rng.standard_normal((4000, 800))) for _ in range(2))
    plain, tested = clipped_gain(x, y), clipped_gain(x, y, confidence=2.0)
    # ĝ scatters around 0 here: the plain clip keeps it on about half the windows; ĝ/σ with σ from
    # 8 batches is about Student's t with 7 degrees of freedom, above 2 on 4.3 % of them.
    assert 0.45 < (plain > 0).double().mean().item() < 0.55
    assert 0.02 < (tested > 0).double().mean().item() < 0.07
    assert torch.equal(tested[tested > 0], plain[tested > 0])  # what is kept is unchanged
    # A working prediction (residual 20 dB down) keeps its gain at any sensible z.
    assert torch.allclose(clipped_gain(x, -(x + 0.1 * y), confidence=3.0), clipped_gain(x, -(x + 0.1 * y)))


def test_safety_gains_trust_the_correction_only_as_far_as_it_helped():
    x = torch.tensor([1.0, 2.0])
    # The shared filter cancels exactly: a correction can only add noise, so it is switched off.
    assert [g.item() for g in safety_gains(x, -x, torch.tensor([1.0, 0.0]))] == [0.0, 1.0]
    # The shared filter cancels half; a correction of −x is best at half strength, and then cancels all.
    correction_gain, output_gain = safety_gains(x, -0.5 * x, -x)
    assert (correction_gain.item(), output_gain.item()) == pytest.approx((0.5, 1.0))
    # A correction that makes it worse is off, and the shared filter that amplifies is turned down.
    correction_gain, output_gain = safety_gains(x, -2.0 * x, -x)
    assert (correction_gain.item(), output_gain.item()) == pytest.approx((0.0, 0.5))


def test_own_filter_sums_judge_each_blocks_filter_over_its_past():
    """Against the block's combined filter run sample by sample with numpy, over each window."""
    rng = np.random.default_rng(11)
    x = predictable_noise(3_000, seed=4).astype(np.float64)
    delay, length = 2, 700
    filters = np.zeros((3, 12))
    filters[0, 0] = -0.99**delay  # the AR(1) noise's own prediction, D ahead
    filters[1:] = rng.standard_normal((2, 12)) * 0.3
    weights = np.array([[1.0, 0.1, 0.0], [0.5, 0.0, 0.2], [-1.0, 0.0, 0.0], [2.0, 0.3, -0.3]])
    ends = np.array([-10, 200, 1500, 3000])
    # Two windows per block: the `length` samples before its end, and a short one further back.
    starts = np.stack([ends - length, ends - length - 300], 1)
    stops = np.stack([ends, ends - length], 1)
    outputs = causal_fir(torch.from_numpy(x)[None], torch.from_numpy(filters), delay)
    sums = own_filter_sums(torch.from_numpy(x)[None], outputs, torch.from_numpy(weights)[None], torch.from_numpy(starts),
                           torch.from_numpy(stops))
    for b, w in enumerate(weights):
        y = np.convolve(np.concatenate([np.zeros(delay), x]), w @ filters)[: len(x)]  # y[n] = Σₖ h[k]·x[n−D−k]
        for j in range(2):
            window = slice(max(0, starts[b, j]), max(0, stops[b, j]))
            expected = [x[window] @ x[window], x[window] @ y[window], y[window] @ y[window]]
            np.testing.assert_allclose([field[0, b, j].item() for field in sums], expected, rtol=1e-9, atol=1e-12)
    assert sums.input_power[0, 0, 0] == 0 and sums.cross[0, 2, 0] > 0 > sums.cross[0, 3, 0]  # the cases are distinct


def test_a_memory_is_judged_in_consecutive_parts_then_the_newest_window():
    model = helpers.build_model("scratch:tiny", filter_taps=32, safety_window_samples=160, safety_memory_samples=800)
    starts, ends = judged_windows(torch.tensor([1000, 40]), model.safety_window, model.safety_memory)
    assert starts.tolist() == [[200, 300, 400, 500, 600, 700, 800, 900, 840],
                               [-760, -660, -560, -460, -360, -260, -160, -60, -120]]
    assert ends.tolist() == [[300, 400, 500, 600, 700, 800, 900, 1000, 1000], [-660, -560, -460, -360, -260, -160, -60, 40, 40]]
    with pytest.raises(ValueError, match="safety_memory_samples must be 0 .off. or at least 16, got 8"):
        helpers.build_model("scratch:tiny", filter_taps=32, safety_memory_samples=8)


def test_gain_sums_give_the_residual_of_any_gain():
    x, y = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([-0.5, 1.0, 0.0])
    sums = GainSums((x * x).sum(), (x * y).sum(), (y * y).sum())
    for gain in (0.0, 0.4, 1.0):
        expected = ((x + gain * y) ** 2).sum() / (x * x).sum()
        assert sums.residual_ratio(torch.tensor(gain)).item() == pytest.approx(expected.item())


def test_remembered_gain_is_bounded_by_the_memory_unless_the_prediction_works():
    def newest(residual_fraction):
        """Input power 1, and an anti-noise −a·x whose residual at gain 1 is (1 − a)² of it."""
        a = 1 - residual_fraction**0.5
        return GainSums(torch.tensor(1.0), torch.tensor(-a), torch.tensor(a * a))

    def memory(spread, estimate=0.4):
        """Eight parts, each Σy² = 1 and Σxy = −estimate ± spread: the memory's gain is ``estimate``, and its
        batch-means standard error σ = √(8/7 · 8·spread²) / 8."""
        cross = torch.tensor([-estimate + spread, -estimate - spread] * 4)
        return GainSums(torch.ones(8), cross, torch.ones(8))

    weak, working = newest(0.5), newest(0.2)  # 3 dB and 7 dB below the input
    one = torch.tensor(1.0)
    # Neither the output that played nor the block's own filter cancels 6 dB: the memory bounds the gain.
    # A scattered memory (σ = 0.265, 0.4 − 2σ < 0): half its gain, 0.2.
    assert remembered_output_gain(one, weak, weak, memory(0.7)).item() == pytest.approx(0.2)
    # A steady one (σ = 0.0378): its lower bound 0.4 − 2σ = 0.3244, above half.
    assert remembered_output_gain(one, weak, weak, memory(0.1)).item() == pytest.approx(0.3244, abs=1e-4)
    # Either of them cancels 6 dB: the short window's gain stands.
    assert remembered_output_gain(one, working, weak, memory(0.7)).item() == 1.0
    assert remembered_output_gain(one, weak, working, memory(0.7)).item() == 1.0
    # Never above the short window's gain.
    assert remembered_output_gain(torch.tensor(0.1), weak, weak, memory(0.1)).item() == pytest.approx(0.1)
    # A memory whose filter would have amplified (its gain −0.2): silence.
    assert remembered_output_gain(one, weak, weak, memory(0.1, estimate=-0.2)).item() == 0.0


def test_the_model_judges_its_gains_with_its_configured_confidence():
    audio = np.random.default_rng(5).standard_normal(24_000).astype(np.float32) * 0.1  # nothing predicts it
    x = torch.from_numpy(audio)[None].double()
    ends = torch.arange(8_000, 24_000, 800)
    gains = {}
    for confidence in (0.0, 2.0):
        model = predicting_model(16, 800, audio, confidence)
        silent_basis = torch.zeros(1, x.shape[1], model.filter_head.basis.shape[1])
        shared, correction = filter_parts(model.filter_outputs(x), silent_basis)
        correction = correction + 0.3 * torch.roll(x, 7, -1)  # a "correction" that only adds noise
        gains[confidence] = model.guard_gains(x, shared, correction, ends)
        past = [past_windows(signal, ends, 800) for signal in (x, shared, correction)]
        expected = torch.stack(safety_gains(*past, confidence), -1)
        assert torch.equal(gains[confidence], expected)
    # The test keeps fewer of the chance gains than the plain clip does.
    assert (gains[2.0] > 0).sum() < (gains[0.0] > 0).sum()


def test_correction_cannot_spoil_exact_negation():
    """At D = 0 a shared filter of [−1] cancels exactly; a random encoder correction must not undo that."""
    model = helpers.build_model("scratch:tiny", filter_taps=8, latency_samples=0, seed=0).eval()
    with torch.no_grad():
        model.filter_head.shared[0] = -1.0
    set_random_basis(model, 0.02)
    noise = np.random.default_rng(4).standard_normal(48_000).astype(np.float32)
    guarded = helpers.predict_inverse(model, noise)
    model.config.safety_window_samples = 0
    raw = helpers.predict_inverse(model, noise)
    assert helpers.noise_reduction_db(noise[16_000:], raw[16_000:]) < 60  # the correction is real noise
    # The float64 waveform path and the directly applied first tap keep −x exact to the last bit.
    assert helpers.noise_reduction_db(noise[16_000:], guarded[16_000:]) == math.inf


def test_safety_gain_stops_a_harmful_filter_from_amplifying():
    """A filter that doubles white noise instead of cancelling it: the gain turns it off after one window."""
    model = helpers.build_model("scratch:tiny", filter_taps=8, latency_samples=16, seed=0).eval()
    with torch.no_grad():
        model.filter_head.shared[0] = 1.0
    noise = np.random.default_rng(4).standard_normal(48_000).astype(np.float32)
    guarded = helpers.predict_inverse(model, noise, use_encoder=False)
    model.config.safety_window_samples = 0
    raw = helpers.predict_inverse(model, noise, use_encoder=False)
    assert helpers.noise_reduction_db(noise[16_000:], raw[16_000:]) == pytest.approx(-3.0, abs=0.2)
    assert helpers.noise_reduction_db(noise[16_000:], guarded[16_000:]) == pytest.approx(0.0, abs=0.05)


def test_noise_reduction_hand_computed():
    assert helpers.noise_reduction_db([1.0, 1.0], [-0.5, -0.5]) == pytest.approx(10 * math.log10(2 / 0.5))
    assert helpers.noise_reduction_db([3.0, 4.0], [0.0, 0.0]) == pytest.approx(0.0)
    assert helpers.noise_reduction_db([1.0, -1.0], [1.0, -1.0]) == pytest.approx(10 * math.log10(2 / 8))
    assert helpers.noise_reduction_db([1.0, 2.0], [-1.0, -2.0]) == math.inf


def test_exact_negation_cancels_exactly(tone):
    assert helpers.noise_reduction_db(tone, helpers.delayed_negation(tone, 0)) == math.inf


def test_written_outputs_agree_with_metrics(tmp_path, tone):
    inverse = -0.9 * tone
    metrics = {"noise_reduction_db": helpers.noise_reduction_db(tone, inverse)}
    paths = helpers.write_outputs(tmp_path, tone, inverse, metrics)
    read = {name: sf.read(paths[name], dtype="float32")[0] for name in ("input", "inverse", "residual")}
    np.testing.assert_array_equal(read["residual"], read["input"] + read["inverse"])
    saved = json.loads(paths["metrics"].read_text())
    assert saved["noise_reduction_db"] == pytest.approx(20.0, abs=1e-4)  # residual is 0.1·x
    assert helpers.noise_reduction_db(read["input"], read["inverse"]) == pytest.approx(saved["noise_reduction_db"])


def test_a_new_file_is_compared_with_the_training_audios_wiener_filter_and_nlms_from_its_first_sample(tone):
    model = helpers.build_model("scratch:tiny", filter_taps=32, latency_samples=8)
    coefficients = helpers.fit_wiener_predictor(tone[:20_000], delay=8, order=32)
    anti_noise = np.full(len(tone), 0.5, np.float32)  # stands for the model's anti-noise: passed through as it is
    methods = helpers.new_file_comparison(model, tone, anti_noise, -coefficients)
    assert list(methods) == ["model", "negation", "nlms", "wiener"]
    assert methods["model"] is anti_noise
    np.testing.assert_allclose(methods["wiener"], helpers.wiener_inverse(tone, coefficients, delay=8), atol=1e-6)
    np.testing.assert_array_equal(methods["nlms"], helpers.nlms_inverse(tone, delay=8, taps=32))
    np.testing.assert_array_equal(methods["negation"], helpers.delayed_negation(tone, 8))
