"""Export a trained canceller for streaming: its encoder as ONNX, the rest as the torch model, and its timing.

Usage:
    python -m wav2vec2_anc.export MODEL_DIR OUT_DIR

MODEL_DIR is a ``save_pretrained`` folder of a ``Wav2Vec2ForNoiseCancellation`` (``train``'s ``DIR/model``).
OUT_DIR gets ``encoder.onnx`` (``encoder_features``: windows ``(n, context_samples)`` → features ``(n, hidden)``),
``model/`` (the model's ``save_pretrained``: the FIR filters, the bank and the settings the audio path runs in
torch) and ``streaming.json`` (what a streaming canceller needs to know). Nothing is written outside OUT_DIR.
``load_exported(OUT_DIR)`` reads it back as a model whose encoder runs on onnxruntime.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .audio_io import SAMPLE_RATE
from .backends import ONNX_INPUT, ONNX_OPSET, ONNX_OUTPUT, export_encoder, onnx_encoder, require, with_backend
from .config import NoiseCancellationConfig
from .model import build_model
from .records import dumps_strict

ENCODER_FILE, MODEL_FOLDER, SETTINGS_FILE = "encoder.onnx", "model", "streaming.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def check_model_dir(model_dir: str | Path) -> Path:
    """Refuse a folder that is not a saved ``Wav2Vec2ForNoiseCancellation``, naming it, before any work.

    Raises:
        FileNotFoundError: no such folder, or no ``config.json`` or weights in it.
        ValueError: its config is another model's (a plain wav2vec2 checkpoint has no trained head).
    """
    folder = Path(model_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {str(folder)!r} does not exist")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{str(folder)!r} has no config.json: not a save_pretrained folder")
    try:
        model_type = json.loads(config_path.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(f"{str(config_path)!r} is not a model config: {error}") from error
    if model_type != NoiseCancellationConfig.model_type:
        raise ValueError(f"{str(folder)!r} holds a {model_type!r} model, not a trained canceller "
                         f"({NoiseCancellationConfig.model_type!r})")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise FileNotFoundError(f"{str(folder)!r} has no weights (one of {', '.join(WEIGHT_FILES)})")
    return folder


def streaming_settings(model) -> dict:
    """What a streaming canceller needs of ``model``: its timing in samples, its filters, its plant, its files."""
    config = model.config
    return {
        "sample_rate": SAMPLE_RATE,
        "block_samples": model.block,  # each block's filter is set once
        "encoder_update_samples": model.update_period,  # the encoder runs once every this many samples
        "update_lag_samples": model.update_lag,
        "latency_samples": model.latency,
        "context_samples": model.context,
        "warmup_samples": model.warmup,
        "safety_window_samples": model.safety_window,
        "filter_taps": model.filter_taps,
        "adaptive_rank": int(config.adaptive_rank),
        "hidden_size": int(config.hidden_size),
        "filter_bank": bool(config.filter_bank),
        "bank_error_window_samples": int(config.bank_error_window_samples),
        "needs_ear_noise": model.needs_ear_noise,
        "loudspeaker_eta": model.loudspeaker_eta,
        "encoder_correction": model.encoder_correction,  # False: the encoder never runs
        "encoder": {"file": ENCODER_FILE, "input": ONNX_INPUT, "output": ONNX_OUTPUT, "opset": ONNX_OPSET},
        "model": MODEL_FOLDER,
    }


def export(model_dir: str | Path, out_dir: str | Path) -> dict:
    """Write ``out_dir/encoder.onnx``, ``out_dir/model/`` and ``out_dir/streaming.json`` for ``model_dir``'s model.

    Returns:
        ``streaming.json``'s content.
    """
    folder = check_model_dir(model_dir)
    require("onnx")
    model = build_model(str(folder)).eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    onnx_encoder(model, export_encoder(model, out / ENCODER_FILE))  # refuses a graph whose features are not torch's
    model.save_pretrained(out / MODEL_FOLDER)
    settings = streaming_settings(model)
    (out / SETTINGS_FILE).write_text(dumps_strict(settings) + "\n")
    return settings


def load_exported(out_dir: str | Path):
    """The model ``export`` wrote to ``out_dir``: torch's audio path, its encoder on onnxruntime (``with_backend``).

    Raises:
        FileNotFoundError: ``out_dir`` lacks ``encoder.onnx`` or ``model/``.
    """
    out = Path(out_dir)
    for name in (ENCODER_FILE, MODEL_FOLDER):
        if not (out / name).exists():
            raise FileNotFoundError(f"{str(out)!r} has no {name}: not a folder python -m wav2vec2_anc.export wrote")
    return with_backend(build_model(str(out / MODEL_FOLDER)), "onnx", out / ENCODER_FILE)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wav2vec2_anc.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="a save_pretrained folder of the trained canceller")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="where encoder.onnx, model/ and streaming.json go")
    return parser


def main(argv=None) -> dict:
    """Export from the command line; a bad MODEL_DIR or missing packages exit with status 2 and the reason."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_model_dir(args.model_dir)
        require("onnx")
    except (OSError, ValueError, ImportError) as error:
        parser.error(str(error))
    settings = export(args.model_dir, args.out_dir)
    print(f"wrote {Path(args.out_dir) / ENCODER_FILE}, {Path(args.out_dir) / MODEL_FOLDER}/ and "
          f"{Path(args.out_dir) / SETTINGS_FILE}")
    return settings


if __name__ == "__main__":
    main()
