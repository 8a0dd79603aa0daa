"""Shared fixtures: generated audio and tiny randomly initialised models (no hub, no writes to the repo)."""

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))  # the generated noises of the benchmark suite

import helpers  # noqa: E402


@pytest.fixture
def tone():
    """Two seconds of a 440 Hz sine plus a little white noise at 16 kHz, float32."""
    rng = np.random.default_rng(0)
    t = np.arange(2 * helpers.SAMPLE_RATE) / helpers.SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def tiny_model():
    """A scratch:tiny model with random (non-zero) head weights, so every path is exercised."""
    import torch

    model = helpers.build_model("scratch:tiny", filter_taps=16, seed=0)
    head = model.filter_head
    with torch.no_grad():
        generator = torch.Generator().manual_seed(1)
        head.basis.copy_(0.2 * torch.randn(head.basis.shape, generator=generator))
        head.shared.copy_(0.2 * torch.randn(head.shared.shape, generator=generator))
    return model.eval()


def predictable_noise(samples: int, seed: int = 0) -> np.ndarray:
    """AR(1) noise with a = 0.99: predictable enough that a fitted predictor cancels part of it."""
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -0.99], np.random.default_rng(seed).standard_normal(samples)).astype(np.float32) * 0.1


def predicting_model(latency: int, safety_window: int, audio: np.ndarray, update_lag: int = 0, every: int = 1):
    """A scratch:tiny model whose shared filter predicts ``audio`` and whose encoder steers a random basis, updated
    every ``every`` blocks."""

    model = helpers.build_model("scratch:tiny", filter_taps=32, latency_samples=latency, safety_window_samples=safety_window,
                                update_lag_samples=update_lag, encoder_update_blocks=every, seed=0).eval()
    model.set_shared_filter(-helpers.fit_wiener_predictor(audio, latency, 32))
    set_random_basis(model, 0.02)
    return model


def set_random_basis(model, scale: float, seed: int = 1):
    """Give the encoder something to steer: a random basis of standard deviation ``scale``."""
    import torch

    basis = model.filter_head.basis
    with torch.no_grad():
        basis.copy_(scale * torch.randn(basis.shape, generator=torch.Generator().manual_seed(seed)))


def write_ctc_checkpoint(folder, weights_format: str = "safetensors") -> dict:
    """A tiny ``Wav2Vec2ForCTC`` saved as ``facebook/wav2vec2-base-960h`` is laid out.

    That checkpoint has an ``lm_head`` and stores the positional convolution's weight norm as
    ``weight_g``/``weight_v`` (not ``parametrizations.weight.original0/1``), in ``model.safetensors``
    or ``pytorch_model.bin``.

    Returns:
        The tensors written, by their names in the file.
    """
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    from wav2vec2_anc.config import SCRATCH_CONFIGS

    torch.manual_seed(7)
    ctc = Wav2Vec2ForCTC(Wav2Vec2Config(**SCRATCH_CONFIGS["tiny"], vocab_size=32, architectures=["Wav2Vec2ForCTC"]))
    renames = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}
    state = {}
    for name, tensor in ctc.state_dict().items():
        for new, old in renames.items():
            name = name.replace(new, old)
        state[name] = tensor.detach().clone().contiguous()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ctc.config.save_pretrained(folder)
    if weights_format == "safetensors":
        from safetensors.torch import save_file

        save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    else:
        torch.save(state, folder / "pytorch_model.bin")
    return state
