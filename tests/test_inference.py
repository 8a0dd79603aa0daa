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
from wav2vec2_anc.signal_path import clipped_gain, safety_gains


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


@pytest.mark.parametrize("safety_window", [0, 4000])
@pytest.mark.parametrize("latency", [0, 1, 16, 80])
def test_output_never_depends_on_input_newer_than_latency(latency, safety_window):
    """Perturb x from n − D + 1 on: y[0..n] must not change, and y after n must (the model is not inert)."""
    x = torch.from_numpy(predictable_noise(12_000))[None]
    model = predicting_model(latency, safety_window, x[0].numpy())
    y = model(x).inverse
    for n in (0, 799, 800, 5_000, 11_998 - latency):
        perturbed = x.clone()
        perturbed[:, max(0, n - latency + 1) :] += 0.1 * torch.randn(1, x.shape[1] - max(0, n - latency + 1))
        y_perturbed = model(perturbed).inverse
        # The FFT convolution spreads float rounding (~1e-8 here) everywhere; a real dependence is far larger.
        before = (y_perturbed[:, : n + 1] - y[:, : n + 1]).abs().max()
        assert before < 1e-6, f"y[..{n}] changed by {before} at latency {latency}"
        assert (y_perturbed[:, n + 1 :] - y[:, n + 1 :]).abs().max() > 1e-3


@pytest.mark.parametrize("safety_window", [0, 160, 4000])
@pytest.mark.parametrize("latency", [0, 80])
def test_streaming_equals_offline_for_any_block_sizes(latency, safety_window):
    audio = predictable_noise(20_000, seed=2)
    model = predicting_model(latency, safety_window, audio)
    offline = model(torch.from_numpy(audio)[None]).inverse[0].detach().numpy()
    assert np.abs(offline).max() > 0.05  # the model really produces anti-noise
    canceller = helpers.StreamingCanceller(model)
    sizes = np.random.default_rng(3).integers(1, 1500, size=100)
    bounds = np.minimum(np.concatenate([[0], np.cumsum(sizes)]), len(audio))
    streamed = np.concatenate([canceller.process(audio[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a])
    np.testing.assert_allclose(streamed, offline[: len(streamed)], atol=1e-5)
    assert len(streamed) == len(audio)
    # Memory is flat: only the warm-up of past input and output, and two blocks' gains, are kept.
    assert len(canceller.history) == canceller.raw_history.shape[1] == model.warmup and len(canceller.gains) <= 2


@pytest.mark.parametrize("update_lag,every", [(0, 1), (800, 1), (800, 2)])
def test_the_encoder_hears_only_input_older_than_its_lag(update_lag, every):
    """Block b's filter (``block_filters``) reads the encoder's context ending ``update_lag`` before the own past of
    the block whose update it reuses (b itself, or the last of every ``every``-th): input from there on leaves it
    unchanged, and input just before changes it."""
    latency, block = 16, 800
    audio = predictable_noise(12_000, seed=7)
    model = predicting_model(latency, 0, audio, update_lag, every)
    x = torch.from_numpy(audio)[None]
    filters = model(x).block_filters
    for b in (3, 7, 12):
        newest = (b - b % every) * block - latency - update_lag  # the newest sample block b's update reads
        later, at = x.clone(), x.clone()
        later[:, newest + 1 :] += 0.1
        at[:, newest] += 1.0
        torch.testing.assert_close(model(later).block_filters[:, b], filters[:, b], atol=1e-7, rtol=0)
        assert (model(at).block_filters[:, b] - filters[:, b]).abs().max() > 1e-6


@pytest.mark.parametrize("update_lag,every,worker", [(0, 1, True), (800, 1, True), (1600, 1, True), (800, 2, True),
                                                     (800, 2, "process")])
def test_streaming_with_the_encoder_on_a_worker_equals_offline(update_lag, every, worker):
    audio = predictable_noise(20_000, seed=2)
    model = predicting_model(16, 4000, audio, update_lag, every)
    offline = model(torch.from_numpy(audio)[None]).inverse[0].detach().numpy()
    canceller = helpers.StreamingCanceller(model, worker=worker)
    streamed = np.concatenate([canceller.process(audio[i : i + 320]) for i in range(0, len(audio), 320)])
    canceller.close()
    np.testing.assert_allclose(streamed, offline, atol=1e-5)
    # Each update, once, as soon as its input had arrived: also those of blocks still to come.
    arrived = [b for b in range(0, 100, every) if b * model.block - 16 + 1 - update_lag <= len(audio)]
    assert canceller.updates == len(arrived) and canceller.late_updates == 0


@pytest.mark.parametrize("every", [1, 2])
def test_a_late_update_never_stalls_the_audio_path(every):
    """An encoder that takes 0.5 s on a worker for any sound, live: every 20-ms block returns at once, each late
    update is counted, and the newest ready update plays on: those of the silence before the stream, which the
    canceller computes before the stream starts."""
    import threading

    audio = predictable_noise(16_000, seed=3)
    model = predicting_model(16, 0, audio, update_lag=800, every=every)
    encode = type(model).encoder_features.__get__(model)
    release = threading.Event()
    model.encoder_features = lambda windows: (windows.abs().max() > 0 and release.wait(0.5), encode(windows))[1]
    canceller = helpers.StreamingCanceller(model, live=True)
    # With a lag of a block, the input of blocks 0 and 1's updates ends before the stream (block 1 has none of its
    # own when every block but the second updates).
    assert canceller.updates == 2 // every
    streamed = np.concatenate([canceller.process(audio[i : i + 320]) for i in range(0, 8000, 320)])
    release.set()
    canceller.close()
    # Blocks 2-9, 50 ms each: 8 updates, or 4 each used by two blocks, each counted once.
    assert max(canceller.block_seconds) < 0.1 and canceller.late_updates == 8 // every
    silence = encode(torch.zeros(1, model.context)).detach()
    model.encoder_features = lambda windows: silence.expand(len(windows), -1)
    expected = model(torch.from_numpy(audio[:8000])[None]).inverse[0].detach().numpy()
    shared_alone = model(torch.from_numpy(audio[:8000])[None], use_encoder=False).inverse[0].detach().numpy()
    assert np.abs(expected - shared_alone).max() > 1e-3  # the silence's update steers the filter
    np.testing.assert_allclose(streamed, expected, atol=1e-6)


def test_real_time_factor_is_compute_over_audio_time(tiny_model, monkeypatch):
    """Each process() call is timed: with a clock that advances 0.01 s per call, 1 s of audio costs 0.01 s per block."""
    import time

    ticks = iter(np.arange(0, 100, 0.005))  # start and stop of each call: 0.005 s apart
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(ticks)))
    canceller = helpers.StreamingCanceller(tiny_model, use_encoder=False)  # the encoder's own clock reads stay out
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
    assert list(methods) == ["model", "negation", "nlms", "wiener", "model_fxnlms"]
    assert methods["model"] is anti_noise
    # The untrained model is silent: its refinement at the "error microphone" (the residual, S = Ŝ = 1) is NLMS
    # from zero, and cancels the tone as NLMS does once both have adapted.
    tail = slice(len(tone) // 2, None)
    refined_db = helpers.noise_reduction_db(tone[tail], methods["model_fxnlms"][tail])
    assert refined_db > 10.0 and refined_db > helpers.noise_reduction_db(tone[tail], methods["nlms"][tail]) - 1.0
    np.testing.assert_allclose(methods["wiener"], helpers.wiener_inverse(tone, coefficients, delay=8), atol=1e-6)
    np.testing.assert_array_equal(methods["nlms"], helpers.nlms_inverse(tone, delay=8, taps=32))
    np.testing.assert_array_equal(methods["negation"], helpers.delayed_negation(tone, 8))


def test_a_worker_process_refuses_a_model_whose_encoder_runs_elsewhere():
    """A worker process rebuilds the encoder from the weights: a quantized copy would silently run in float there."""
    audio = predictable_noise(8_000, seed=5)
    quantized = helpers.with_backend(predicting_model(16, 0, audio), "int8")
    with pytest.raises(ValueError, match="worker process rebuilds the model"):
        helpers.StreamingCanceller(quantized, worker="process")
