"""Where the encoder runs at inference: torch as trained, int8 (dynamic quantization) or ONNX Runtime.

The encoder (``Wav2Vec2ForNoiseCancellation.encoder_features``, ``(n, context_samples)`` → ``(n, hidden)``) is
the heavy part of a streaming step; the FIR filters, the bank and the safety gains stay in torch. A backend is a
copy of the model whose ``encoder_features`` runs elsewhere (``with_backend``), the same instance attribute
``benchmarks/ablation.py`` sets to switch the encoder off. onnx and onnxruntime are optional packages
(``requirements-extras.txt``), imported only where used.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import tempfile
import warnings
from pathlib import Path

import torch

BACKENDS = ("torch", "int8", "onnx")
EXTRAS_INSTALL = "pip install -r requirements-extras.txt"
# The ONNX graph of encoder_features: its input and output names, and its opset (torch 2.13's default for the
# exporter, so no version conversion; onnxruntime 1.32 runs opsets up to 23).
ONNX_INPUT, ONNX_OUTPUT, ONNX_OPSET = "windows", "features", 20
# How far the ONNX graph's features may be from torch's, relative to their peak, before it is refused: float32
# round-off is ~1e-6; a graph of another model or a wrong trace is off by far more.
ONNX_CHECK_TOLERANCE = 1e-3


def missing_packages(backend: str, exporting: bool = True) -> list[str]:
    """The packages ``backend`` needs that do not import here (empty: it runs).

    Args:
        exporting: for ``onnx``, whether the encoder is exported here (onnx and onnxscript as well as
            onnxruntime) or an exported file is only loaded (onnxruntime alone).
    """
    if backend == "onnx":
        needed = ["onnxruntime", "onnx", "onnxscript"] if exporting else ["onnxruntime"]
        return [name for name in needed if importlib.util.find_spec(name) is None]
    if backend == "int8" and not set(torch.backends.quantized.supported_engines) - {"none"}:
        return ["a torch build with a quantized engine (x86, fbgemm or qnnpack)"]
    return []


def require(backend: str, exporting: bool = True) -> None:
    """Raise ImportError naming what ``backend`` lacks here, and how to install it."""
    missing = missing_packages(backend, exporting)
    if missing:
        raise ImportError(f"the {backend} backend needs {', '.join(missing)}, missing here: {EXTRAS_INSTALL}")


def installed_backends() -> tuple[str, ...]:
    """The backends whose packages import here, in ``BACKENDS``' order."""
    return tuple(backend for backend in BACKENDS if not missing_packages(backend))


def fastest_backend() -> str:
    """The backend a streaming step uses where none is named: int8, then onnx, then torch, the first installed.

    On this project's 2-core CPU, one thread, ``scratch:base`` (the size of wav2vec2-base), one 0.25-s window:
    int8 35 ms, ONNX Runtime 43 ms, torch 91 ms (benchmarks/README.md, "Real time", for the streaming figures).
    """
    installed = installed_backends()
    return next(backend for backend in ("int8", "onnx", "torch") if backend in installed)


def with_backend(model, backend: str, onnx_path: str | Path | None = None):
    """A copy of ``model`` (eval mode, CPU) whose ``encoder_features`` runs on ``backend``; ``model`` is unchanged.

    Args:
        model: a ``Wav2Vec2ForNoiseCancellation`` whose encoder runs in torch.
        backend: ``"torch"`` (the copy as it is), ``"int8"`` (the encoder's ``nn.Linear`` layers dynamically
            quantized to int8) or ``"onnx"`` (``encoder_features`` exported to ONNX and run by onnxruntime).
        onnx_path: for ``"onnx"``, an exported ``encoder.onnx`` of this model to load instead of exporting.

    Returns:
        The copy; its ``encoder_backend`` names the backend.

    Raises:
        ValueError: an unknown backend, ``onnx_path`` with another backend, a model already on another backend,
            or an ONNX file whose features are not this model's.
        ImportError: the backend's packages are missing (``missing_packages``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown encoder backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if onnx_path is not None and backend != "onnx":
        raise ValueError(f"onnx_path is for the onnx backend, not {backend!r}")
    current = getattr(model, "encoder_backend", "torch")
    if current != "torch":
        raise ValueError(f"this model's encoder already runs on {current}: pass the torch model")
    require(backend, exporting=onnx_path is None)
    copied = copy.deepcopy(model).cpu().eval()
    fold_weight_norm(copied)
    if backend == "int8":
        quantize_encoder(copied)
    elif backend == "onnx":
        copied.encoder_features = onnx_encoder(copied, onnx_path)
    copied.encoder_backend = backend
    return copied


def fold_weight_norm(model) -> None:
    """Fold the positional convolution's weight norm into a plain weight, in place (inference only).

    wav2vec2 parametrises that convolution's weight as ``g·v/‖v‖`` and recomputes it on every call: 4.7 M weights of
    ``scratch:base`` each update, an eighth of its int8 encoder's time. Folded, the weight is the same to float32
    round-off, and a model that trains no longer has ``weight_g``/``weight_v`` to learn.
    """
    from torch.nn.utils import parametrize

    # A plain convolution in its place: remove_parametrizations would delete the weight from the parametrized
    # class, which a deep copy shares with the model it was copied from.
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Conv1d) and parametrize.is_parametrized(child, "weight"):
                plain = torch.nn.Conv1d(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                                        child.padding, child.dilation, child.groups, child.bias is not None,
                                        child.padding_mode, device=child.weight.device, dtype=child.weight.dtype)
                with torch.no_grad():
                    plain.weight.copy_(child.weight)
                    if child.bias is not None:
                        plain.bias.copy_(child.bias)
                setattr(parent, name, plain)


def quantize_encoder(model) -> None:
    """Quantize the encoder's ``nn.Linear`` layers to int8 in place (weights int8, activations quantized per call).

    The convolutional feature encoder and the positional convolution stay float32: dynamic quantization covers
    linear layers only.
    """
    from torch.ao.quantization import quantize_dynamic

    # torch 2.13 marks torch.ao.quantization and quantized tensors deprecated in favour of torchao, whose int8
    # dynamic config is still slower on CPU (pytorch/ao#4365); the warnings say nothing about this model.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*quantiz")
        quantize_dynamic(model.wav2vec2, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


class _EncoderGraph(torch.nn.Module):
    """The model's torch ``encoder_features`` as a module of its own, the exporter's input."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return type(self.model).encoder_features(self.model, windows)


@contextlib.contextmanager
def _quiet_exporter():
    """Hush the exporter's notes about torch's own internals (torchvision ops it skips, deprecated pytree names)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def export_encoder(model, path: str | Path) -> Path:
    """Write ``model``'s torch ``encoder_features`` as one ONNX file (weights inside).

    The graph's input ``windows`` is float32 of shape ``(n, context_samples)``, ``n`` dynamic; its output
    ``features`` is ``(n, hidden_size)``. ``model`` is left in the mode it was in.

    Returns:
        ``path``.
    """
    require("onnx")
    path = Path(path)
    graph, was_training = _EncoderGraph(model), model.training
    graph.eval()
    example = torch.randn(2, model.context, generator=torch.Generator().manual_seed(0))
    try:
        # The dynamo exporter (torch.export), torch's default since 2.9: the TorchScript one is deprecated and
        # traces Python branches into constants (TracerWarnings), and on a module left in training mode it
        # exported dropout silently (features off by 0.4); the dynamo one needs onnxscript. external_data=False
        # keeps the weights inside the one file (base's 377 MB is far below protobuf's 2 GB).
        with _quiet_exporter(), torch.no_grad():
            torch.onnx.export(graph, (example,), str(path), dynamo=True, input_names=[ONNX_INPUT],
                              output_names=[ONNX_OUTPUT], dynamic_shapes={"windows": {0: torch.export.Dim("n")}},
                              opset_version=ONNX_OPSET, external_data=False, verbose=False)
    finally:
        model.train(was_training)
    return path


def onnx_session(path: str | Path):
    """An onnxruntime CPU session of an exported encoder.

    Its intra-op threads follow torch's (``torch.get_num_threads()``, set by ``OMP_NUM_THREADS`` or
    ``torch.set_num_threads``): the encoder and the torch audio path take turns in one process, so one knob
    sizes both, where onnxruntime's default (a thread per physical core) would compete with torch's pool.
    Spinning is off: the encoder runs once a block (every 50 ms by default), and threads that busy-wait between
    runs would take the cores the audio path and the audio callback need.
    """
    require("onnx", exporting=False)
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxEncoder:
    """``encoder_features`` run by onnxruntime: ``(n, context_samples)`` tensor → ``(n, hidden)`` tensor.

    The features come back in the windows' dtype and device; the graph computes in float32.
    """

    def __init__(self, session, hidden_size: int):
        self.session, self.hidden_size = session, hidden_size

    def __call__(self, windows: torch.Tensor) -> torch.Tensor:
        if not len(windows):
            return windows.new_zeros(0, self.hidden_size)
        array = windows.detach().to("cpu", torch.float32).contiguous().numpy()
        (features,) = self.session.run([ONNX_OUTPUT], {ONNX_INPUT: array})
        return torch.from_numpy(features).to(windows.device, windows.dtype)

    def __deepcopy__(self, memo):
        return self  # a session is read-only once made: copies of the model share it


def onnx_encoder(model, onnx_path: str | Path | None = None) -> OnnxEncoder:
    """``model``'s encoder on onnxruntime: ``onnx_path`` loaded, or exported here (through a temporary file).

    Raises:
        ValueError: the graph's features differ from ``model``'s torch features on two noise windows by more
            than ``ONNX_CHECK_TOLERANCE`` of their peak (a file of another model, or a wrong export).
    """
    if onnx_path is None:
        with tempfile.TemporaryDirectory() as folder:
            session = onnx_session(export_encoder(model, Path(folder) / "encoder.onnx"))
    else:
        session = onnx_session(onnx_path)
    encoder = OnnxEncoder(session, int(model.config.hidden_size))
    check_onnx_encoder(model, encoder, onnx_path or "the exported encoder")
    return encoder


def check_onnx_encoder(model, encoder: OnnxEncoder, source) -> None:
    """Refuse an ONNX encoder whose features on two windows of noise are not ``model``'s torch features."""
    context = int(encoder.session.get_inputs()[0].shape[1])
    if context != model.context:
        raise ValueError(f"{source} takes windows of {context} samples; this model's context is {model.context}")
    windows = torch.randn(2, model.context, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = type(model).encoder_features(model, windows)
    features = encoder(windows)
    error = float((features - expected).abs().max()) if features.shape == expected.shape else float("inf")
    if not error <= ONNX_CHECK_TOLERANCE * float(expected.abs().max()):
        raise ValueError(f"{source} does not compute this model's encoder features (max difference {error:.3g})")
