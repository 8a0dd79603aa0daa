"""Seconds per fine-tuning step, as the notebook trains (``transformers.Trainer``, default head settings).

Usage:
    python benchmarks/step_time.py [--model scratch:base] [--batch-size 8] [--steps 3] [--latency-ms 0]
                                   [--precision {auto,fp16,bf16,fp32}] [--pairs {on-the-fly,in-memory}]

Trains on generated pink noise cut into the notebook's pairs (1-s segments plus the model's warm-up)
for ``--steps`` timed steps after one untimed step, on the GPU when there is one (with the mixed
precision the notebook uses, or the one ``--precision`` names), and prints the mean seconds per step.
``scratch:base`` has the architecture and compute of ``facebook/wav2vec2-base-960h``; the weights do
not change the time. ``--pairs in-memory`` copies every pair into a ``datasets.Dataset`` first, as the pairs were
built before they were cut on the fly (``pairs.TrainingPairs``), to time the two side by side.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from suite import shaped_noise  # noqa: E402

import helpers  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="scratch:base")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--precision", choices=["auto", "fp16", "bf16", "fp32"], default="auto",
                        help="on a GPU; auto: the notebook's (helpers.mixed_precision: bf16 from capability 8.0, else fp16)")
    parser.add_argument("--pairs", choices=["on-the-fly", "in-memory"], default="on-the-fly",
                        help="cut each pair when a batch is drawn (as shipped), or copy them all first (default: on-the-fly)")
    args = parser.parse_args(argv)
    import torch
    from transformers import TrainerCallback

    model = helpers.build_model(args.model, **helpers.head_settings(args.latency_ms, 50.0, 0.25))
    model.start_shared_filter("learned")
    audio = shaped_noise(20.0, 1.0)
    clips = [helpers.Clip("pink", train=audio, heldout=audio[:1])]
    dataset = helpers.build_dataset(clips, helpers.SAMPLE_RATE, helpers.SAMPLE_RATE // 4, model.training_warmup)
    if args.pairs == "in-memory":
        import datasets

        dataset = datasets.Dataset.from_list([{k: v.numpy() for k, v in row.items()} for row in dataset]).with_format("torch")
    ends = []

    class Clock(TrainerCallback):
        def on_step_end(self, *_, **__):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        settings = helpers.TrainSettings(output_dir=out, max_steps=args.steps + 1, batch_size=args.batch_size,
                                         save_steps=10_000, progress_bar=False,
                                         precision=None if args.precision == "auto" else args.precision)
        trainer = helpers.make_trainer(model, dataset, settings)
        trainer.add_callback(Clock())
        trainer.train()
    seconds = (ends[-1] - ends[0]) / args.steps
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if cuda else "CPU"
    auto = helpers.mixed_precision(torch.cuda.get_device_capability() if cuda else None)
    result = {"model": args.model, "batch_size": args.batch_size, "device": device,
              "precision": auto if args.precision == "auto" else args.precision,
              "pairs": args.pairs, "seconds_per_step": round(seconds, 4)}
    print(result)
    return result


if __name__ == "__main__":
    main()
