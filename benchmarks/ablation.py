"""Ablation: what each of the canceller's mechanisms adds, on the test set, at one latency.

Usage:
    python benchmarks/ablation.py [--suite test] [--scene none,room,bandpass] [--latency-ms 1] [--loudspeaker linear]
                                  [--only engine_lotus.wav,…] [--out ablation.json] [--max-steps 500]

For each clip and scene it sets the plant up and trains the shipped model once (``cancellation.fine_tune``, the
notebook's recipe at the benchmark's settings), then judges it on the held-out tail as shipped and with one
mechanism switched off at a time. Every variant is judged twice: the network's drive alone (``refined: false``)
and refined online at the error microphone (``refined: true``, ``fxnlms.fxnlms_refined_drive``: FxNLMS on top of
the drive, mixed with plain FxNLMS; without a scene S = Ŝ = 1 and it is NLMS). The variants:

- ``shipped``: the model as trained.
- ``no_encoder``: the encoder's features zeroed. With a bank its own errors still steer it: that is
  ``bank_by_errors``, with the model's safety settings; without one the shared filter alone.
- ``no_gate``: the encoder's correction kept whatever the validation gate said (scenes only).
- ``no_bank_errors``: the encoder alone steers the bank (scenes with a bank).
- ``no_bank``: a second model, trained without the stretch bank: the rank-8 basis learned from zero (scenes).
- ``no_correction_gain``, ``no_output_gain``, ``no_safety_gains``: the safety gains (without a scene, where
  they are on), one, the other, both, set to 1.
- (at commit 24db5da, before their removal: ``with_significance`` and ``with_safety_memory``, the two safety
  mechanisms that were off as shipped, switched on at z = 2 and a 0.25-s memory.)
- ``no_predistortion``: with a saturating loudspeaker (``--loudspeaker sat:2``), the drive sent as it is, not
  through the identified curve's inverse (``model.shape_drive``), and refined as it is sent. (Before commit
  c3c9ab5, ``no_output_stage``: without the learned output stage, a 16-unit pointwise MLP that the inverse replaced.)
- ``no_refinement_mix``: the refinement without its mix (``refined: true`` only).
- ``no_fixed_member``: the refinement's mix without its third member, the drive as it came (``refined: true`` only).
- ``no_refinement_predistortion``: with a saturating loudspeaker, the refinement's correction added to the drive as
  sent, not before the identified curve's inverse (``refined: true`` only).

The baselines (``wiener``, fitted with Ŝ; ``nlms`` or ``fxnlms`` at the plant's step; ``wiener_true_s``, a bound)
run on the same clip. Each record carries ``nr_db`` and ``worst_1s_db``, the held-out tail's worst 1-s segment
(the "never amplifies" rule: no segment below −0.5 dB), and the commit and command that made it.
``python benchmarks/report.py FILE…`` prints the tables (``ablation_report``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cancellation import (  # noqa: E402
    HELDOUT_FRACTION,
    add_run_arguments,
    fine_tune,
    load_suite,
    only_clips,
    plant_record,
)

import helpers  # noqa: E402
from wav2vec2_anc.evaluation import baseline_drives, fxnlms_refined_anti_noise_at_ear, heldout_noise_at_ear  # noqa: E402
from wav2vec2_anc.metrics import segment_noise_reduction_db  # noqa: E402
from wav2vec2_anc.pairs import split_heldout  # noqa: E402


@contextlib.contextmanager
def switched_off(model, mechanism: str):
    """``model`` with one mechanism changed at inference, restored on exit (see the module's list)."""
    config, gate = model.config, model.encoder_correction
    saved = {key: getattr(config, key) for key in ("bank_error_window_samples", "safety_window_samples")}
    try:
        if mechanism in ("no_encoder", "no_gate"):
            model.set_encoder_correction(True)
        if mechanism == "no_encoder":
            model.encoder_features = lambda windows: windows.new_zeros(len(windows), config.hidden_size)
        elif mechanism == "no_bank_errors":
            config.bank_error_window_samples = 0
        elif mechanism == "no_safety_gains":
            config.safety_window_samples = 0
        elif mechanism == "no_predistortion":
            model.shape_drive = lambda drive: drive
        elif mechanism in ("no_correction_gain", "no_output_gain"):
            column = 0 if mechanism == "no_correction_gain" else 1
            guard = type(model).guard_gains.__get__(model)

            def guard_gains(*args, **kwargs):
                gains = guard(*args, **kwargs).clone()
                gains[..., column] = 1.0
                return gains

            model.guard_gains = guard_gains
        yield model
    finally:
        for key, value in saved.items():
            setattr(config, key, value)
        for patched in ("encoder_features", "guard_gains", "shape_drive"):
            model.__dict__.pop(patched, None)
        model.set_encoder_correction(gate)


def variants(plant, model) -> list[str]:
    """The mechanisms this model has to switch off, in this plant (``switched_off``'s names)."""
    names = ["shipped", "no_encoder"]
    if not plant.is_identity:
        names.append("no_gate")
        if model.config.bank_error_window_samples:
            names.append("no_bank_errors")
    if model.safety_window:
        names += ["no_correction_gain", "no_output_gain", "no_safety_gains"]
    if model.loudspeaker_eta is not None:
        names.append("no_predistortion")
    return names


def judged(noise: np.ndarray, anti_noise: np.ndarray) -> dict:
    """NR over the held-out tail and its worst 1-s segment, dB."""
    return {"nr_db": helpers.noise_reduction_db(noise, anti_noise),
            "worst_1s_db": float(np.min(segment_noise_reduction_db(noise, anti_noise)))}


def model_records(model, clip, plant, names: list[str], trained: str = "shipped") -> list[dict]:
    """Every variant of ``names`` of ``model``: the network alone, then refined online."""
    audio = np.concatenate([clip.train, clip.heldout])
    noise, start = heldout_noise_at_ear(clip, plant), len(clip.train)
    at_ear = lambda drive: plant.anti_noise_at_ear(drive)[start:]  # noqa: E731
    records = []
    for name in names:
        with switched_off(model, name):
            drive = helpers.closed_loop_drive(model, audio, plant)
        variant = trained if name == "shipped" else name
        records.append({"variant": variant, "refined": False, **judged(noise, at_ear(drive))})
        # Without pre-distortion nothing is sent through f̂⁻¹, the refinement included.
        refined = fxnlms_refined_anti_noise_at_ear(model, clip, plant, drive=drive, predistort=name != "no_predistortion")
        records.append({"variant": variant, "refined": True, **judged(noise, refined)})
        if name == "shipped" and trained == "shipped":
            options = [("no_refinement_mix", {"mix": False}), ("no_fixed_member", {"fixed_member": False})]
            if model.loudspeaker_eta is not None:
                options.append(("no_refinement_predistortion", {"predistort": False}))
            for variant, members in options:
                records.append({"variant": variant, "refined": True,
                                **judged(noise, fxnlms_refined_anti_noise_at_ear(model, clip, plant, drive=drive, **members))})
    return records


def run_clip(name: str, audio: np.ndarray, scene: str, latency_ms: float, args, work_dir: Path) -> list[dict]:
    """Baselines, the shipped model's variants and, with a stretch bank, the model trained without it: one clip."""
    train, heldout = split_heldout(audio, HELDOUT_FRACTION)
    clip = helpers.Clip(name=name, train=train, heldout=heldout)
    delay = helpers.latency_samples(latency_ms)
    plant, wiener_filter = helpers.make_plant(scene, args.loudspeaker, train, delay, args.filter_taps, args.rt60,
                                              args.identification_snr_db, eta_error=args.eta_error, seed=args.seed)
    true_s = None if plant.is_identity else helpers.fit_wiener_controller(train, plant.scene, delay, args.filter_taps)
    noise, whole = heldout_noise_at_ear(clip, plant), np.concatenate([train, heldout])
    records = [{"variant": method, "refined": False,
                **judged(noise, plant.anti_noise_at_ear(drive(whole))[len(train):])}
               for method, drive in baseline_drives(plant, wiener_filter, delay, args.filter_taps, true_s).items()]
    run_dir = work_dir / f"{name}_{scene}_{latency_ms:g}ms".replace("/", "_")
    torch.manual_seed(args.seed)
    model, _ = fine_tune([clip], latency_ms, args, run_dir, plant, stretches=args.stretch_bank)
    records += model_records(model, clip, plant, variants(plant, model))
    gate = model.encoder_correction
    if model.config.filter_bank:
        without_bank, _ = fine_tune([clip], latency_ms, args, run_dir / "no_bank", plant, stretches=0)
        records += model_records(without_bank, clip, plant, ["shipped"], trained="no_bank")
    where = {"clip": name, "scene": scene, "latency_ms": latency_ms, "update_lag_ms": args.update_lag_ms,
             "encoder_update_ms": args.encoder_update_ms, "encoder_correction": gate, **plant_record(plant)}
    return [{**where, **r} for r in records]


def run_suite(args, run_clip, label) -> list[dict]:
    """``run_clip(name, audio, scene, latency_ms, args, work_dir)`` over every scene, clip and latency of ``args``,
    printing each clip's ``label(record)``s and writing the records (with provenance) to ``args.out`` after each
    clip, so an interrupted run keeps what it finished."""
    made_by = helpers.provenance()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    suite = load_suite(None, args.seconds, args.suite)
    if args.only:
        suite = only_clips(suite, args.only)
    records = []
    with tempfile.TemporaryDirectory() as work_dir:
        for scene in args.scene.split(","):
            for name, audio in suite.items():
                for latency_ms in (float(v) for v in args.latency_ms.split(",")):
                    clip_records = run_clip(name, audio, scene, latency_ms, args, Path(work_dir))
                    print(f"{scene} {name}: " + ", ".join(label(r) for r in clip_records), flush=True)
                    records += clip_records
                Path(args.out).write_text(helpers.dumps_strict(helpers.with_provenance(records, made_by)))
    return helpers.with_provenance(records, made_by)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated clip names of the suite")
    parser.add_argument("--out", default="ablation.json", help="JSON records (default: ablation.json)")
    parser.add_argument("--stretch-bank", type=int, default=16, help="the shipped model's stretch bank (default: 16)")
    add_run_arguments(parser, max_steps=500, latency_ms="1", update_ms=50.0, context_seconds=0.25, safety_seconds=0.25,
                      bank_error_ms=10.0)
    parser.set_defaults(suite="test", scene="none,room,bandpass")
    return run_suite(parser.parse_args(argv), run_clip,
                     lambda r: f"{r['variant']}{'+r' if r['refined'] else ''} {r['nr_db']:.1f}")


if __name__ == "__main__":
    main()
