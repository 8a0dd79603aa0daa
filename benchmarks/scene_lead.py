"""The acoustic lead, measured: the optimal linear controller's NR at the ear against latency, per scene.

Usage:
    python benchmarks/scene_lead.py [--scene bandpass,room] [--latency-ms 0,1,2,4,6,8,10,12,16,20]
                                    [--taps 512] [--out lead.json] [--plot lead.png]

For each scene and latency it fits the optimal causal linear controller (``fit_wiener_controller``,
true S) on the first 70 % of each clip and reports its held-out NR at the ear: white noise, a 50 Hz
mains hum with harmonics (generated, 20 s) and the bundled engine recording. No model is trained:
this is the physics every method works within. While the latency is inside the acoustic lead even
white noise is cancelled; beyond it, only what can be predicted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from suite import harmonic_noise, shaped_noise  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc.pairs import split_heldout  # noqa: E402


def lead_records(scenes: list[str], latencies_ms: list[float], taps: int) -> list[dict]:
    """One record per scene × clip × latency: ``scene``, ``lead_samples``, ``clip``, ``latency_ms``, ``nr_db``."""
    clips = {
        "white": shaped_noise(20.0, 0.0, seed=0),
        "mains_hum": harmonic_noise(20.0, 50.0, harmonics=8, seed=3),
        "engine_honda_nsx.wav": helpers.load_audio(helpers.SAMPLE_AUDIO_DIR / "engine_honda_nsx.wav"),
    }
    records = []
    for scene in scenes:
        for name, audio in clips.items():
            train, _ = split_heldout(audio, 0.3)
            for latency_ms in latencies_ms:
                delay = helpers.latency_samples(latency_ms)
                plant, wiener_filter = helpers.make_plant(scene, "linear", train, delay, taps)
                drive = helpers.controller_drive(audio, wiener_filter, delay)
                noise = plant.noise_at_ear(audio)[len(train):]
                nr = helpers.noise_reduction_db(noise, plant.anti_noise_at_ear(drive)[len(train):])
                records.append(dict(scene=scene, lead_samples=plant.scene.lead_samples, clip=name,
                                    latency_ms=latency_ms, nr_db=nr))
    return records


def plot_lead(records: list[dict], path: Path):
    """One panel per scene: NR against latency per clip, the lead marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenes = list(dict.fromkeys(r["scene"] for r in records))
    fig, axes = plt.subplots(1, len(scenes), figsize=(6 * len(scenes), 3.8), squeeze=False)
    for ax, scene in zip(axes[0], scenes):
        rows = [r for r in records if r["scene"] == scene]
        for clip in dict.fromkeys(r["clip"] for r in rows):
            points = [(r["latency_ms"], r["nr_db"]) for r in rows if r["clip"] == clip]
            ax.plot(*zip(*points), marker="o", label=clip)
        lead_ms = rows[0]["lead_samples"] / helpers.SAMPLE_RATE * 1000
        ax.axvline(lead_ms, color="k", linestyle="--", linewidth=0.8, label=f"acoustic lead {lead_ms:.1f} ms")
        ax.set_title(f"scene {scene}: optimal linear controller")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("held-out NR at the ear (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", default="bandpass,room")
    parser.add_argument("--latency-ms", default="0,1,2,4,6,8,10,12,16,20")
    parser.add_argument("--taps", type=int, default=512)
    parser.add_argument("--out", default="lead.json")
    parser.add_argument("--plot")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()
    records = lead_records(args.scene.split(","), [float(v) for v in args.latency_ms.split(",")], args.taps)
    records = helpers.with_provenance(records, made_by)
    Path(args.out).write_text(helpers.dumps_strict(records))
    for r in records:
        print(f"{r['scene']:<10} {r['clip']:<22} {r['latency_ms']:>5g} ms {r['nr_db']:>7.1f} dB")
    if args.plot:
        plot_lead(records, Path(args.plot))
    return records


if __name__ == "__main__":
    main()
