"""The notebook, run headless with papermill as a user would: locally, and through its Colab branch."""

import json
import math
import os
import re
import shutil
import subprocess

import nbformat
import numpy as np
import papermill
import pytest
import soundfile as sf
import torch
from conftest import REPO, write_ctc_checkpoint
from test_audio_io import BAD_CASES, write_bad

import helpers
from wav2vec2_anc.pairs import split_heldout

NOTEBOOK = REPO / "wav2vec2_noise_cancellation.ipynb"


def run_notebook(tmp_path, notebook=NOTEBOOK, cwd=REPO, **parameters):
    return papermill.execute_notebook(
        str(notebook),
        str(tmp_path / "executed.ipynb"),
        parameters={"MODEL_NAME": "scratch:tiny", "OUTPUT_DIR": str(tmp_path / "out"), **parameters},
        cwd=str(cwd),
        progress_bar=False,
        kernel_name="python3",
    )


def read_metrics(path):
    """metrics.json is strict JSON (no bare Infinity/NaN); ``loads_strict`` gives back the floats."""

    def refuse(constant):
        raise AssertionError(f"bare {constant} in {path}")

    json.loads(path.read_text(), parse_constant=refuse)
    return helpers.loads_strict(path.read_text())


def parameter(name):
    source = nbformat.read(NOTEBOOK, as_version=4).cells[1].source
    return re.search(rf'^{name} = "([^"]*)"', source, re.M).group(1)


def test_committed_notebook_is_clean_and_tagged():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "widgets" not in notebook.metadata


def test_papermill_reads_every_parameter():
    # papermill parses the parameters cell line by line; a line it cannot read (an "=" in a comment does it)
    # is dropped from `papermill --help-notebook` with only a warning.
    import ast

    from papermill.translators import PythonTranslator

    cell = nbformat.read(NOTEBOOK, as_version=4).cells[1]
    assigned = [node.targets[0].id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)]
    assert [p.name for p in PythonTranslator.inspect(cell)] == assigned
    assert len(assigned) <= 20  # a form a newcomer reads; the rest is in ADVANCED (helpers.AdvancedSettings)


def test_badges_and_repo_url_name_one_home():
    url = parameter("REPO_URL")
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url)
    badge = f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/main/{NOTEBOOK.name}"
    readme = (REPO / "README.md").read_text()
    notebook_intro = nbformat.read(NOTEBOOK, as_version=4).cells[0].source
    for text in (readme, notebook_intro):
        assert re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", text) == [badge]


def test_default_run_from_a_ctc_checkpoint_visibly_learns_and_writes_every_output(tmp_path):
    """Every setting at its default but the model (a folder laid out like facebook/wav2vec2-base-960h), the file and
    60 steps: the network learns the anti-noise, every output is written, and the input is left as it was."""
    source = REPO / "sample_audio" / "engine_honda_nsx.wav"
    before = source.read_bytes()
    written = write_ctc_checkpoint(tmp_path / "ctc")
    executed = run_notebook(tmp_path, AUDIO_PATH=str(source), MODEL_NAME=str(tmp_path / "ctc"), MAX_STEPS=60)
    out = tmp_path / "out"
    printed = "".join(out.get("text", "") for cell in executed.cells for out in cell.get("outputs", []))
    assert "quieter on audio the model never heard" in printed
    assert "At 0 ms a plain sign flip is exact: set LATENCY_MS = 1" in printed
    assert not re.search(r"\b\d{3,}\.\d dB", printed)  # nothing above 100 dB is printed as a figure
    for name in ["inverse.wav", "residual.wav", "input.wav", "metrics.json", "loss_curve.png",
                 "waveforms.png", "spectrograms.png", "model/config.json", "model/model.safetensors"]:
        assert (out / name).is_file(), name
    assert source.read_bytes() == before

    metrics = read_metrics(out / "metrics.json")
    history = metrics["training"]["loss_history"]
    assert [step for step, _ in history] == list(range(1, 61))
    first, last = 10 * math.log10(history[0][1]), 10 * math.log10(history[-1][1])
    assert last <= first - 3.0, (first, last)
    assert metrics["shared_filter"] == "learned"
    assert metrics["training"]["heldout_nr_db_before"] == 0.0  # the learned head starts silent
    assert metrics["training"]["heldout_nr_db_after"] > 3.0
    assert metrics["negation_noise_reduction_db"] == math.inf  # zero latency: −x is exact

    audio = helpers.load_audio(source)
    _, heldout = split_heldout(audio, 0.3)
    inverse, rate = sf.read(out / "inverse.wav", dtype="float32")
    residual, _ = sf.read(out / "residual.wav", dtype="float32")
    assert rate == 16_000
    assert len(inverse) == len(residual) == len(heldout)
    np.testing.assert_allclose(residual, heldout + inverse, atol=1e-6)
    energy = lambda x: float(np.sum(np.square(x, dtype=np.float64)))  # noqa: E731
    assert metrics["noise_reduction_db"] == pytest.approx(10 * math.log10(energy(heldout) / energy(residual)), abs=1e-3)
    assert metrics["heldout_seconds"] == pytest.approx(len(heldout) / 16_000)
    # The second bundled sample is cancelled by step 10 without retraining.
    assert (out / "slide_rock_inverse.wav").is_file() and (out / "slide_rock_residual.wav").is_file()
    # The frozen feature encoder is saved exactly as the checkpoint had it.
    saved = helpers.build_model(str(out / "model")).state_dict()
    feature_encoder = [name for name in written if name.startswith("wav2vec2.feature_extractor.")]
    assert feature_encoder and all(torch.equal(saved[name], written[name]) for name in feature_encoder)

    # The training command runs the same recipe: the same losses, model and figures (float sums may run on other
    # threads in the notebook's kernel, hence a tolerance far below any figure's precision).
    from wav2vec2_anc import train

    command = train.main(["--audio", str(source), "--model", str(tmp_path / "ctc"), "--out", str(tmp_path / "cli"),
                          "--max-steps", "60"])
    assert read_metrics(tmp_path / "cli" / "metrics.json") == command
    np.testing.assert_allclose(command["training"]["loss_history"], history, rtol=1e-4)
    assert command["noise_reduction_db"] == pytest.approx(metrics["noise_reduction_db"], abs=1e-3)
    assert command["methods"].keys() == metrics["methods"].keys()
    figures = ("training", "methods", "noise_reduction_db", "files", "audio_path")
    assert {k: v for k, v in command.items() if k not in figures} == {k: v for k, v in metrics.items() if k not in figures}


def test_bad_input_fails_before_training_and_names_the_file(tmp_path):
    case = "corrupt"  # every other case is the loader's (test_audio_io): this is the notebook stopping early
    path = write_bad(tmp_path, case)
    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_notebook(tmp_path, AUDIO_PATH=str(path), MAX_STEPS=2)
    assert error.value.ename == "AudioInputError"
    assert str(path) in error.value.evalue and BAD_CASES[case] in error.value.evalue
    assert not (tmp_path / "out" / "checkpoints").exists()


def local_clone(tmp_path):
    """A git repository holding this working tree's notebook code, to stand in for REPO_URL."""
    repo = tmp_path / "wav2vec2-noise-cancellation"
    repo.mkdir()
    for name in ("helpers.py", "requirements.txt"):
        shutil.copy(REPO / name, repo / name)
    for name in ("wav2vec2_anc", "sample_audio"):
        shutil.copytree(REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "snapshot"]):
        subprocess.run(git + command, check=True)
    return repo


def test_colab_branch_runs_all_with_three_files_uploaded_learns_and_offers_the_download(tmp_path, monkeypatch):
    """Run all as in Colab: google.colab imported at kernel start, an empty working folder, three files picked at
    step 2 (one model for all, at the defaults: it has to learn), no stop at step 10 (an upload button; trying two
    files there is ``test_trying_another_file_with_two_files_cancels_both``), then the download."""
    ipython_dir = tmp_path / "ipython"
    (ipython_dir / "profile_default" / "startup").mkdir(parents=True)
    (ipython_dir / "profile_default" / "startup" / "00-colab.py").write_text("import google.colab\n")
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))
    monkeypatch.setenv("PYTHONPATH", str(REPO / "tests" / "colab_stub"))
    picked = [REPO / "sample_audio" / name for name in ("colobot_076.wav", "engine_honda_nsx.wav", "slide_rock.wav")]
    another = [tmp_path / "new" / name for name in ("first_new.wav", "second_new.wav")]
    another[0].parent.mkdir()
    for path, source in zip(another, picked[1:]):
        shutil.copy(source, path)
    # Step 2 is answered with three files; step 10 shows an upload button and does not stop Run all.
    monkeypatch.setenv("COLAB_STUB_UPLOAD", os.pathsep.join(map(str, picked)) + "|" + os.pathsep.join(map(str, another)))
    monkeypatch.setenv("COLAB_STUB_DOWNLOADS", str(tmp_path / "downloads.txt"))
    work = tmp_path / "content"
    work.mkdir()
    notebook = tmp_path / "notebook" / NOTEBOOK.name  # outside the repository
    notebook.parent.mkdir()
    shutil.copy(NOTEBOOK, notebook)
    clone = local_clone(tmp_path)

    executed = run_notebook(tmp_path, notebook=notebook, cwd=work, REPO_URL=str(clone), MAX_STEPS=30,
                            OUTPUT_DIR="outputs")
    assert (work / clone.name / "helpers.py").is_file()  # cloned into the working folder
    metrics = read_metrics(work / "outputs" / "metrics.json")
    printed = "".join(out.get("text", "") for cell in executed.cells for out in cell.get("outputs", []))
    assert "Setup done" in printed and "transformers 5." in printed
    assert re.match(r"outputs/uploads/library-[0-9a-f]{12}$", metrics["audio_path"])
    assert [f["file"] for f in metrics["files"]] == [path.name for path in picked]
    # At the defaults a library learns too: no closed-form bank starts it exact.
    assert metrics["filter_bank"] is None
    history = metrics["training"]["loss_history"]
    assert 10 * math.log10(history[-1][1]) <= 10 * math.log10(history[0][1]) - 3.0
    assert "The network's anti-noise makes the noise" in printed
    assert (work / ".colab_stub_calls").read_text() == "1"  # Run all stopped for one upload
    assert (work / "outputs" / "slide_rock_inverse.wav").is_file()  # step 10 before any new upload: the bundled file
    assert not any((work / "outputs" / f"{path.stem}_inverse.wav").exists() for path in another)
    downloaded = (tmp_path / "downloads.txt").read_text().split()
    assert downloaded == ["outputs/outputs.zip"] and (work / "outputs" / "outputs.zip").is_file()


def test_a_folder_in_a_scene_runs_the_bank_in_the_closed_loop_and_reports_at_the_ear(tmp_path):
    """Two files in the band-pass scene at 1 ms: a bank of one controller per file, judged at the ear, trained, gated,
    evaluated, switched between (step 9) and streamed in the loop; the WAVs are at the ear and metrics.json names
    the plant."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("engine_honda_nsx.wav", "colobot_076.wav"):
        shutil.copy(REPO / "sample_audio" / name, folder / name)
    executed = run_notebook(tmp_path, AUDIO_PATH=str(folder), MAX_STEPS=4, LATENCY_MS=1.0, ACOUSTIC_SCENE="bandpass",
                            SHARED_FILTER="wiener", ADVANCED={"segment_hop_seconds": 0.5})
    out = tmp_path / "out"
    metrics = read_metrics(out / "metrics.json")
    scene = metrics["scene"]
    assert (scene["name"], scene["loudspeaker"], scene["lead_samples"], scene["eta"]) == ("bandpass", "linear", 128, None)
    assert scene["s_hat_misalignment_db"] < -30 and scene["identification_snr_db"] == 30.0
    assert metrics["filter_bank"] == ["colobot_076.wav", "engine_honda_nsx.wav"]
    assert {"wiener", "wiener_true_s", "fxnlms", "model", "model_no_encoder", "model_fxnlms"} == set(metrics["methods"])
    assert metrics["negation_noise_reduction_db"] is None
    # The bank holds the optimal controller of each file, so the model starts no worse than the library's one.
    methods = metrics["methods"]
    assert methods["model"]["nr_db"] >= methods["wiener"]["nr_db"] - 1.0
    switching = {r["method"] for r in metrics["switching"]}
    assert {"wiener_library", "fxnlms", "model"} <= switching
    assert (out / "paths.png").is_file() and (out / "switching.png").is_file()
    # input.wav is the noise at the ear, P∗x of the held-out parts, not the recordings themselves.
    from wav2vec2_anc.acoustics import bandpass_scene, noise_at_ear

    expected = []
    for name in metrics["filter_bank"]:
        audio = helpers.load_audio(folder / name)
        train, _ = split_heldout(audio, 0.3)
        expected.append(noise_at_ear(audio, bandpass_scene())[len(train):])
    at_ear, _ = sf.read(out / "input.wav", dtype="float32")
    np.testing.assert_allclose(at_ear, np.concatenate(expected), atol=1e-6)
    residual, _ = sf.read(out / "residual.wav", dtype="float32")
    inverse, _ = sf.read(out / "inverse.wav", dtype="float32")
    assert metrics["noise_reduction_db"] == pytest.approx(helpers.noise_reduction_db(at_ear, inverse), abs=1e-3)
    np.testing.assert_allclose(residual, at_ear + inverse, atol=1e-6)
    printed = "".join(out.get("text", "") for cell in executed.cells for out in cell.get("outputs", []))
    largest = float(re.search(r"largest difference from the offline result ([0-9.e+-]+)", printed).group(1))
    assert largest < 1e-4


def test_an_unknown_advanced_setting_is_refused_by_name():
    """The notebook's setup calls this on ADVANCED before any work."""
    with pytest.raises(ValueError, match=r"ADVANCED has no setting \['filter_tapz'\]; the settings are \[.*'filter_taps'"):
        helpers.advanced_settings({"filter_tapz": 256})
    assert helpers.advanced_settings({"filter_taps": 256}).filter_taps == 256


def test_the_form_shows_at_most_ten_settings_above_the_advanced_line():
    source = nbformat.read(NOTEBOOK, as_version=4).cells[1].source
    form, advanced = source.split("# @markdown ### Advanced: leave as is")
    assert 5 <= len(re.findall(r"^[A-Z_]+ = .*# @param", form, re.M)) <= 10
    assert re.search(r"^ADVANCED = ", advanced, re.M) and "# @param" not in advanced
    documented = (REPO / "docs" / "parameters.md").read_text()
    for name in re.findall(r"^([A-Z_]+) = ", source, re.M) + list(helpers.AdvancedSettings.__dataclass_fields__):
        assert f"`{name}`" in documented, name
