"""The model in an acoustic scene: trained through Ŝ and the loudspeaker, judged at the ear with the true plant."""

import numpy as np
import pytest
import torch
from conftest import predictable_noise, set_random_basis

import helpers
from wav2vec2_anc.acoustics import bandpass_scene, none_scene, sef
from wav2vec2_anc.pairs import split_heldout
from wav2vec2_anc.plant import Plant


def bandpass_plant(eta=None):
    """The band-pass scene as a system knows it imperfectly: Ŝ = 0.9·S plus noise, η̂ = 1.2·η.

    A model that used the true S or η instead of what was identified fails the tests that use this plant.
    """
    scene = bandpass_scene()
    estimate = 0.9 * scene.secondary + 1e-3 * np.random.default_rng(0).standard_normal(len(scene.secondary))
    return Plant(scene, eta, estimate, "linear" if eta is None else "sat:2", None if eta is None else 1.2 * eta)


def test_plant_settings_of_each_kind():
    assert helpers.plant_settings(None) == {} == helpers.plant_settings(Plant(none_scene()))
    plant = bandpass_plant()
    linear = helpers.plant_settings(plant)
    assert linear["safety_window_samples"] == 0 and linear["secondary_path"] == list(plant.secondary_estimate)
    assert "loudspeaker_eta" not in linear
    saturating = helpers.plant_settings(bandpass_plant(eta=0.05))
    assert saturating["loudspeaker_eta"] == pytest.approx(0.06)
    # A loudspeaker that saturates but that the level sweep found linear is not pre-distorted: the model knows
    # only what was measured.
    unmeasured = Plant(bandpass_scene(), 0.05, bandpass_scene().secondary, "sat:2", None)
    assert "loudspeaker_eta" not in helpers.plant_settings(unmeasured)


@pytest.mark.parametrize("eta", [None, 0.05])
def test_model_in_a_scene_is_causal(eta):
    """The perturbation test of the plain model, with the plant's settings (and the pre-distortion of a saturating one)."""
    latency = 16
    x = torch.from_numpy(predictable_noise(12_000))[None]
    model = helpers.build_model("scratch:tiny", filter_taps=32, latency_samples=latency, seed=0,
                                **helpers.plant_settings(bandpass_plant(eta))).eval()
    model.set_shared_filter(-helpers.fit_wiener_predictor(x[0].numpy(), latency, 32))
    set_random_basis(model, 0.02)
    y = model(x).inverse
    for n in (latency, 800, 5_000, 11_900):
        perturbed = x.clone()
        perturbed[:, n - latency + 1 :] += 0.1 * torch.randn(1, x.shape[1] - (n - latency + 1))
        y_perturbed = model(perturbed).inverse
        # The inverse's slope near its cap magnifies the float32 rounding of the FFT filters, which every sample
        # shares: still three orders below what the perturbation moves.
        assert (y_perturbed[:, : n + 1] - y[:, : n + 1]).abs().max() < (1e-6 if eta is None else 1e-5)
        assert (y_perturbed[:, n + 1 :] - y[:, n + 1 :]).abs().max() > 1e-3


def test_model_with_the_wiener_start_is_the_wiener_controller_at_the_ear():
    """Zero basis and the closed-form start: the model's drive is the controller's, so its NR at the ear is wiener's."""
    audio = predictable_noise(48_000, seed=3)
    train, heldout = split_heldout(audio, 0.3)
    clips = [helpers.Clip("ar1", train, heldout)]
    plant, wiener_filter = helpers.make_plant("bandpass", "linear", train, delay=16, taps=256)
    model = helpers.build_model("scratch:tiny", filter_taps=256, latency_samples=16, **helpers.plant_settings(plant))
    model.start_shared_filter("wiener", wiener_filter)
    noise, anti_noise = helpers.heldout_inverses(model, clips, wiener_filter, plant=plant)
    assert set(anti_noise) == {"wiener", "wiener_true_s", "fxnlms", "model", "model_no_encoder", "model_fxnlms"}
    np.testing.assert_allclose(anti_noise["model"], anti_noise["wiener"], atol=1e-6)
    # wiener is fitted with the identified Ŝ, what a real system deploys; wiener_true_s with S, a bound.
    from wav2vec2_anc.baselines import fit_wiener_controller
    from wav2vec2_anc.fxnlms import fxnlms_refined_drive

    np.testing.assert_allclose(wiener_filter, fit_wiener_controller(train, plant.identified_scene, 16, 256), rtol=1e-9)
    true_s = fit_wiener_controller(train, plant.scene, 16, 256)
    assert np.abs(true_s - wiener_filter).max() > 1e-4 * np.abs(true_s).max()
    np.testing.assert_allclose(anti_noise["wiener_true_s"],
                               plant.anti_noise_at_ear(helpers.controller_drive(audio, true_s, 16))[len(train):], atol=1e-9)
    # model_fxnlms: FxNLMS refining that same drive, online from the clip's first sample, mixed with FxNLMS at
    # the step tuned on the training audio.
    refined = fxnlms_refined_drive(audio, helpers.controller_drive(audio, wiener_filter, 16), plant.scene,
                                   plant.secondary_estimate, 16, 256, companion_step=plant.fxnlms_step)
    np.testing.assert_allclose(anti_noise["model_fxnlms"], plant.anti_noise_at_ear(refined)[len(train):], atol=1e-5)
    # ...and the noise at the ear is P∗x, not x.
    np.testing.assert_allclose(noise, plant.noise_at_ear(audio)[len(train):])
    assert helpers.noise_reduction_db(noise, anti_noise["wiener"]) > 10.0


def test_a_new_file_in_a_scene_is_also_refined_online_from_its_first_sample():
    """Step 10 in a scene: ``model_fxnlms`` joins the baselines, refining the model's own drive from the file's
    first sample. A silent (untrained) model alone cancels nothing, refined it cancels as much as FxNLMS; a model
    at the optimal controller is refined from that drive, so it cancels from the first second, before FxNLMS has."""
    audio = predictable_noise(48_000, seed=5)
    plant, wiener_filter = helpers.make_plant("bandpass", "linear", audio[:30_000], delay=16, taps=256)
    noise = plant.noise_at_ear(audio)
    model = helpers.build_model("scratch:tiny", filter_taps=256, latency_samples=16, **helpers.plant_settings(plant))

    def nr_db(start: str, part: slice) -> dict[str, float]:
        model.start_shared_filter(start, wiener_filter)
        anti_noise = plant.anti_noise_at_ear(helpers.predict_inverse(model, audio))
        methods = helpers.new_file_comparison(model, audio, anti_noise, wiener_filter, plant, chunk_seconds=1.0)
        assert list(methods) == ["model", "wiener", "fxnlms", "model_fxnlms"]  # no true-S bound: no training audio
        return {name: helpers.noise_reduction_db(noise[part], a[part]) for name, a in methods.items()}

    silent = nr_db("learned", slice(24_000, None))
    assert silent["model"] == 0.0
    assert silent["fxnlms"] > 10.0  # at its tuned step on broadband noise: 15.6 dB
    assert silent["model_fxnlms"] > silent["fxnlms"] - 0.5
    first_second = nr_db("wiener", slice(0, 16_000))
    assert first_second["model"] > 30.0 and first_second["fxnlms"] < first_second["model"] - 20  # 31.8 and 8.3 dB
    assert first_second["model_fxnlms"] > 30.0  # 35.1 dB: the refinement, still adapting, costs 1.1 dB there


def test_loss_goes_through_the_secondary_path_and_the_loudspeaker():
    """With labels −d, the loss is ‖Ŝ∗f̂(y) + d‖² / ‖d‖², computed here by hand with the identified Ŝ and η̂."""
    plant = bandpass_plant(eta=0.05)
    model = helpers.build_model("scratch:tiny", filter_taps=16, latency_samples=0, **helpers.plant_settings(plant))
    with torch.no_grad():
        model.filter_head.shared.copy_(torch.linspace(-0.5, 0.5, 16))
    x = torch.from_numpy(predictable_noise(8_000, seed=4))[None]
    d = torch.from_numpy(plant.noise_at_ear(x[0].numpy())).float()[None]
    out = model.train()(x, labels=-d[:, -4000:])
    drive = out.inverse.double()[0].detach().numpy()
    at_ear = np.convolve(sef(drive, plant.eta_estimate), plant.secondary_estimate)[: len(drive)]
    expected = np.sum((at_ear[-4000:] + d[0, -4000:].numpy()) ** 2) / np.sum(d[0, -4000:].numpy() ** 2)
    assert out.loss.item() == pytest.approx(expected, rel=1e-4)


def test_training_through_the_plant_learns_at_the_ear(tmp_path):
    audio = predictable_noise(64_000, seed=6)
    train, heldout = split_heldout(audio, 0.3)
    clips = [helpers.Clip("ar1", train, heldout)]
    plant, _ = helpers.make_plant("bandpass", "linear", train, delay=0, taps=256)
    model = helpers.build_model("scratch:tiny", filter_taps=256, **helpers.plant_settings(plant))
    model.start_shared_filter("learned")
    before = helpers.heldout_model_nr_db(model, clips, plant=plant)
    dataset = helpers.build_dataset(clips, 8000, 2000, model.training_warmup, plant.scene)
    settings = helpers.TrainSettings(output_dir=str(tmp_path), max_steps=80, batch_size=4, save_steps=1000)
    helpers.train(model, dataset, settings)
    after = helpers.heldout_model_nr_db(model, clips, plant=plant)
    assert before == pytest.approx(0.0, abs=1e-9)
    assert after > 6.0


def test_a_saturating_loudspeaker_plays_the_pre_distorted_drive_as_made():
    """Through the identified curve, the pre-distorted drive comes out as the filters made it, up to the curve's
    reach; sent as it is, the loudspeaker compresses its peaks. The model trains through that curve, so the filters
    see a linear loudspeaker wherever it can reach."""
    eta = 0.05
    model = helpers.build_model("scratch:tiny", filter_taps=32, **helpers.plant_settings(bandpass_plant(eta)))
    eta_estimate = 1.2 * eta  # bandpass_plant's level sweep found η 20 % high
    reach = eta_estimate * (np.pi / 2) ** 0.5  # the curve's largest output
    drive = torch.linspace(-0.95 * reach, 0.95 * reach, 601, dtype=torch.float64)
    played = sef(model.shape_drive(drive), eta_estimate)
    torch.testing.assert_close(played, drive, rtol=1e-9, atol=1e-12)
    # Beyond the curve's largest output η̂·√(π/2) it plays its (capped) top.
    beyond = sef(model.shape_drive(torch.tensor([2.0, -2.0], dtype=torch.float64)), eta_estimate)
    assert torch.allclose(beyond.abs(), torch.full((2,), reach, dtype=torch.float64), rtol=1e-5)
    assert (sef(drive, eta_estimate) - drive).abs().max() > 0.2 * eta  # what the pre-distortion undoes
    linear = helpers.build_model("scratch:tiny", filter_taps=32, **helpers.plant_settings(bandpass_plant()))
    assert linear.shape_drive(drive) is drive


def test_validation_split_keeps_the_heldout_tails_out():
    audio = np.arange(1000, dtype=np.float32)
    clip = helpers.Clip("a", train=audio[:700], heldout=audio[700:])
    (split,) = helpers.validation_split([clip], 0.2)
    assert split.name == "a"
    np.testing.assert_array_equal(split.train, audio[:560])
    np.testing.assert_array_equal(split.heldout, audio[560:700])


def test_gate_switches_off_a_correction_that_hurts():
    """A large random basis only adds noise on validation audio: the gate turns it off, and the model is its shared filter."""
    audio = predictable_noise(48_000, seed=8)
    train, heldout = split_heldout(audio, 0.3)
    plant, wiener_filter = helpers.make_plant("bandpass", "linear", train, delay=16, taps=256)
    model = helpers.build_model("scratch:tiny", filter_taps=256, latency_samples=16, **helpers.plant_settings(plant))
    model.start_shared_filter("wiener", wiener_filter)
    set_random_basis(model, 0.05)
    validation = helpers.validation_split([helpers.Clip("ar1", train, heldout)])
    report = helpers.gate_encoder_correction(model, validation, plant)
    assert report["validation_nr_db"] < report["validation_nr_db_no_encoder"]
    assert report["encoder_correction"] is False and model.encoder_correction is False
    # The verdict is the model's state, saved with its weights; its config says what it is, not what a run decided.
    assert not hasattr(model.config, "encoder_correction")
    x = torch.from_numpy(audio)[None]
    assert torch.equal(model(x).inverse, model(x, use_encoder=False).inverse)
    # With the basis at zero the two are equal, and a correction that does not help is not kept either.
    model.set_encoder_correction(True)
    model.filter_head.basis.data.zero_()
    assert helpers.gate_encoder_correction(model, validation, plant)["encoder_correction"] is False


def reference_closed_loop(x, bank, secondary, estimate, block, window, sharpness):
    """The loop of a bank steered by its errors at the ear, block by block (D = 0, P = δ): what the model must do.

    Before block b only the error microphone's samples before ``b·block`` are known; each filter's error is
    what it would have left there (``d̂ + Ŝ∗hⱼ∗x``), its weight ∝ (relative error power + floor)^−sharpness,
    the weights glide over the block, and then the microphone hears the block: ``d̂ = x + (S − Ŝ)∗y``.
    """
    from wav2vec2_anc.signal_path import BANK_ERROR_FLOOR

    n = len(x)
    drives = np.stack([np.convolve(x, h)[:n] for h in bank])
    virtual = np.stack([np.convolve(drive, estimate)[:n] for drive in drives])
    pad = np.zeros(window)
    drive, heard, before = np.zeros(n), np.zeros(n), None
    for start in range(0, n, block):
        past = np.concatenate([pad, heard[:start]])[-window:]
        errors = np.concatenate([np.zeros((len(bank), window)), virtual[:, :start]], axis=1)[:, -window:] + past
        power = np.mean(past**2)
        relative = np.mean(errors**2, axis=1) / power if power > 0 else np.zeros(len(bank))
        logits = -sharpness * np.log(relative + BANK_ERROR_FLOOR)
        weights = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        before = weights if before is None else before
        stop = min(start + block, n)
        ramp = np.arange(1, stop - start + 1) / block
        drive[start:stop] = ((before[:, None] + (weights - before)[:, None] * ramp) * drives[:, start:stop]).sum(0)
        before = weights
        heard[start:stop] = x[start:stop] + (np.convolve(drive[:stop], secondary)[:stop]
                                             - np.convolve(drive[:stop], estimate)[:stop])[start:stop]
    return drive


def test_a_bank_steered_by_its_errors_at_the_ear_runs_in_the_closed_loop():
    from test_model import tone_predictor

    from wav2vec2_anc.acoustics import Scene
    from wav2vec2_anc.inference import closed_loop_drive

    # The anti-noise reaches the ear one sample late (S), and Ŝ is 10 % off: at D = 0 each tone's controller is
    # its one-step predictor, and what the microphone hears of the noise carries Ŝ's error on the model's own output.
    secondary, estimate = np.array([0.0, 1.0]), np.array([0.0, 0.9, 0.05])
    plant = Plant(Scene("hand", np.array([1.0]), secondary), None, estimate, "linear")
    block, window, taps, switch = 160, 80, 8, 8000
    bank = {"1 kHz": tone_predictor(1000, taps), "3 kHz": tone_predictor(3000, taps)}
    model = helpers.build_model("scratch:tiny", filter_taps=taps, adaptive_rank=2, filter_bank=True, block_samples=block,
                                context_samples=400, safety_window_samples=0, bank_error_window_samples=window,
                                secondary_path=list(estimate), seed=0).eval()
    model.start_shared_filter("wiener", np.zeros(taps))
    model.start_filter_bank(bank)  # the encoder's logits at zero: the errors alone steer
    assert model.needs_ear_noise
    n = np.arange(16_000)
    x = np.where(n < switch, 0.3 * np.sin(2 * np.pi * 1000 * n / 16_000), 0.3 * np.sin(2 * np.pi * 3000 * n / 16_000 + 1.0))
    x = x.astype(np.float32)
    drive = closed_loop_drive(model, x, plant)
    expected = reference_closed_loop(x.astype(np.float64), list(bank.values()), secondary, estimate, block, window, 2.0)
    np.testing.assert_allclose(drive, expected, atol=2e-5)
    at_ear = plant.anti_noise_at_ear(drive)
    for steady in (slice(3 * block, switch), slice(switch + 2 * block, None)):
        assert helpers.noise_reduction_db(x[steady], at_ear[steady]) > 60
    # Streamed, fed what the microphone heard, it plays the same; without the microphone it refuses.
    heard = x + at_ear - np.convolve(drive, estimate)[: len(x)]
    streamed, _ = helpers.stream_inverse(model, x, block_samples=300, ear_noise=heard)
    np.testing.assert_allclose(streamed, drive, atol=1e-6)
    with pytest.raises(ValueError, match="ear_noise"):
        helpers.predict_inverse(model, x)
    # Causal in what it hears: block b reads the microphone before b·block (D = 0) only, so a change at the
    # first sample of block 32 moves the drive from block 33 on, and one just before it from block 32 on.
    for change, moves in ((32 * block, 33 * block), (32 * block - 1, 32 * block)):
        changed = heard.copy()
        changed[change:] += 0.1
        moved = helpers.predict_inverse(model, x, ear_noise=changed)
        np.testing.assert_allclose(moved[:moves], drive[:moves], rtol=0, atol=1e-6)
        assert np.abs(moved[moves:] - drive[moves:]).max() > 1e-3
