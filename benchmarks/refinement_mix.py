"""How the refinement's mix is built, chosen on the tuning set: the optimal controller's drive refined online, mixed
with plain (Fx)NLMS (two members), and with the drive as it came mixed inside or outside that mix (three members).

Usage:
    python benchmarks/refinement_mix.py [--scene none,room] [--latency-ms 1] [--out refinement_mix.json]

On every clip of the tuning set, plus a stress case (an engine drifting 30 → 60 Hz three times in 20 s, the tuning
set's seed), the controller fitted with Ŝ on the first 70 % plays as the fixed drive; each mix refines it from the
clip's first sample, and the held-out NR at the ear is set against the better of the controller and (Fx)NLMS at its
tuned step. ``inside``: ``(1 − λ)·((1 − κ)·y₀ + κ·y₂) + λ·y₁``, κ steered by ``Ŝ∗(y₂ − y₀)``; ``outside`` (shipped):
``(1 − κ)·((1 − λ)·y₀ + λ·y₁) + κ·y₂``, κ steered by ``Ŝ∗(y₂ − z)``. ``inside`` is the shipped loop with the two
mixes nested the other way (``fxnlms._fxnlms_loop``'s source with its mixing lines swapped), kept here only to
compare. Each record carries the commit and the command.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cancellation import load_suite  # noqa: E402
from suite import engine_noise  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc import fxnlms  # noqa: E402
from wav2vec2_anc.pairs import split_heldout  # noqa: E402

# The shipped loop's lines that nest the mixes, and the same lines nesting them the other way.
OUTSIDE = (
    """        drive[t] = own[0, t] if shares[t] == 0.0 else (1.0 - shares[t]) * own[0, t] + shares[t] * own[1, t]
        if controllers == 3 and fixed_shares[t] != 0.0:
            drive[t] = (1.0 - fixed_shares[t]) * drive[t] + fixed_shares[t] * own[2, t]
""",
    """                    slope *= 1.0 - fixed_share
""",
    """                fixed_slope = (gaps_at_ear[0] - gaps_at_ear[2]) - share * (gaps_at_ear[0] - gaps_at_ear[1])
""",
)
INSIDE = (
    """        inner = own[0, t]
        if controllers == 3 and fixed_shares[t] != 0.0:
            inner = (1.0 - fixed_shares[t]) * own[0, t] + fixed_shares[t] * own[2, t]
        drive[t] = inner if shares[t] == 0.0 else (1.0 - shares[t]) * inner + shares[t] * own[1, t]
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
    namespace = dict(fxnlms.__dict__)
    exec(source, namespace)  # noqa: S102 - the shipped function's own source, two lines swapped
    namespace["_mix_update"] = numba.njit(fxnlms._mix_update)
    return numba.njit(types.FunctionType(namespace["_fxnlms_loop"].__code__, namespace))


def clip_figures(audio, scene: str, delay: int, loops: dict) -> dict[str, float]:
    """Held-out NR at the ear of the controller, (Fx)NLMS and each mix of the refinement, on one clip, dB."""
    train, _ = split_heldout(audio, 0.3)
    start = len(train)
    plant, controller = helpers.make_plant(scene, "linear", train, delay, 512)
    fixed = helpers.controller_drive(audio, controller, delay)
    noise = plant.noise_at_ear(audio)[start:]

    def nr(drive):
        return helpers.noise_reduction_db(noise, plant.anti_noise_at_ear(drive)[start:])

    def refined(fixed_member: bool, loop: str = "shipped"):
        compiled = fxnlms._compiled_fxnlms
        fxnlms._compiled_fxnlms = lambda: loops[loop]  # fxnlms_drive runs what this returns
        try:
            return nr(fxnlms.fxnlms_refined_drive(audio, fixed, plant.scene, plant.secondary_estimate, delay, 512,
                                                  companion_step=plant.fxnlms_step, fixed_member=fixed_member))
        finally:
            fxnlms._compiled_fxnlms = compiled

    return {"wiener": nr(fixed),
            "fxnlms": nr(fxnlms.fxnlms_drive(audio, plant.scene, plant.secondary_estimate, delay, 512, plant.fxnlms_step)),
            "two_members": refined(False), "inside": refined(True, "inside"), "outside": refined(True)}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", default="none,room")
    parser.add_argument("--latency-ms", type=float, default=1.0)
    parser.add_argument("--out", default="refinement_mix.json")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()
    suite = load_suite(None, 20.0, "tuning")
    suite["engine_3cycles"] = engine_noise(20.0, 0, low_hz=30.0, high_hz=60.0, cycles=3.0)
    delay = helpers.latency_samples(args.latency_ms)
    loops, records = {"shipped": fxnlms._compiled_fxnlms(), "inside": inside_loop()}, []
    for scene in args.scene.split(","):
        for name, audio in suite.items():
            figures = clip_figures(audio, scene, delay, loops)
            best = max(figures["wiener"], figures["fxnlms"])
            records += [{"clip": name, "scene": scene, "latency_ms": args.latency_ms, "method": method, "nr_db": value,
                         "against_better_baseline_db": value - best} for method, value in figures.items()]
            print(scene, name, {k: round(v - best, 2) for k, v in figures.items()}, flush=True)
    records = helpers.with_provenance(records, made_by)
    Path(args.out).write_text(helpers.dumps_strict(records))
    return records


if __name__ == "__main__":
    main()
