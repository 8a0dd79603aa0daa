"""The encoder's backends (torch, int8, onnx) and the export command, on tiny models and seconds of noise."""

import subprocess
import sys
import types

import numpy as np
import pytest
import torch
from conftest import REPO, set_random_basis, write_ctc_checkpoint

import helpers
from wav2vec2_anc import backends
from wav2vec2_anc.export import main as export_main


def steered_model(seed: int = 0, **head):
    """A scratch:tiny model whose random shared filter and basis the encoder's gains steer (nothing silent)."""
    model = helpers.build_model("scratch:tiny", filter_taps=16, seed=seed, **head)
    set_random_basis(model, 0.2)
    model.set_shared_filter(0.2 * np.random.default_rng(seed).standard_normal(16))
    return model.eval()


def noise_windows(model, count: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, model.context, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A steered tiny model saved with save_pretrained and exported by ``python -m wav2vec2_anc.export``."""
    pytest.importorskip("onnxruntime")  # a guard only: CI installs requirements-extras.txt
    folder = tmp_path_factory.mktemp("export")
    model = steered_model()
    model.save_pretrained(folder / "trained")
    done = subprocess.run([sys.executable, "-m", "wav2vec2_anc.export", str(folder / "trained"), str(folder / "out")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return model, folder / "out"


def test_with_backend_copies_and_leaves_the_model_alone():
    model = steered_model()
    copied = helpers.with_backend(model, "torch")
    assert copied is not model and copied.encoder_backend == "torch" and not copied.training
    windows = noise_windows(model)
    with torch.no_grad():
        before = model.encoder_features(windows)
        assert torch.equal(copied.encoder_features(windows), before)
    helpers.with_backend(model, "int8")
    # The copy's positional convolution holds its weight norm folded; the model's keeps its g and v, and runs.
    assert not hasattr(copied.wav2vec2.encoder.pos_conv_embed.conv, "parametrizations")
    assert model.wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original0.requires_grad
    with torch.no_grad():
        assert torch.equal(model.encoder_features(windows), before)
    assert "encoder_features" not in vars(model) and isinstance(model.wav2vec2.encoder.layers[0].attention.q_proj,
                                                                torch.nn.Linear)


def test_int8_gains_are_close_to_torchs_but_not_identical():
    model = steered_model()
    quantized = helpers.with_backend(model, "int8")
    audio = torch.randn(1, 2 * helpers.SAMPLE_RATE, generator=torch.Generator().manual_seed(2))
    ends = torch.arange(model.context, audio.shape[-1], model.block)
    with torch.no_grad():
        exact, approximate = model.block_gains(audio, ends), quantized.block_gains(audio, ends)
    error = float((approximate - exact).norm() / exact.norm())
    # Measured 0.7–1.2 % (rms of the gains' error over their rms) for seeds 0–4: int8 weights per tensor and
    # activations quantized per call through two layers. 5 % leaves room for another CPU's quantized engine; a
    # wrong scale or a layer left out (identical gains) would fail.
    assert 1e-4 < error < 0.05, error


def test_onnx_features_equal_torchs():
    pytest.importorskip("onnxruntime")
    model = steered_model()
    on_onnx = helpers.with_backend(model, "onnx")
    for count in (1, 5):  # the batch is dynamic
        windows = noise_windows(model, count, seed=count)
        with torch.no_grad():
            expected = model.encoder_features(windows)
        features = on_onnx.encoder_features(windows)
        assert features.shape == expected.shape
        assert float((features - expected).abs().max()) <= 1e-4 * float(expected.abs().max())


def test_an_export_round_trip_streams_as_the_torch_model(exported):
    model, out = exported
    settings = helpers.loads_strict((out / "streaming.json").read_text())
    assert settings["sample_rate"] == 16000 and settings["context_samples"] == model.context
    assert settings["block_samples"] == model.block and settings["filter_taps"] == 16
    assert settings["needs_ear_noise"] is False and settings["hidden_size"] == model.config.hidden_size
    loaded = helpers.load_exported(out)
    assert loaded.encoder_backend == "onnx"
    audio = (0.3 * np.random.default_rng(3).standard_normal(2 * helpers.SAMPLE_RATE)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.tensor(audio)[None]).inverse[0].numpy()
    # Streamed live, the encoder on a worker: the exported model's anti-noise is torch's.
    canceller = helpers.StreamingCanceller(loaded, worker=True)
    streamed = np.concatenate([canceller.process(audio[i : i + 320]) for i in range(0, len(audio), 320)])
    canceller.close()
    assert streamed.shape == expected.shape and np.abs(expected).max() > 0
    assert float(np.abs(streamed - expected).max()) <= 1e-4 * np.abs(audio).max()


def test_an_onnx_file_of_another_model_is_refused(exported):
    _, out = exported
    with pytest.raises(ValueError, match="context is 3200"):
        helpers.with_backend(steered_model(context_samples=3200), "onnx", out / "encoder.onnx")
    with pytest.raises(ValueError, match="does not compute this model's encoder features"):
        helpers.with_backend(steered_model(seed=1), "onnx", out / "encoder.onnx")


def test_export_refuses_a_missing_or_foreign_model_dir_by_name(tmp_path, capsys):
    missing = tmp_path / "no such model"
    with pytest.raises(SystemExit) as stopped:
        export_main([str(missing), str(tmp_path / "out")])
    assert stopped.value.code == 2 and str(missing) in capsys.readouterr().err
    write_ctc_checkpoint(tmp_path / "ctc")
    with pytest.raises(SystemExit):
        export_main([str(tmp_path / "ctc"), str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert str(tmp_path / "ctc") in error and "not a trained canceller" in error
    assert not (tmp_path / "out").exists()
    with pytest.raises(FileNotFoundError, match="has no encoder.onnx"):
        helpers.load_exported(tmp_path)


def test_an_unknown_backend_or_a_second_backend_is_refused():
    model = steered_model()
    with pytest.raises(ValueError, match="unknown encoder backend 'tpu'; choose from torch, int8, onnx"):
        helpers.with_backend(model, "tpu")
    with pytest.raises(ValueError, match="onnx_path is for the onnx backend"):
        helpers.with_backend(model, "int8", onnx_path="encoder.onnx")
    with pytest.raises(ValueError, match="already runs on int8"):
        helpers.with_backend(helpers.with_backend(model, "int8"), "onnx")


def test_a_missing_package_is_named_with_the_install_command(monkeypatch):
    pytest.importorskip("onnxruntime")
    assert helpers.installed_backends() == ("torch", "int8", "onnx")  # CI installs the extras
    assert helpers.fastest_backend() == "int8"
    with monkeypatch.context() as patched:  # a torch without a quantized engine
        patched.setattr(backends.torch.backends, "quantized", types.SimpleNamespace(supported_engines=["none"]))
        assert helpers.installed_backends() == ("torch", "onnx") and helpers.fastest_backend() == "onnx"
    find_spec = backends.importlib.util.find_spec
    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else find_spec(name))
    assert helpers.installed_backends() == ("torch", "int8") and helpers.fastest_backend() == "int8"
    with pytest.raises(ImportError, match=r"needs onnxruntime, missing here: pip install -r requirements-extras.txt"):
        helpers.with_backend(steered_model(), "onnx")
