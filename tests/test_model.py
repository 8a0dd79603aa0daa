"""The model's contract: length, alignment, level, loss, freezing and save/load."""

import itertools
import json

import numpy as np
import pytest
import torch

import helpers
from wav2vec2_anc.config import SCRATCH_CONFIGS
from wav2vec2_anc.signal_path import block_ends, causal_fir, past_windows, ramp_blocks


@pytest.mark.parametrize("samples", [100, 325, 1000, 16_001])
def test_output_has_exactly_the_input_length(tiny_model, samples):
    x = torch.randn(3, samples)
    out = tiny_model(x)
    assert out.inverse.shape == (3, samples)
    assert out.block_filters.shape == (3, -(-samples // tiny_model.block), tiny_model.filter_taps)


def test_output_is_sample_aligned():
    """With the shared filter a unit impulse at tap k, the output is the input delayed by exactly k samples."""
    model = helpers.build_model("scratch:tiny", filter_taps=8, safety_window_samples=0).eval()
    x = torch.randn(1, 2000)
    for k in (0, 3):
        with torch.no_grad():
            model.filter_head.shared.zero_()
            model.filter_head.shared[k] = -1.0
        y = model(x).inverse
        expected = -torch.cat([torch.zeros(1, k), x[:, : 2000 - k]], dim=1)
        torch.testing.assert_close(y, expected)


def test_causal_fir_matches_direct_convolution():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 50))
    kernels = rng.standard_normal((3, 4))
    expected = [
        [[sum(kernels[c, k] * x[b, n - 2 - k] for k in range(4) if n - 2 - k >= 0) for n in range(50)] for c in range(3)]
        for b in range(2)
    ]
    y = causal_fir(torch.tensor(x), torch.tensor(kernels), delay=2)
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-5)


def test_block_filter_is_shared_plus_steered_basis(tiny_model):
    """The filter the head reports equals the impulse response the model actually applies in a block."""
    tiny_model.config.safety_window_samples = 0
    x = torch.randn(1, 4000)
    out = tiny_model(x)
    block = 3  # samples 2400..3199; its last sample has glided fully to this block's filter
    n = (block + 1) * tiny_model.block - 1
    taps = out.block_filters[0, block]
    expected = sum(taps[k] * x[0, n - k] for k in range(tiny_model.filter_taps))
    torch.testing.assert_close(out.inverse[0, n], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("gain", [2.0, 1e-3, 50.0])
def test_output_scales_with_input_level(tiny_model, gain):
    x = torch.randn(2, 4000) * 0.1
    y = tiny_model(x).inverse
    torch.testing.assert_close(tiny_model(gain * x).inverse, gain * y, rtol=1e-4, atol=1e-6 * gain)


def test_untrained_head_outputs_silence():
    model = helpers.build_model("scratch:tiny").eval()
    assert torch.count_nonzero(model(torch.randn(1, 1000)).inverse) == 0


def test_loss_is_normalised_mse_and_backpropagates(tiny_model):
    tiny_model.train()
    x = torch.randn(2, 3000)
    out = tiny_model(x, labels=-x)
    expected = ((out.inverse + x) ** 2).sum(-1) / (x**2).sum(-1)
    torch.testing.assert_close(out.loss, expected.mean())
    out.loss.backward()
    assert tiny_model.filter_head.basis.grad.abs().sum() > 0
    assert tiny_model.filter_head.projection.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in tiny_model.parameters() if p.grad is not None)


def test_perfect_inverse_has_zero_loss():
    model = helpers.build_model("scratch:tiny", filter_taps=4)
    with torch.no_grad():
        model.filter_head.shared[0] = -1.0
    x = torch.randn(2, 1000)
    assert model(x, labels=-x).loss.item() == pytest.approx(0.0, abs=1e-12)


def test_freeze_feature_encoder(tiny_model):
    tiny_model.freeze_feature_encoder()
    assert not any(p.requires_grad for p in tiny_model.wav2vec2.feature_extractor.parameters())
    assert all(p.requires_grad for p in tiny_model.filter_head.parameters())


def test_without_encoder_only_the_shared_filter_acts(tiny_model):
    tiny_model.config.safety_window_samples = 0
    x = torch.randn(1, 2000)
    shared = tiny_model.filter_head.shared.detach().numpy().astype(np.float64)
    expected = np.convolve(x[0].numpy().astype(np.float64), shared)[:2000]
    expected = torch.tensor(expected, dtype=torch.float32)[None]
    torch.testing.assert_close(tiny_model(x, use_encoder=False).inverse, expected)


@pytest.mark.parametrize("delay", [0, 3])
def test_causal_fir_is_delayed_convolution(delay):
    rng = np.random.default_rng(5)
    x, kernels = rng.standard_normal((2, 300)), rng.standard_normal((3, 7))
    out = causal_fir(torch.from_numpy(x), torch.from_numpy(kernels), delay).numpy()
    for b in range(2):
        for c in range(3):
            expected = np.concatenate([np.zeros(delay), np.convolve(x[b], kernels[c])])[:300]
            np.testing.assert_allclose(out[b, c], expected, atol=1e-12)


def test_negation_through_causal_fir_is_bit_exact_on_quiet_passages():
    """A loud passage, then one 10⁹ times quieter: FFT rounding of the loud one must not reach it."""
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.standard_normal(4000), 1e-9 * rng.standard_normal(4000)]).astype(np.float32)
    kernel = torch.zeros(1, 512, dtype=torch.float64)
    kernel[0, 0] = -1.0
    out = causal_fir(torch.from_numpy(x)[None], kernel)[0, 0].float().numpy()
    np.testing.assert_array_equal(out, -x)


def test_save_and_load_give_identical_output(tiny_model, tmp_path):
    x = torch.randn(1, 5000)
    tiny_model.save_pretrained(tmp_path / "model")
    loaded = helpers.build_model(str(tmp_path / "model")).eval()
    assert (loaded.filter_taps, loaded.latency, loaded.block, loaded.context) == (
        tiny_model.filter_taps, tiny_model.latency, tiny_model.block, tiny_model.context)
    torch.testing.assert_close(loaded(x).inverse, tiny_model(x).inverse, rtol=0, atol=0)


def test_encoder_only_checkpoint_gets_a_fresh_head(tmp_path):
    """Loading a plain wav2vec2 checkpoint (as from the hub) keeps its encoder and starts the head at zero."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(**SCRATCH_CONFIGS["tiny"])
    encoder = Wav2Vec2Model(config)
    encoder.save_pretrained(tmp_path / "encoder")
    model = helpers.build_model(str(tmp_path / "encoder"), filter_taps=12, latency_samples=16)
    assert model.filter_taps == 12 and model.latency == 16
    assert torch.count_nonzero(model.filter_head.basis) == 0 and torch.count_nonzero(model.filter_head.shared) == 0
    assert model.config.mask_time_prob == 0.0 and model.config.layerdrop == 0.0
    torch.testing.assert_close(
        model.wav2vec2.feature_projection.projection.weight, encoder.feature_projection.projection.weight
    )


def test_unknown_settings_are_rejected():
    with pytest.raises(ValueError, match="scratch:huge"):
        helpers.build_model("scratch:huge")
    with pytest.raises(ValueError, match="filter_tap"):
        helpers.build_model("scratch:tiny", filter_tap=3)


def test_latency_in_samples():
    assert [helpers.latency_samples(ms) for ms in (0, 1, 5, 20, 0.5)] == [0, 16, 80, 320, 8]


def test_block_ends_put_each_window_latency_before_its_block():
    x = torch.arange(1, 21, dtype=torch.float32)[None]  # x[i] = i + 1, so 0 marks padding
    windows = past_windows(x, block_ends(20, block=5, delay=2), 4)
    assert windows.shape == (1, 4, 4)
    # block b starts at 5b; its window is x[5b-2-3 .. 5b-2]
    assert windows[0, 0].tolist() == [0, 0, 0, 0]
    assert windows[0, 1].tolist() == [1, 2, 3, 4]  # x[0..3]
    assert windows[0, 3].tolist() == [11, 12, 13, 14]  # x[10..13]


def test_values_glide_from_block_to_block():
    per_block = torch.tensor([[[0.0], [4.0]]])  # two blocks, one channel
    per_sample = ramp_blocks(per_block, block=4, samples=7)
    assert per_sample[0, :, 0].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0]


def test_wiener_start_predicts_like_the_closed_form(tone):
    model = helpers.build_model("scratch:tiny", filter_taps=32, latency_samples=8, safety_window_samples=0).eval()
    model.start_shared_filter("wiener", -helpers.fit_wiener_predictor(tone[:20_000], 8, 32))
    coefficients = helpers.fit_wiener_predictor(tone[:20_000], delay=8, order=32)
    expected = helpers.wiener_inverse(tone, coefficients, delay=8)
    np.testing.assert_allclose(helpers.predict_inverse(model, tone, use_encoder=False), expected, atol=1e-4)


@pytest.mark.parametrize("weights_format", ["safetensors", "bin"])
def test_loads_a_ctc_checkpoint_encoder_bit_identically(tmp_path, weights_format):
    """facebook/wav2vec2-base-960h's layout: lm_head unused, weight_g/weight_v, the head started as documented."""
    from conftest import write_ctc_checkpoint

    written = write_ctc_checkpoint(tmp_path / "ctc", weights_format)
    assert "lm_head.weight" in written and "wav2vec2.encoder.pos_conv_embed.conv.weight_g" in written
    model = helpers.build_model(str(tmp_path / "ctc"), filter_taps=64)
    loaded = model.state_dict()
    renames = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
    encoder = {name: tensor for name, tensor in written.items() if name.startswith("wav2vec2.")}
    # SpecAugment is off, so its learned mask embedding is the one encoder tensor left unused.
    assert set(encoder) - {n.replace("parametrizations.weight.original0", "weight_g").replace(
        "parametrizations.weight.original1", "weight_v") for n in loaded} == {"wav2vec2.masked_spec_embed"}
    del encoder["wav2vec2.masked_spec_embed"]
    for name, tensor in encoder.items():
        for old, new in renames.items():
            name = name.replace(old, new)
        assert loaded[name].dtype == torch.float32
        assert torch.equal(loaded[name], tensor), name
    head = model.filter_head
    assert torch.equal(head.shared, torch.zeros(64)) and torch.equal(head.basis, torch.zeros(64, 8))
    # projection ~ N(0, 1/hidden): non-zero so the basis gets a gradient from the first step.
    assert head.projection.std().item() == pytest.approx(32**-0.5, rel=0.3)
    assert not model.config.apply_spec_augment and model.config.layerdrop == 0.0
    # The head's settings live in a config of the model's own, the gate's verdict in its state: open from the hub.
    assert isinstance(model.config, helpers.NoiseCancellationConfig) and model.config.filter_taps == 64
    assert model.encoder_correction is True


def test_the_config_is_the_models_own_and_the_gates_verdict_is_saved_with_the_weights(tmp_path):
    from conftest import set_random_basis

    model = helpers.build_model("scratch:tiny", filter_taps=32, latency_samples=16)
    set_random_basis(model, 0.05)  # a correction that moves the output, so switching it off shows
    x = torch.randn(1, 8000)
    assert not torch.equal(model.eval()(x).inverse, model(x, use_encoder=False).inverse)
    model.set_encoder_correction(False)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "wav2vec2-noise-cancellation" and saved["latency_samples"] == 16
    assert "encoder_correction" not in saved
    loaded = helpers.build_model(str(tmp_path))
    assert loaded.encoder_correction is False and loaded.latency == 16
    assert torch.equal(loaded.eval()(x).inverse, loaded(x, use_encoder=False).inverse)
    # A model saved before the verdict was its state kept it in its config, with no encoder_gate in its weights.
    from safetensors.torch import load_file, save_file

    weights = load_file(tmp_path / "model.safetensors")
    del weights["encoder_gate"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "config.json").write_text(json.dumps({**saved, "encoder_correction": False}))
    assert helpers.build_model(str(tmp_path)).encoder_correction is False


def test_filter_bank_start_mixes_the_bank_and_each_one_hot_weight_is_its_filter(tone, tmp_path):
    rng = np.random.default_rng(3)
    shared, bank = rng.standard_normal(16), rng.standard_normal((3, 16))
    model = helpers.build_model("scratch:tiny", filter_taps=16, safety_window_samples=0,
                                **helpers.bank_settings(dict(enumerate(bank)))).eval()
    model.start_shared_filter("wiener", shared)
    model.start_filter_bank(bank)
    head = model.filter_head
    for j in range(3):
        np.testing.assert_allclose((head.shared + torch.eye(3)[j] @ head.basis.T).detach().numpy(), bank[j], atol=1e-6)
    # The projection starts at zero: equal softmax weights, the bank's mean filter, whatever the input.
    np.testing.assert_allclose(helpers.predict_inverse(model, tone), helpers.controller_drive(tone, bank.mean(0), 0), atol=1e-4)
    np.testing.assert_allclose(helpers.predict_inverse(model, tone, use_encoder=False),
                               helpers.controller_drive(tone, shared, 0), atol=1e-4)
    with torch.no_grad():
        head.projection.normal_()
    weights = model.block_gains(torch.randn(1, 5 * model.block), block_ends(5 * model.block, model.block, model.latency))
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 5))
    assert (weights > 0).all()
    model.save_pretrained(tmp_path)
    loaded = helpers.build_model(str(tmp_path)).eval()
    assert loaded.filter_head.mixing and loaded.config.filter_bank
    np.testing.assert_array_equal(helpers.predict_inverse(loaded, tone), helpers.predict_inverse(model, tone))
    with pytest.raises(ValueError, match="adaptive_rank 3"):
        model.start_filter_bank(bank[:2])
    with pytest.raises(ValueError, match="not built for a filter bank"):  # its softmax is part of what it is
        helpers.build_model("scratch:tiny", filter_taps=16, adaptive_rank=3).start_filter_bank(bank)


def test_bank_error_logits_are_each_filters_relative_error_over_the_samples_before_each_end():
    from wav2vec2_anc.signal_path import BANK_ERROR_FLOOR, bank_error_logits

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 300))  # (batch, samples)
    delay, length, taps = 3, 20, 8
    ends = torch.tensor([10, 120, 250, 300])  # the first judges 10 samples after 10 of the zeros before the start
    filters = np.stack([np.zeros(taps), rng.standard_normal(taps)])
    logits = bank_error_logits(torch.from_numpy(x), torch.from_numpy(filters), delay, length, ends).numpy()
    assert logits.shape == (2, 4, 2)
    padded = np.concatenate([np.zeros((2, 40)), x], axis=1)  # padded[i + 40] = x[i]
    for b, (w, end) in itertools.product(range(2), enumerate(ends.tolist())):
        newest = padded[b, 40 + end - length : 40 + end]
        for j, taps_j in enumerate(filters):
            anti = [sum(taps_j[k] * padded[b, 40 + m - delay - k] for k in range(taps)) for m in range(end - length, end)]
            expected = -np.log(np.mean((newest + np.array(anti)) ** 2) / np.mean(newest**2) + BANK_ERROR_FLOOR)
            assert logits[b, w, j] == pytest.approx(expected, rel=1e-9)
    # The silent filter leaves all of x (relative error 1); at D = 0, negation leaves nothing (the floor).
    np.testing.assert_allclose(logits[..., 0], -np.log(1 + BANK_ERROR_FLOOR))
    negation = bank_error_logits(torch.from_numpy(x), torch.tensor([[-1.0] + [0.0] * 7], dtype=torch.float64), 0,
                                 length, ends)
    np.testing.assert_allclose(negation.numpy(), -np.log(BANK_ERROR_FLOOR))
    silent = bank_error_logits(torch.zeros(1, 120, dtype=torch.float64), torch.from_numpy(filters), delay, length,
                               torch.tensor([120]))
    assert silent[0, 0, 0] == silent[0, 0, 1]
    # One end alone in a stream's buffer that holds the filters' reach (30 samples): as from the whole signal.
    alone = bank_error_logits(torch.from_numpy(x[:, 200:]), torch.from_numpy(filters), delay, length,
                              torch.tensor([50]))
    np.testing.assert_allclose(alone.numpy()[:, 0], logits[:, 2], rtol=1e-9)
    # In a scene each error is at the ear: the noise there plus the filter's output (through Ŝ, folded into it).
    ear = rng.standard_normal((2, 300))
    at_ear = bank_error_logits(torch.from_numpy(x), torch.from_numpy(filters), delay, length, ends,
                               torch.from_numpy(ear)).numpy()
    for b, (w, end) in itertools.product(range(2), enumerate(ends.tolist()[1:], 1)):
        newest = ear[b, end - length : end]
        anti = np.convolve(x[b], filters[1])[end - length - delay : end - delay]
        expected = -np.log(np.mean((newest + anti) ** 2) / np.mean(newest**2) + BANK_ERROR_FLOOR)
        assert at_ear[b, w, 1] == pytest.approx(expected, rel=1e-9)
        assert at_ear[b, w, 0] == pytest.approx(-np.log(1 + BANK_ERROR_FLOOR), rel=1e-12)


def test_bank_error_logits_stay_finite_where_the_ear_hears_silence_in_float32():
    """The error microphone silent (or all but) while the reference is loud: no evidence, equal finite logits, a
    mix that is not NaN. Divided by float32's smallest normal, a loud error would overflow to −∞ in every logit."""
    from wav2vec2_anc.signal_path import BANK_ERROR_FLOOR, bank_error_logits

    x = torch.from_numpy(np.random.default_rng(5).standard_normal((1, 400))).float() * 100
    filters = torch.tensor([[0.5] + [0.0] * 7, [-1.0] + [0.0] * 7])
    for heard in (torch.zeros(1, 400), torch.full((1, 400), 1e-20)):  # 1e-20² is a float32 denormal, not 0
        logits = bank_error_logits(x, filters, 2, 40, torch.tensor([200, 400]), heard)
        assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
        assert torch.isfinite(torch.softmax(logits, -1)).all()
    silent = bank_error_logits(x, filters, 2, 40, torch.tensor([200, 400]), torch.zeros(1, 400))
    torch.testing.assert_close(silent, torch.full_like(silent, -float(np.log(BANK_ERROR_FLOOR))))


def tone_predictor(hz: float, taps: int) -> np.ndarray:
    """The anti-noise of a pure tone at D = 1, exactly: x[n] = 2·cos ω·x[n−1] − x[n−2], so −x[n] = −2·cos ω·x[n−1] + x[n−2]."""
    return np.array([-2 * np.cos(2 * np.pi * hz / helpers.SAMPLE_RATE), 1.0] + [0.0] * (taps - 2))


def test_bank_errors_steer_the_mix_to_the_filter_that_cancels_one_block_after_a_switch(tmp_path):
    from wav2vec2_anc.switching import bank_error_drive

    delay, block, window, taps, switch = 1, 160, 80, 8, 8000
    bank = {"1 kHz": tone_predictor(1000, taps), "3 kHz": tone_predictor(3000, taps)}
    n = np.arange(16_000)
    x = np.where(n < switch, 0.3 * np.sin(2 * np.pi * 1000 * n / 16_000), 0.3 * np.sin(2 * np.pi * 3000 * n / 16_000 + 1.0))
    x = x.astype(np.float32)
    models = {}
    for errors in (0, window):
        model = helpers.build_model("scratch:tiny", filter_taps=taps, adaptive_rank=2, filter_bank=True, latency_samples=delay,
                                    block_samples=block, context_samples=400, safety_window_samples=0,
                                    bank_error_window_samples=errors, seed=0).eval()
        model.start_shared_filter("wiener", np.zeros(taps))
        model.start_filter_bank(bank)  # the projection at zero: the encoder alone gives equal weights
        models[errors] = model
    drive = helpers.predict_inverse(models[window], x)
    # With a silent encoder the model is the bank mixed by its own errors, the switching baseline.
    np.testing.assert_allclose(drive, bank_error_drive(x.astype(np.float64), bank, delay, block, window), atol=1e-5)
    # Block 50 (from the switch) still judges the 1-kHz past; block 51 hears 80 samples of 3 kHz and glides
    # to its filter, which alone plays from block 52 on. The 1 kHz settles after the first blocks' silent windows.
    for steady in (slice(3 * block, switch), slice(switch + 2 * block, None)):
        assert helpers.noise_reduction_db(x[steady], drive[steady]) > 60
        equal_mix = helpers.predict_inverse(models[0], x)
        assert helpers.noise_reduction_db(x[steady], equal_mix[steady]) < 10
    streamed, _ = helpers.stream_inverse(models[window], x, block_samples=300)  # blocks that straddle the model's
    np.testing.assert_allclose(streamed, drive, atol=1e-6)
    # Causal at D: a change at sample 5000 reaches the drive from 5001 on.
    changed = x.copy()
    changed[5000:] += 0.1
    moved = helpers.predict_inverse(models[window], changed)
    np.testing.assert_allclose(moved[:5001], drive[:5001], rtol=0, atol=1e-6)  # float32 FFT rounding only
    assert np.abs(moved[5001:] - drive[5001:]).max() > 1e-3
    # The errors' weight is learned, and saved with the model.
    with torch.no_grad():
        models[window].filter_head.error_sharpness.fill_(3.0)
    models[window].save_pretrained(tmp_path)
    loaded = helpers.build_model(str(tmp_path)).eval()
    assert loaded.filter_head.error_sharpness.item() == 3.0
    np.testing.assert_array_equal(helpers.predict_inverse(loaded, x), helpers.predict_inverse(models[window], x))


def test_a_bank_error_window_the_model_cannot_judge_is_refused():
    with pytest.raises(ValueError, match="≥ 0"):
        helpers.build_model("scratch:tiny", bank_error_window_samples=-1)
    # 60 judged samples + D = 16 + 511 earlier taps: 587.
    with pytest.raises(ValueError, match="context_samples ≥ 587"):
        helpers.build_model("scratch:tiny", latency_samples=16, context_samples=500, bank_error_window_samples=60)
    # In a scene the filters reach the ear through Ŝ (3 taps here, 2 more of past), and the errors end a sample early.
    with pytest.raises(ValueError, match="context_samples ≥ 590"):
        helpers.build_model("scratch:tiny", latency_samples=16, context_samples=589, bank_error_window_samples=60,
                            secondary_path=[0.0, 1.0, 0.5])
    helpers.build_model("scratch:tiny", latency_samples=16, context_samples=590, bank_error_window_samples=60,
                        secondary_path=[0.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="linear loudspeaker"):
        helpers.build_model("scratch:tiny", secondary_path=[0.0, 1.0], loudspeaker_eta=0.5, bank_error_window_samples=80)


def test_bank_settings_judge_the_banks_errors_except_through_a_saturating_loudspeaker():
    from types import SimpleNamespace

    bank = {"a": np.zeros(4), "b": np.zeros(4)}
    assert helpers.bank_settings(bank, 10.0) == {"adaptive_rank": 2, "filter_bank": True, "bank_error_window_samples": 160}
    # What decides is the loudspeaker the system identified, not the true one it cannot know.
    assert helpers.bank_settings(bank, 10.0, SimpleNamespace(eta=0.3, eta_estimate=None))["bank_error_window_samples"] == 160
    assert helpers.bank_settings(bank, 10.0, SimpleNamespace(eta=None, eta_estimate=0.3)) == {"adaptive_rank": 2,
                                                                                               "filter_bank": True}
    assert helpers.bank_settings(bank) == {"adaptive_rank": 2, "filter_bank": True}
    assert helpers.bank_settings(None, 10.0) == {}
