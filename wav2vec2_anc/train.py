"""Train a canceller from the command line, with the notebook's recipe, and save it as the notebook does.

Usage:
    python -m wav2vec2_anc.train --audio PATH --model NAME --out DIR [--max-steps 300] [--latency-ms 0]
                                 [--scene none] [--loudspeaker linear] [--shared-filter learned] [--seed 0]
                                 [--filter-taps 512 …: any setting of settings.AdvancedSettings]

The flags are the notebook's parameters in lower case with dashes; every ``ADVANCED`` setting has its own flag.
The command calls the recipe's functions in the notebook's order (steps 3–7: load and check, the plant and the
pairs, the model, fine-tuning, the held-out evaluation), writes ``DIR/model`` and ``DIR/metrics.json`` with the
held-out WAVs, and resumes from the same fingerprinted checkpoints in ``DIR/checkpoints``. Under ``torchrun`` or
``accelerate launch`` every process fits the same filters (every fit is deterministic for a seed) and only the
main one writes the outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .audio_io import SAMPLE_RATE
from .config import latency_samples, warmup_samples
from .evaluation import format_comparison, headline, heldout_inverses, heldout_model_nr_db, run_metrics, write_outputs
from .pairs import load_clips, training_audio
from .plant import make_plant
from .recipe import build_canceller, fine_tune, min_train_samples, start_filters, training_pairs
from .settings import AdvancedSettings, advanced_settings
from .training import TrainSettings, run_fingerprint


def flag_value(text: str, default):
    """A flag's text as the type of its setting's default (``true``/``false`` for a bool)."""
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
        return text.lower() == "true"
    return type(default)(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wav2vec2_anc.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", required=True, help="a WAV/FLAC/OGG file or a folder of them (AUDIO_PATH)")
    parser.add_argument("--model", default="facebook/wav2vec2-base-960h",
                        help="MODEL_NAME: a hub name, a save_pretrained folder or scratch:tiny (default: %(default)s)")
    parser.add_argument("--out", required=True, help="OUTPUT_DIR: everything the run writes goes here")
    parser.add_argument("--max-steps", type=int, default=300, help="fine-tuning steps (default: %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="LATENCY_MS (default: %(default)s)")
    parser.add_argument("--scene", default="none", help="ACOUSTIC_SCENE: none, room, bandpass or a .npz (default: none)")
    parser.add_argument("--loudspeaker", default="linear", help="LOUDSPEAKER: linear or sat:R (default: linear)")
    parser.add_argument("--shared-filter", default="learned", choices=["learned", "wiener"],
                        help="SHARED_FILTER (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="SEED (default: %(default)s)")
    parser.add_argument("--no-evaluate", dest="evaluate", action="store_false",
                        help="save the model without step 7's held-out evaluation (for hours of audio it takes longer "
                             "than training; metrics.json is not written)")
    advanced = parser.add_argument_group("ADVANCED", "the notebook's ADVANCED settings (helpers.AdvancedSettings)")
    for field in dataclasses.fields(AdvancedSettings):
        advanced.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, default=None,
                              type=lambda text, default=field.default: flag_value(text, default),
                              help=f"default: {field.default}")
    return parser


def is_main_process() -> bool:
    """Whether this process writes the outputs: the only one, or rank 0 under torchrun / accelerate."""
    from accelerate import PartialState

    return PartialState().is_main_process


def main(argv=None) -> dict | None:
    """Run the recipe; return ``metrics.json``'s content (None on every process but the main one, or with
    ``--no-evaluate``)."""
    import transformers

    args = build_parser().parse_args(argv)
    advanced = advanced_settings({field.name: getattr(args, field.name) for field in dataclasses.fields(AdvancedSettings)
                                  if getattr(args, field.name) is not None})
    transformers.set_seed(args.seed)
    out = Path(args.out)
    head = advanced.head(args.latency_ms)
    warmup = warmup_samples(**head)
    segment_samples = int(advanced.segment_seconds * SAMPLE_RATE)
    hop_samples = int(advanced.segment_hop_seconds * SAMPLE_RATE)
    # Step 3: every file read and checked before anything slow.
    clips = load_clips(args.audio, min_train_samples(warmup, segment_samples, args.scene != "none"),
                       advanced.heldout_fraction)
    # Step 4: the plant as a real system measures it, the filters fitted with it, the pairs.
    delay = latency_samples(args.latency_ms)
    plant, wiener_filter = make_plant(args.scene, args.loudspeaker, training_audio(clips), delay, advanced.filter_taps,
                                      advanced.room_rt60, advanced.identification_snr_db, seed=args.seed)
    starts = start_filters(clips, plant, delay, advanced.filter_taps, file_bank=advanced.filter_bank,
                           stretches=advanced.stretch_bank, shared_filter=args.shared_filter,
                           bank_size=advanced.bank_size, seed=args.seed)
    dataset = training_pairs(starts, plant, segment_samples, hop_samples, warmup, advanced.bank_error_ms, args.seed)
    # Step 5: the model.
    safety = dict(safety_window_samples=int(advanced.safety_seconds * SAMPLE_RATE))
    model, train_shared_filter = build_canceller(args.model, {**head, **safety}, starts, plant, advanced.bank_error_ms,
                                                 args.shared_filter, args.seed)
    heldout_before_db = heldout_model_nr_db(model, clips, advanced.chunk_seconds, plant) if args.evaluate else None
    # Step 6: fine-tune, from the newest checkpoint of the same audio and settings.
    settings = TrainSettings(
        output_dir=str(out), max_steps=args.max_steps, batch_size=advanced.batch_size,
        learning_rate=advanced.learning_rate, head_learning_rate=advanced.head_learning_rate,
        train_shared_filter=train_shared_filter, freeze_feature_encoder=advanced.freeze_feature_encoder, seed=args.seed,
        save_steps=advanced.save_steps, logging_steps=max(1, args.max_steps // 50),
    )
    fingerprint = run_fingerprint(starts.fit_clips, model, settings, segment_samples=segment_samples,
                                  hop_samples=hop_samples, warmup_samples=warmup,
                                  heldout_fraction=advanced.heldout_fraction, plant=plant.describe(), balanced_pairs=True,
                                  filter_bank=starts.bank is not None)
    log_history, gate = fine_tune(model, dataset, settings, plant, starts, fingerprint)
    if gate:  # in a scene: whether the encoder's correction helped on the validation audio
        print(gate)
    metrics = write_run(args, advanced, out, model, clips, plant, wiener_filter, starts, log_history, heldout_before_db,
                        fingerprint) if is_main_process() else None
    finish_processes()
    return metrics


def finish_processes() -> None:
    """Under torchrun / accelerate: wait until the main process has written, then close the process group, so that
    no process leaves while the others still hold it (gloo can fail at exit otherwise)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def write_run(args, advanced, out: Path, model, clips, plant, wiener_filter, starts, log_history, heldout_before_db,
              fingerprint) -> dict | None:
    """Save the model and, unless ``--no-evaluate``, step 7: the held-out evaluation, written as the notebook writes
    it; return ``metrics.json``'s content."""
    model.save_pretrained(out / "model")
    if not args.evaluate:
        return None
    # Step 7: the held-out evaluation, written as the notebook writes it.
    heldout, inverses = heldout_inverses(model, clips, wiener_filter, advanced.chunk_seconds, plant)
    metrics = run_metrics(heldout, inverses, clips, plant, log_history, heldout_before_db, fingerprint,
                          latency_ms=args.latency_ms, audio_path=str(args.audio), model_name=args.model,
                          max_steps=args.max_steps, shared_filter=args.shared_filter,
                          filter_bank=list(starts.bank) if starts.bank else None, seed=args.seed)
    write_outputs(out, heldout, inverses["model"], metrics)
    print(headline(metrics["methods"], args.latency_ms, in_scene=not plant.is_identity))
    print(format_comparison(heldout, inverses))
    return metrics


if __name__ == "__main__":
    main()
