"""Fine-tuning with ``transformers.Trainer``: optimizer groups, mixed precision, checkpoints and resumption."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from .model import Wav2Vec2ForNoiseCancellation


@dataclasses.dataclass
class TrainSettings:
    """Fine-tuning knobs; the notebook's parameters cell sets them."""

    output_dir: str
    max_steps: int = 300
    batch_size: int = 8
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-2
    train_shared_filter: bool = True  # False when it starts at the closed-form Wiener solution
    freeze_feature_encoder: bool = True
    seed: int = 0
    save_steps: int = 100
    logging_steps: int = 10
    progress_bar: bool = True
    precision: str | None = None  # "bf16", "fp16" or "fp32" on a GPU; None: as ``mixed_precision`` decides


def make_optimizer(model: Wav2Vec2ForNoiseCancellation, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW with two learning rates: a fast one for the shared filter (0 when it is held fixed) and, after a
    filter bank start, the projection (unless the bank's errors at the ear steer it); a gentle one for the rest,
    which depends on the encoder (the basis, the projection otherwise, and the encoder)."""
    shared, projection = model.filter_head.shared, model.filter_head.projection
    own_rate = {id(shared), id(projection)}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in own_rate]
    shared_rate = settings.head_learning_rate if settings.train_shared_filter else 0.0
    # A filter bank start (``start_filter_bank``) zeroes the encoder's readout, which must then learn
    # which filter each noise calls for: at the encoder's gentle rate 500 steps were not enough.
    # Where the bank's errors at the ear steer the mix (needs_ear_noise) they already choose, and the readout at
    # the fast rate overrode them (the room's engine at 1 ms: 19.5 dB against 21.2 at the encoder's rate).
    fast_projection = model.config.filter_bank and not model.needs_ear_noise
    projection_rate = settings.head_learning_rate if fast_projection else settings.learning_rate
    # The encoder's group first: the Trainer logs the first group's learning rate.
    groups = [{"params": rest, "lr": settings.learning_rate}, {"params": [shared], "lr": shared_rate},
              {"params": [projection], "lr": projection_rate}]
    return torch.optim.AdamW(groups, weight_decay=0.0)


def mixed_precision(cuda_capability: tuple[int, int] | None) -> str | None:
    """The autocast precision to train in: ``"bf16"`` where the GPU has it natively, else ``"fp16"``.

    ``torch.cuda.is_bf16_supported()`` also counts emulation, which is true on a T4 (compute
    capability 7.5) and several times slower than fp16 there; native bf16 starts at 8.0 (Ampere).

    Args:
        cuda_capability: ``torch.cuda.get_device_capability()``, or ``None`` without a CUDA device.

    Returns:
        ``"bf16"``, ``"fp16"`` or ``None`` (full float32, on the CPU).
    """
    if cuda_capability is None:
        return None
    return "bf16" if tuple(cuda_capability) >= (8, 0) else "fp16"


def run_fingerprint(clips, model: Wav2Vec2ForNoiseCancellation, settings: TrainSettings, **pairs) -> dict:
    """What a run's checkpoints were made from: each file's name and training audio, the model as it starts, the settings.

    ``max_steps``, ``save_steps`` and the logging knobs are left out, so a rerun with more steps resumes.

    Args:
        clips: the ``Clip`` s trained on.
        pairs: how the pairs were cut (``segment_samples``, ``hop_samples``, …).

    Returns:
        A JSON-able dict; ``fingerprint_id`` of it names the run's checkpoint folder.
    """
    import hashlib

    state = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        state.update(name.encode())
        state.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    ignored = {"output_dir", "max_steps", "save_steps", "logging_steps", "progress_bar", "precision"}
    return {
        "files": [{"file": clip.name, "train_sha256": hashlib.sha256(clip.train.tobytes()).hexdigest()} for clip in clips],
        "model_sha256": state.hexdigest(),
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k not in ignored} | pairs,
    }


def fingerprint_id(fingerprint: dict) -> str:
    """A short stable name for a fingerprint: 12 hex digits of the SHA-256 of its sorted JSON."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:12]


def make_trainer(model, dataset, settings: TrainSettings, checkpoint_dir: str | Path | None = None):
    """A ``transformers.Trainer`` with checkpoints in ``checkpoint_dir`` (default ``output_dir/checkpoints``).

    Mixed precision on a GPU: ``settings.precision``, or as ``mixed_precision`` decides when it is ``None``.
    """
    from transformers import Trainer, TrainingArguments

    if settings.freeze_feature_encoder:
        model.freeze_feature_encoder()
    cuda = torch.cuda.is_available()
    precision = settings.precision or mixed_precision(torch.cuda.get_device_capability() if cuda else None)
    if precision not in (None, "bf16", "fp16", "fp32"):
        raise ValueError(f"precision {precision!r}: choose 'bf16', 'fp16', 'fp32' or None")
    args = TrainingArguments(
        output_dir=str(checkpoint_dir or Path(settings.output_dir) / "checkpoints"),
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=0,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=2,
        seed=settings.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not cuda,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=not settings.progress_bar,
    )
    return Trainer(model=model, args=args, train_dataset=dataset, optimizers=(make_optimizer(model, settings), None))


def train(model, dataset, settings: TrainSettings, fingerprint: dict | None = None) -> list[dict]:
    """Fine-tune, resuming only from checkpoints made from the same audio and settings.

    With a ``fingerprint`` (``run_fingerprint``) the checkpoints go to
    ``output_dir/checkpoints/run-<fingerprint_id>/`` beside a ``fingerprint.json`` naming the files,
    so a rerun on other audio or settings starts fresh and a rerun on the same ones resumes from its
    newest checkpoint. Without one, ``output_dir/checkpoints`` is used as it is.

    Returns:
        The Trainer's log history: dicts with ``step`` and ``loss`` (normalised MSE) among others.
    """
    import json

    from transformers.trainer_utils import get_last_checkpoint

    checkpoint_dir = Path(settings.output_dir) / "checkpoints"
    if fingerprint is not None:
        checkpoint_dir = checkpoint_dir / f"run-{fingerprint_id(fingerprint)}"
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        (checkpoint_dir / "fingerprint.json").write_text(json.dumps(fingerprint, indent=1))
    trainer = make_trainer(model, dataset, settings, checkpoint_dir)
    last = get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None
    if last:
        print(f"Resuming from {last} (same audio and settings)")
    trainer.train(resume_from_checkpoint=last)
    return trainer.state.log_history


def loss_curve(log_history: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, loss)`` of the training log, loss as normalised MSE."""
    rows = [(row["step"], row["loss"]) for row in log_history if "loss" in row and "step" in row]
    if not rows:
        return np.zeros(0), np.zeros(0)
    steps, losses = zip(*rows)
    return np.asarray(steps), np.asarray(losses)


def loss_history(log_history: list[dict]) -> list[list[float]]:
    """The logged losses as ``[[step, loss], …]`` (loss as normalised MSE), for ``metrics.json``."""
    return [[int(step), float(loss)] for step, loss in zip(*loss_curve(log_history))]


# Seconds per fine-tuning step of the base-size encoder (scratch:base, the compute of
# wav2vec2-base-960h) at batch 8 on 2 CPU cores, frozen feature encoder:
# `python benchmarks/step_time.py --model scratch:base` (14.06 s on the development machine).
BASE_CPU_SECONDS_PER_STEP_BATCH_8 = 14.1


def cpu_runtime_note(model_name: str, max_steps: int, batch_size: int, cuda: bool) -> str | None:
    """A warning for a base-size encoder fine-tuned without a GPU, with the time to expect; ``None`` otherwise."""
    if cuda or model_name.startswith("scratch:tiny"):
        return None
    minutes = BASE_CPU_SECONDS_PER_STEP_BATCH_8 * batch_size / 8 * max_steps / 60
    return (
        f"No GPU: {max_steps} steps of {model_name} at batch {batch_size} will take about {minutes:.0f} min on a "
        "2-core CPU. In Colab choose Runtime → Change runtime type → GPU, or set MODEL_NAME = \"scratch:tiny\" "
        "for a quick offline run."
    )
