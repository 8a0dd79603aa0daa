"""Fine-tuning with transformers.Trainer: it learns, checkpoints, resumes only on the same audio and settings."""

import numpy as np
import pytest
import torch

import helpers
from wav2vec2_anc import training
from wav2vec2_anc.pairs import split_heldout
from wav2vec2_anc.training import loss_curve


def tone_clip(tone, name="tone"):
    train, heldout = split_heldout(tone, 0.3)
    return helpers.Clip(name, train=train, heldout=heldout)


def small_dataset(clip):
    return helpers.build_dataset([clip], segment_samples=4000, hop_samples=2000)


def test_training_reduces_heldout_error(tmp_path, tone):
    clip = tone_clip(tone)
    model = helpers.build_model("scratch:tiny", filter_taps=16)
    before = helpers.heldout_model_nr_db(model, [clip])
    settings = helpers.TrainSettings(output_dir=str(tmp_path), max_steps=60, batch_size=4, save_steps=1000)
    log = helpers.train(model, small_dataset(clip), settings)
    after = helpers.heldout_model_nr_db(model, [clip])
    steps, losses = loss_curve(log)
    assert before == 0.0  # the head starts at zero: silence, no reduction
    assert after > 10.0  # on the 0.6 s the model never trained on
    assert len(steps) > 0 and losses[-1] < losses[0]
    assert helpers.loss_history(log) == [[int(s), float(v)] for s, v in zip(steps, losses)]


def test_training_resumes_from_checkpoint(tmp_path, tone):
    clip = tone_clip(tone)
    dataset = small_dataset(clip)
    settings = helpers.TrainSettings(output_dir=str(tmp_path), max_steps=4, batch_size=2, save_steps=2, logging_steps=1)

    def fingerprinted_run():
        model = helpers.build_model("scratch:tiny")
        fingerprint = helpers.run_fingerprint([clip], model, settings, segment_samples=4000)
        return helpers.train(model, dataset, settings, fingerprint), fingerprint

    _, fingerprint = fingerprinted_run()
    run_dir = tmp_path / "checkpoints" / f"run-{training.fingerprint_id(fingerprint)}"
    assert (run_dir / "checkpoint-4").is_dir() and (run_dir / "fingerprint.json").is_file()
    settings.max_steps = 6  # more steps are not a new run
    log, _ = fingerprinted_run()
    logged_steps = [row["step"] for row in log if "loss" in row]
    # The second run starts at step 5: steps 1-4 come from the checkpoint's state, not a fresh run.
    assert logged_steps[-2:] == [5, 6]
    assert (run_dir / "checkpoint-6").is_dir()
    assert np.isfinite([row["loss"] for row in log if "loss" in row]).all()


def test_other_audio_starts_fresh(tmp_path, tone):
    """Run, change the audio, run again: the second run trains from step 1 instead of resuming the first."""
    settings = helpers.TrainSettings(output_dir=str(tmp_path), max_steps=2, batch_size=2, save_steps=2, logging_steps=1)
    logs = []
    for clip in (tone_clip(tone), tone_clip(0.5 * tone[::-1].copy(), name="other")):
        model = helpers.build_model("scratch:tiny")
        fingerprint = helpers.run_fingerprint([clip], model, settings)
        logs.append(helpers.train(model, small_dataset(clip), settings, fingerprint))
    assert [[row["step"] for row in log if "loss" in row] for log in logs] == [[1, 2], [1, 2]]
    assert len(list((tmp_path / "checkpoints").glob("run-*/checkpoint-2"))) == 2


def test_fingerprint_names_files_and_follows_settings_not_steps(tone):
    clip = tone_clip(tone, name="a.wav")
    model = helpers.build_model("scratch:tiny")
    settings = helpers.TrainSettings(output_dir="x", max_steps=10)
    fingerprint = helpers.run_fingerprint([clip], model, settings)
    assert [f["file"] for f in fingerprint["files"]] == ["a.wav"]
    same = helpers.run_fingerprint([clip], model, helpers.TrainSettings(output_dir="y", max_steps=99, save_steps=7))
    assert same == fingerprint
    assert helpers.run_fingerprint([clip], model, helpers.TrainSettings(output_dir="x", learning_rate=1e-3)) != fingerprint
    model.start_shared_filter("wiener", np.eye(model.filter_taps)[0])
    assert helpers.run_fingerprint([clip], model, settings) != fingerprint


@pytest.mark.parametrize(
    ("capability", "expected"),
    [(None, None), ((7, 5), "fp16"), ((7, 0), "fp16"), ((6, 1), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")],
)
def test_mixed_precision_is_bf16_only_where_native(capability, expected):
    # 7.5 is Colab's T4 (emulated bf16), 8.0 an A100, 9.0 an H100.
    assert helpers.mixed_precision(capability) == expected


def test_cpu_note_only_for_a_base_encoder_without_gpu():
    assert helpers.cpu_runtime_note("scratch:tiny", 300, 8, cuda=False) is None
    assert helpers.cpu_runtime_note("facebook/wav2vec2-base-960h", 300, 8, cuda=True) is None
    note = helpers.cpu_runtime_note("facebook/wav2vec2-base-960h", 300, 8, cuda=False)
    minutes = training.BASE_CPU_SECONDS_PER_STEP_BATCH_8 * 300 / 60
    assert f"about {minutes:.0f} min" in note and "GPU" in note and "scratch:tiny" in note
    half = helpers.cpu_runtime_note("facebook/wav2vec2-base-960h", 300, 4, cuda=False)
    assert f"about {minutes / 2:.0f} min" in half


def test_trainer_passes_no_loss_kwargs(tmp_path, tone):
    """The loss is a batch mean: the Trainer must neither pass num_items_in_batch nor scale it by the processes (DDP)."""
    model = helpers.build_model("scratch:tiny")
    settings = helpers.TrainSettings(output_dir=str(tmp_path), max_steps=1)
    trainer = helpers.make_trainer(model, small_dataset(tone_clip(tone)), settings)
    assert trainer.model_accepts_loss_kwargs is False
    with pytest.raises(TypeError):
        model(torch.zeros(1, 8000), num_items_in_batch=8)


def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path):
    """``torchrun --nproc_per_node 2`` on CPU (gloo) against one process, 10 steps of scratch:tiny at 1 ms. The two
    runs draw the same number of pairs per step but in another order (each process samples its own share), so their
    losses agree only as two draws of the same batch size do: within 5 % per step here, where the loss itself falls
    by two thirds. Only the main process writes."""
    import json
    import os
    import subprocess
    import sys

    from conftest import REPO

    def run(out, processes, batch):
        command = ["-m", "wav2vec2_anc.train", "--audio", str(REPO / "sample_audio" / "engine_honda_nsx.wav"),
                   "--model", "scratch:tiny", "--out", str(out), "--max-steps", "10", "--batch-size", str(batch),
                   "--latency-ms", "1"]
        launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes)] if processes > 1 else []
        result = subprocess.run([sys.executable, *launcher, *command], cwd=REPO, capture_output=True, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
        assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
        return result.stdout, json.loads((out / "metrics.json").read_text())

    printed, two = run(tmp_path / "two", 2, 4)
    _, one = run(tmp_path / "one", 1, 8)
    assert printed.count("The network's anti-noise makes the noise") == 1  # one process wrote and reported
    losses = np.array([[loss for _, loss in run["training"]["loss_history"]] for run in (two, one)])
    assert losses.shape == (2, 10) and losses[1, -1] < 0.6 * losses[1, 1]
    np.testing.assert_allclose(losses[0], losses[1], rtol=0.05)
    assert abs(two["noise_reduction_db"] - one["noise_reduction_db"]) < 0.5
