"""Fine-tuning with transformers.Trainer: it learns, checkpoints and resumes."""

import numpy as np

import helpers


def small_dataset(tone):
    clip = helpers.Clip("tone", train=tone, heldout=tone[:100])
    return helpers.build_dataset([clip], segment_samples=4000, hop_samples=2000)


def test_training_reduces_heldout_error(tmp_path, tone):
    model = helpers.build_model("scratch:tiny", filter_taps=16)
    before = helpers.noise_reduction_db(tone, helpers.predict_inverse(model, tone))
    settings = helpers.TrainSettings(output_dir=str(tmp_path), max_steps=60, batch_size=4, save_steps=1000)
    log = helpers.train(model, small_dataset(tone), settings)
    after = helpers.noise_reduction_db(tone, helpers.predict_inverse(model, tone))
    steps, losses = helpers.loss_curve(log)
    assert before == 0.0  # the head starts at zero: silence, no reduction
    assert after > 10.0
    assert len(steps) > 0 and losses[-1] < losses[0]


def test_training_resumes_from_checkpoint(tmp_path, tone):
    dataset = small_dataset(tone)
    settings = helpers.TrainSettings(output_dir=str(tmp_path), max_steps=4, batch_size=2, save_steps=2, logging_steps=1)
    helpers.train(helpers.build_model("scratch:tiny"), dataset, settings)
    assert (tmp_path / "checkpoints" / "checkpoint-4").is_dir()
    settings.max_steps = 6
    log = helpers.train(helpers.build_model("scratch:tiny"), dataset, settings)
    logged_steps = [row["step"] for row in log if "loss" in row]
    # The second run starts at step 5: steps 1-4 come from the checkpoint's state, not a fresh run.
    assert logged_steps[-2:] == [5, 6]
    assert (tmp_path / "checkpoints" / "checkpoint-6").is_dir()
    assert np.isfinite([row["loss"] for row in log if "loss" in row]).all()
