"""What FxNLMS's online adaptation is worth: FxNLMS as it runs, and held fixed where the training audio ends.

Usage:
    python benchmarks/fxnlms_tracking.py [--scene room] [--latency-ms 0,1] [--taps 512] [--refine-steps 1,1.5,2]
        [--out tracking.json]

For each clip of the built-in suite (the generated noises and ``sample_audio/``), split 70/30 as in
``cancellation.py``, it reports the held-out NR at the ear of: ``fxnlms``, adapting online through the
whole clip as in the scene benchmark; ``fxnlms_held``, the same run with its weights held from the first
held-out sample on (``fxnlms_drive(adapt_samples=…)``), so a fixed filter learned online from the
training part alone, as the model is one fitted there; and ``wiener``, the optimal fixed filter of the
training part; and ``wiener_fxnlms``, that optimal fixed filter's drive refined online by FxNLMS
(``fxnlms_refined_drive``, as ``model_fxnlms`` refines the model's), at the refinement's step, and with
``--refine-steps`` also at other multiples of FxNLMS's step rule (``wiener_fxnlms_x1.5`` …). Where ``fxnlms`` is far ahead of both
fixed filters, what wins is following the noise as it changes, which no filter fixed at the end of training
can do. No model is trained (under a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cancellation import load_suite  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc.fxnlms import fxnlms_drive, fxnlms_refined_drive  # noqa: E402
from wav2vec2_anc.pairs import split_heldout  # noqa: E402


def tracking_records(scene: str, latencies_ms: list[float], taps: int, seconds: float = 20.0,
                     refine_steps: tuple[float, ...] = ()) -> list[dict]:
    """One record per clip × latency: ``clip``, ``scene``, ``latency_ms`` and the NR in dB of each method
    (``wiener_fxnlms_x{s:g}`` for each step scale of ``refine_steps``)."""
    records = []
    for name, audio in load_suite(None, seconds).items():
        train, _ = split_heldout(audio, 0.3)
        for latency_ms in latencies_ms:
            delay = helpers.latency_samples(latency_ms)
            plant, wiener_filter = helpers.make_plant(scene, "linear", train, delay, taps)
            drives = {
                "fxnlms": fxnlms_drive(audio, plant.scene, plant.secondary_estimate, delay, taps),
                "fxnlms_held": fxnlms_drive(audio, plant.scene, plant.secondary_estimate, delay, taps,
                                            adapt_samples=len(train)),
                "wiener": helpers.controller_drive(audio, wiener_filter, delay),
            }
            drives["wiener_fxnlms"] = fxnlms_refined_drive(audio, drives["wiener"], plant.scene, plant.secondary_estimate,
                                                          delay, taps)
            for scale in refine_steps:
                drives[f"wiener_fxnlms_x{scale:g}"] = fxnlms_refined_drive(
                    audio, drives["wiener"], plant.scene, plant.secondary_estimate, delay, taps, step_scale=scale)
            noise = plant.noise_at_ear(audio)[len(train):]
            records.append(dict(clip=name, scene=scene, latency_ms=latency_ms, **{
                method: helpers.noise_reduction_db(noise, plant.anti_noise_at_ear(drive)[len(train):])
                for method, drive in drives.items()}))
    return records


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", default="room", help="an acoustic scene: room, bandpass or a measured .npz (default: room)")
    parser.add_argument("--latency-ms", default="0,1", help="comma-separated latencies in ms (default: 0,1)")
    parser.add_argument("--taps", type=int, default=512, help="taps of FxNLMS and the Wiener filter (default: 512)")
    parser.add_argument("--refine-steps", default="",
                        help="comma-separated step scales (× FxNLMS's rule) to refine the Wiener drive at too (default: none)")
    parser.add_argument("--out", default="tracking.json", help="JSON records (default: tracking.json)")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()
    steps = tuple(float(v) for v in args.refine_steps.split(",") if v)
    records = tracking_records(args.scene, [float(v) for v in args.latency_ms.split(",")], args.taps, refine_steps=steps)
    records = helpers.with_provenance(records, made_by)
    Path(args.out).write_text(helpers.dumps_strict(records))
    extra = [f"wiener_fxnlms_x{scale:g}" for scale in steps]
    print(f"{'clip':<24} {'ms':>4} {'fxnlms':>8} {'held':>8} {'wiener':>8} {'refined':>8}"
          + "".join(f" {f'×{scale:g}':>8}" for scale in steps) + "   (held-out NR at the ear, dB)")
    for r in records:
        print(f"{r['clip']:<24} {r['latency_ms']:>4g} {r['fxnlms']:>8.1f} {r['fxnlms_held']:>8.1f} {r['wiener']:>8.1f} "
              f"{r['wiener_fxnlms']:>8.1f}" + "".join(f" {r[key]:>8.2f}" for key in extra))
    return records


if __name__ == "__main__":
    main()
