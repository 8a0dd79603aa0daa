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
    assert spans == [(0, 13, 0, 10), (7, 23, 10, 20), (17, 25, 20, 25)]


def test_chunked_inference_is_seamless_on_the_waveform_path():
    """With the encoder's contribution off, chunking must reproduce the unchunked output exactly."""
    model = helpers.build_model("scratch:tiny", filter_taps=16).eval()
    with torch.no_grad():
        model.filter_head.bias.copy_(torch.linspace(-1, 0.5, 16))
    audio = np.random.default_rng(0).standard_normal(40_000).astype(np.float32)
    whole = model(torch.from_numpy(audio)[None]).inverse[0].detach().numpy()
    chunked = helpers.predict_inverse(model, audio, chunk_seconds=0.3, context_seconds=0.01)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_chunked_inference_with_encoder_has_no_seams(tiny_model):
    """The bidirectional encoder hears each window whole, so chunks differ a little from one pass over
    the file; that difference must be spread evenly, not concentrated at the joins."""
    audio = np.random.default_rng(1).standard_normal(48_000).astype(np.float32)
    whole = helpers.predict_inverse(tiny_model, audio, chunk_seconds=10)
    chunked = helpers.predict_inverse(tiny_model, audio, chunk_seconds=1.0, context_seconds=1.0)
    assert chunked.shape == whole.shape == audio.shape
    error = (chunked - whole) ** 2
    near_joins = np.concatenate([error[join - 160 : join + 160] for join in (16_000, 32_000)])
    assert near_joins.mean() < 2 * error.mean()
    assert helpers.noise_reduction_db(whole, -chunked) > 15


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
