"""The notebook, run headless with papermill as a user would: outputs on success, a named error on bad input."""

import json
import math

import nbformat
import numpy as np
import papermill
import pytest
import soundfile as sf
from conftest import REPO
from test_audio_io import BAD_CASES, write_bad

import helpers
from wav2vec2_anc.pairs import split_heldout

NOTEBOOK = REPO / "wav2vec2_noise_cancellation.ipynb"


def run_notebook(tmp_path, **parameters):
    return papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "executed.ipynb"),
        parameters={"MODEL_NAME": "scratch:tiny", "OUTPUT_DIR": str(tmp_path / "out"), **parameters},
        cwd=str(REPO),
        progress_bar=False,
        kernel_name="python3",
    )


def test_committed_notebook_is_clean_and_tagged():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "widgets" not in notebook.metadata


def test_headless_run_writes_every_output(tmp_path):
    source = REPO / "sample_audio" / "colobot_076.wav"
    before = source.read_bytes()
    run_notebook(tmp_path, AUDIO_PATH=str(source), MAX_STEPS=30, LATENCY_MS=1.0)
    out = tmp_path / "out"
    for name in ["inverse.wav", "residual.wav", "input.wav", "metrics.json", "loss_curve.png",
                 "waveforms.png", "spectrograms.png", "model/config.json", "model/model.safetensors"]:
        assert (out / name).is_file(), name
    assert source.read_bytes() == before

    audio = helpers.load_audio(source)
    train, heldout = split_heldout(audio, 0.3)
    inverse, rate = sf.read(out / "inverse.wav", dtype="float32")
    residual, _ = sf.read(out / "residual.wav", dtype="float32")
    assert rate == 16_000
    assert len(inverse) == len(residual) == len(heldout)
    np.testing.assert_allclose(residual, heldout + inverse, atol=1e-6)

    metrics = json.loads((out / "metrics.json").read_text())
    energy = lambda x: float(np.sum(np.square(x, dtype=np.float64)))  # noqa: E731
    assert metrics["noise_reduction_db"] == pytest.approx(10 * math.log10(energy(heldout) / energy(residual)), abs=1e-3)
    # Negation 1 ms late: the held-out sample n meets −x[n − 16].
    late_residual = heldout - audio[len(train) - 16 : len(audio) - 16]
    assert metrics["negation_noise_reduction_db"] == pytest.approx(10 * math.log10(energy(heldout) / energy(late_residual)), abs=1e-3)
    assert metrics["heldout_seconds"] == pytest.approx(len(heldout) / 16_000)
    # The second bundled sample is cancelled by step 9 without retraining.
    assert (out / "slide_rock_inverse.wav").is_file() and (out / "slide_rock_residual.wav").is_file()


def test_headless_run_without_a_path_uses_the_bundled_sample(tmp_path):
    run_notebook(tmp_path, MAX_STEPS=2)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["audio_path"] == str(helpers.DEFAULT_SAMPLE)
    # At zero latency (the default) negation is exact, and so is the model that starts from it.
    assert metrics["negation_noise_reduction_db"] == metrics["noise_reduction_db"] == math.inf


def test_folder_of_files(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("engine_honda_nsx.wav", "slide_rock.wav"):
        (folder / name).write_bytes((REPO / "sample_audio" / name).read_bytes())
    run_notebook(tmp_path, AUDIO_PATH=str(folder), MAX_STEPS=2)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert [f["file"] for f in metrics["files"]] == ["engine_honda_nsx.wav", "slide_rock.wav"]
    inverse, _ = sf.read(tmp_path / "out" / "inverse.wav")
    assert len(inverse) / 16_000 == pytest.approx(sum(f["heldout_seconds"] for f in metrics["files"]))


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_fails_before_training_and_names_the_file(tmp_path, case):
    path = write_bad(tmp_path, case)
    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_notebook(tmp_path, AUDIO_PATH=str(path), MAX_STEPS=2)
    assert error.value.ename == "AudioInputError"
    assert str(path) in error.value.evalue and BAD_CASES[case] in error.value.evalue
    assert not (tmp_path / "out" / "checkpoints").exists()
