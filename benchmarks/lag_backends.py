"""What real time costs in noise reduction: how often the encoder updates, its update lag, and its backend.

Usage:
    python benchmarks/lag_backends.py [--suite test] [--scene none,room,bandpass] [--latency-ms 1]
                                      [--timings 50/0,100/50,100/100] [--only engine_lotus.wav,…]
                                      [--out lag_backends.json]

For each clip and scene the shipped model is trained once per timing ``E/L``: the encoder computes an update every
``E`` ms (``encoder_update_ms``, a whole number of the 50-ms blocks; the blocks between reuse it) from input ``L`` ms
older than its block's own past (``update_lag_ms``). Both are part of the model, so each is trained with its own, as
``ablation.py`` trains it, and judged on the held-out tail: the network alone and refined online (the canceller).
``50/0`` is the model without real-time timing (every block its own update, no lag), the reference. The shipped
timing (``AdvancedSettings``) is also judged with its encoder on every other installed backend
(``helpers.with_backend``: int8 dynamic quantization, ONNX Runtime). Each record carries ``encoder_update_ms``,
``update_lag_ms``, ``backend``, ``refined``, ``nr_db``, ``worst_1s_db``, whether the validation gate kept the encoder
(where it did not, neither the timing nor the backend changes anything), and the commit and command. ``python
benchmarks/report.py FILE`` prints each one's difference from the reference, per clip.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ablation import judged, run_suite  # noqa: E402
from cancellation import HELDOUT_FRACTION, add_run_arguments, fine_tune, plant_record  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc.evaluation import fxnlms_refined_anti_noise_at_ear, heldout_noise_at_ear  # noqa: E402
from wav2vec2_anc.pairs import split_heldout  # noqa: E402


def judge_model(model, clip, plant) -> list[dict]:
    """The network alone and refined online, over the held-out tail."""
    audio = np.concatenate([clip.train, clip.heldout])
    noise = heldout_noise_at_ear(clip, plant)
    drive = helpers.closed_loop_drive(model, audio, plant)
    return [{"refined": False, **judged(noise, plant.anti_noise_at_ear(drive)[len(clip.train):])},
            {"refined": True, **judged(noise, fxnlms_refined_anti_noise_at_ear(model, clip, plant, drive=drive))}]


def run_clip(name: str, audio: np.ndarray, scene: str, latency_ms: float, args, work_dir: Path) -> list[dict]:
    """Every lag's model, and the shipped lag's on every installed backend: one clip, one scene."""
    train, heldout = split_heldout(audio, HELDOUT_FRACTION)
    clip = helpers.Clip(name=name, train=train, heldout=heldout)
    plant, _ = helpers.make_plant(scene, args.loudspeaker, train, helpers.latency_samples(latency_ms), args.filter_taps,
                                  args.rt60, args.identification_snr_db, eta_error=args.eta_error, seed=args.seed)
    records = []
    shipped = (helpers.AdvancedSettings.encoder_update_ms, helpers.AdvancedSettings.update_lag_ms)
    for every_ms, lag_ms in parse_timings(args.timings):
        torch.manual_seed(args.seed)
        run_args = argparse.Namespace(**{**vars(args), "encoder_update_ms": every_ms, "update_lag_ms": lag_ms})
        run_dir = work_dir / f"{name}_{scene}_{every_ms:g}_{lag_ms:g}ms".replace("/", "_")
        model, _ = fine_tune([clip], latency_ms, run_args, run_dir, plant, stretches=args.stretch_bank)
        backends = ["torch"]
        if (every_ms, lag_ms) == shipped:
            backends += [backend for backend in helpers.installed_backends() if backend != "torch"]
        for backend in backends:
            judged_model = model if backend == "torch" else helpers.with_backend(model, backend)
            records += [{"encoder_update_ms": every_ms, "update_lag_ms": lag_ms, "backend": backend,
                         "encoder_correction": model.encoder_correction, **r} for r in judge_model(judged_model, clip, plant)]
    where = {"clip": name, "scene": scene, "latency_ms": latency_ms, **plant_record(plant)}
    return [{**where, **r} for r in records]


def parse_timings(text: str) -> list[tuple[float, float]]:
    """``"50/0,100/50"`` → ``[(50.0, 0.0), (100.0, 50.0)]``: (encoder update period, update lag), ms."""
    try:
        return [(float(every), float(lag)) for every, lag in (item.split("/") for item in text.split(","))]
    except ValueError as error:
        raise SystemExit(f"--timings takes E/L pairs in ms, comma-separated (50/0,100/50), got {text!r}") from error


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated clip names of the suite")
    parser.add_argument("--out", default="lag_backends.json", help="JSON records (default: lag_backends.json)")
    parser.add_argument("--timings", default="50/0,100/50,100/100",
                        help="the timings to train with, E/L: an encoder update every E ms from input L ms older "
                             "(default: 50/0,100/50,100/100; 50/0 is the reference)")
    parser.add_argument("--stretch-bank", type=int, default=16, help="the shipped model's stretch bank (default: 16)")
    add_run_arguments(parser, max_steps=500, latency_ms="1", update_ms=50.0, context_seconds=0.25, safety_seconds=0.25,
                      bank_error_ms=10.0)
    parser.set_defaults(suite="test", scene="none,room,bandpass")
    return run_suite(parser.parse_args(argv), run_clip, lambda r: f"{r['encoder_update_ms']:g}/{r['update_lag_ms']:g} "
                     f"{r['backend']}{'+r' if r['refined'] else ''} {r['nr_db']:.2f}")


if __name__ == "__main__":
    main()
