"""How the refinement's mix is built, chosen on the tuning set: the fixed drive refined online, mixed with plain
(Fx)NLMS (two members), and with the drive as it came mixed inside or outside that mix (three members), its share κ
at a quarter of the mix's step (shipped) or at the full step.

Usage:
    python benchmarks/refinement_mix.py [--scene none,room] [--latency-ms 1] [--network engine,…] [--out FILE]

On every clip of the tuning set, plus two stress cases under its seeds (an engine drifting 30 → 60 Hz three times in
20 s, and one drifting 25 → 70 Hz twice), the controller fitted with Ŝ on the first 70 % plays as the fixed drive
(``fixed_drive: wiener``); in the room, on the engines of ``--network``, so does the shipped model trained there as
``ablation.py`` trains it (``fixed_drive: network``: its drive moves with every update, which the controller's never
does). Each mix refines the fixed drive from the clip's first sample, and the held-out NR at the ear is set against
the better of the controller and (Fx)NLMS at its tuned step. ``inside``: ``(1 − λ)·((1 − κ)·y₀ + κ·y₂) + λ·y₁``,
κ steered by ``Ŝ∗(y₂ − y₀)``; ``outside`` (shipped): ``(1 − κ)·((1 − λ)·y₀ + λ·y₁) + κ·y₂``, κ steered by
``Ŝ∗(y₂ − z)`` at ``fxnlms.FIXED_MIX_STEP_SCALE`` of the mix's step; ``outside_full_kappa_step``: the same at the
full step. ``inside`` is the shipped loop with the two mixes nested the other way (``fxnlms._fxnlms_loop``'s source
with its mixing lines swapped), kept here only to compare. Each record carries the commit and the command.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cancellation import HELDOUT_FRACTION, add_run_arguments, fine_tune, load_suite  # noqa: E402
from suite import engine_noise  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc import fxnlms  # noqa: E402
from wav2vec2_anc.pairs import split_heldout  # noqa: E402

# The engines whose trained network's drive is refined too (in the room): where the network's drive moves most.
NETWORK_CLIPS = ("engine", "engine_3cycles", "engine_wide_2cycles")

# The shipped loop's lines that nest the mixes, and the same lines nesting them the other way.
OUTSIDE = (
    """        drive[t] = played[0, t] if shares[t] == 0.0 else (1.0 - shares[t]) * played[0, t] + shares[t] * played[1, t]
        if controllers == 3 and fixed_shares[t] != 0.0:
            drive[t] = (1.0 - fixed_shares[t]) * drive[t] + fixed_shares[t] * played[2, t]
""",
    """                    slope *= 1.0 - fixed_share
""",
    """                fixed_slope = (gaps_at_ear[0] - gaps_at_ear[2]) - share * (gaps_at_ear[0] - gaps_at_ear[1])
""",
)
INSIDE = (
    """        inner = played[0, t]
        if controllers == 3 and fixed_shares[t] != 0.0:
            inner = (1.0 - fixed_shares[t]) * played[0, t] + fixed_shares[t] * played[2, t]
        drive[t] = inner if shares[t] == 0.0 else (1.0 - shares[t]) * inner + shares[t] * played[1, t]
""",
    """                    slope += fixed_share * (gaps_at_ear[2] - gaps_at_ear[0])
""",
    """                fixed_slope = (1.0 - share) * (gaps_at_ear[0] - gaps_at_ear[2])
""",
)


def inside_loop():
    """``fxnlms._fxnlms_loop`` with the fixed member mixed inside, compiled."""
    import numba

    source = inspect.getsource(fxnlms._fxnlms_loop)
    for shipped, other in zip(OUTSIDE, INSIDE):
        if shipped not in source:
            raise RuntimeError("fxnlms._fxnlms_loop changed: update refinement_mix.OUTSIDE")
        source = source.replace(shipped, other)
    namespace = fxnlms.loop_namespace(fxnlms.__dict__)
    exec(source, namespace)  # noqa: S102 - the shipped function's own source, two lines swapped
    return numba.njit(types.FunctionType(namespace["_fxnlms_loop"].__code__, namespace))


def clip_figures(audio, plant, fixed, delay: int, taps: int, loops: dict) -> dict[str, float]:
    """Held-out NR at the ear of the fixed drive, (Fx)NLMS and each mix of the refinement of ``fixed``, on one clip, dB."""
    start = len(split_heldout(audio, HELDOUT_FRACTION)[0])
    noise = plant.noise_at_ear(audio)[start:]

    def nr(drive):
        return helpers.noise_reduction_db(noise, plant.anti_noise_at_ear(drive)[start:])

    def refined(fixed_member: bool, loop: str = "shipped", kappa_scale: float = fxnlms.FIXED_MIX_STEP_SCALE):
        compiled, scale = fxnlms._compiled_fxnlms, fxnlms.FIXED_MIX_STEP_SCALE
        fxnlms._compiled_fxnlms = lambda: loops[loop]  # fxnlms_drive runs what this returns
        fxnlms.FIXED_MIX_STEP_SCALE = kappa_scale  # read by fxnlms_drive at each call
        try:
            return nr(fxnlms.fxnlms_refined_drive(audio, fixed, plant.scene, plant.secondary_estimate, delay, taps,
                                                  companion_step=plant.fxnlms_step, fixed_member=fixed_member))
        finally:
            fxnlms._compiled_fxnlms, fxnlms.FIXED_MIX_STEP_SCALE = compiled, scale

    return {"fixed": nr(fixed),
            "fxnlms": nr(fxnlms.fxnlms_drive(audio, plant.scene, plant.secondary_estimate, delay, taps, plant.fxnlms_step)),
            "two_members": refined(False), "inside": refined(True, "inside"), "outside": refined(True),
            "outside_full_kappa_step": refined(True, kappa_scale=1.0)}


def network_drive(name: str, audio, plant, args, work_dir: Path):
    """The shipped model trained on the clip's first 70 % (as ``ablation.py`` trains it), its drive over the clip."""
    torch.manual_seed(args.seed)
    clip = helpers.Clip(name, *split_heldout(audio, HELDOUT_FRACTION))
    model, _ = fine_tune([clip], args.latency_ms, args, work_dir / name, plant, stretches=16)
    return helpers.closed_loop_drive(model, audio, plant)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="refinement_mix.json")
    parser.add_argument("--network", default=",".join(NETWORK_CLIPS),
                        help="in the room, also refine the trained network's drive on these clips ('' for none)")
    add_run_arguments(parser, max_steps=500, latency_ms="1", update_ms=50.0, context_seconds=0.25, safety_seconds=0.25,
                      bank_error_ms=10.0)
    parser.set_defaults(scene="none,room")
    args = parser.parse_args(argv)
    args.latency_ms = float(args.latency_ms)
    made_by = helpers.provenance()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    suite = {**load_suite(None, 20.0, "tuning"), **stress_cases()}
    delay, taps = helpers.latency_samples(args.latency_ms), args.filter_taps
    loops, records = {"shipped": fxnlms._compiled_fxnlms(), "inside": inside_loop()}, []
    networks = [name for name in args.network.split(",") if name]
    with tempfile.TemporaryDirectory() as work_dir:
        for scene in args.scene.split(","):
            for name, audio in suite.items():
                train, _ = split_heldout(audio, HELDOUT_FRACTION)
                plant, controller = helpers.make_plant(scene, "linear", train, delay, taps, args.rt60,
                                                       args.identification_snr_db, 1.0, args.seed)
                fixed = {"wiener": helpers.controller_drive(audio, controller, delay)}
                if scene == "room" and name in networks:
                    fixed["network"] = network_drive(name, audio, plant, args, Path(work_dir))
                controller_nr = None  # the optimal controller's held-out NR: the "wiener" kind's fixed drive
                for kind, drive in fixed.items():
                    figures = clip_figures(audio, plant, drive, delay, taps, loops)
                    controller_nr = figures["fixed"] if controller_nr is None else controller_nr
                    best = max(figures["fxnlms"], controller_nr)
                    records += [{"clip": name, "scene": scene, "latency_ms": args.latency_ms, "fixed_drive": kind,
                                 "method": method, "nr_db": value, "against_better_baseline_db": value - best}
                                for method, value in figures.items()]
                    print(scene, name, kind, {k: round(v - best, 2) for k, v in figures.items()}, flush=True)
                    Path(args.out).write_text(helpers.dumps_strict(helpers.with_provenance(records, made_by)))
    return helpers.with_provenance(records, made_by)


def stress_cases() -> dict:
    """Engines drifting faster than the tuning suite's, under its seeds: 30 → 60 Hz three times in 20 s, and
    25 → 70 Hz twice with 10 harmonics (the test set's drift shape, another seed)."""
    return {"engine_3cycles": engine_noise(20.0, 0, low_hz=30.0, high_hz=60.0, cycles=3.0),
            "engine_wide_2cycles": engine_noise(20.0, 4, low_hz=25.0, high_hz=70.0, cycles=2.0, harmonics=10)}


if __name__ == "__main__":
    main()
