"""Chunked inference, metrics against hand-computed values, and the written outputs."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

import helpers


def test_chunk_spans_tile_the_signal():
    spans = list(helpers.chunk_spans(25, chunk_samples=10, context_samples=3))
    assert spans == [(0, 0, 10), (7, 10, 20), (17, 20, 25)]


@pytest.mark.parametrize("latency", [0, 16, 320])
def test_chunked_inference_equals_one_pass(tiny_model, latency):
    tiny_model.config.latency_samples = latency
    audio = np.random.default_rng(1).standard_normal(30_000).astype(np.float32)
    whole = tiny_model(torch.from_numpy(audio)[None]).inverse[0].detach().numpy()
    chunked = helpers.predict_inverse(tiny_model, audio, chunk_seconds=0.4)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


@pytest.mark.parametrize("latency", [0, 1, 16, 80])
def test_output_never_depends_on_input_newer_than_latency(tiny_model, latency):
    """Perturb x from n − D + 1 on: y[0..n] must not change, and y after n must (the model is not inert)."""
    tiny_model.config.latency_samples = latency
    x = torch.randn(1, 12_000)
    y = tiny_model(x).inverse
    for n in (0, 799, 800, 5_000, 11_998 - latency):
        perturbed = x.clone()
        perturbed[:, max(0, n - latency + 1) :] += torch.randn(1, x.shape[1] - max(0, n - latency + 1))
        y_perturbed = tiny_model(perturbed).inverse
        # The FFT convolution spreads float rounding (~1e-7) everywhere; a real dependence is ~1e-1.
        before = (y_perturbed[:, : n + 1] - y[:, : n + 1]).abs().max()
        assert before < 1e-5, f"y[..{n}] changed by {before} at latency {latency}"
        assert (y_perturbed[:, n + 1 :] - y[:, n + 1 :]).abs().max() > 1e-2


@pytest.mark.parametrize("latency", [0, 80])
def test_streaming_equals_offline_for_any_block_sizes(tiny_model, latency):
    tiny_model.config.latency_samples = latency
    audio = np.random.default_rng(2).standard_normal(20_000).astype(np.float32)
    offline = tiny_model(torch.from_numpy(audio)[None]).inverse[0].detach().numpy()
    canceller = helpers.StreamingCanceller(tiny_model)
    sizes = np.random.default_rng(3).integers(1, 1500, size=100)
    bounds = np.minimum(np.concatenate([[0], np.cumsum(sizes)]), len(audio))
    streamed = np.concatenate([canceller.process(audio[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a])
    np.testing.assert_allclose(streamed, offline[: len(streamed)], atol=1e-5)
    assert len(streamed) == len(audio)
    # Memory is flat: only the warm-up of past input and two blocks' filters are kept.
    assert len(canceller.history) == tiny_model.warmup and len(canceller.gains) <= 2
    assert canceller.real_time_factor > 0


def test_noise_reduction_hand_computed():
    assert helpers.noise_reduction_db([1.0, 1.0], [-0.5, -0.5]) == pytest.approx(10 * math.log10(2 / 0.5))
    assert helpers.noise_reduction_db([3.0, 4.0], [0.0, 0.0]) == pytest.approx(0.0)
    assert helpers.noise_reduction_db([1.0, -1.0], [1.0, -1.0]) == pytest.approx(10 * math.log10(2 / 8))
    assert helpers.noise_reduction_db([1.0, 2.0], [-1.0, -2.0]) == math.inf


def test_exact_negation_cancels_exactly(tone):
    assert helpers.noise_reduction_db(tone, helpers.exact_negation(tone)) == math.inf


def test_written_outputs_agree_with_metrics(tmp_path, tone):
    inverse = -0.9 * tone
    metrics = {"noise_reduction_db": helpers.noise_reduction_db(tone, inverse)}
    paths = helpers.write_outputs(tmp_path, tone, inverse, metrics)
    read = {name: sf.read(paths[name], dtype="float32")[0] for name in ("input", "inverse", "residual")}
    np.testing.assert_array_equal(read["residual"], read["input"] + read["inverse"])
    saved = json.loads(paths["metrics"].read_text())
    assert saved["noise_reduction_db"] == pytest.approx(20.0, abs=1e-4)  # residual is 0.1·x
    assert helpers.noise_reduction_db(read["input"], read["inverse"]) == pytest.approx(saved["noise_reduction_db"])
