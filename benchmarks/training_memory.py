"""Peak memory of training on an hour of audio against a minute: the pairs are cut on the fly, so memory grows with
the audio, not with the pairs.

Usage:
    python benchmarks/training_memory.py [--minutes 1,60] [--steps 20] [--out training_memory.json]

For each length it writes that many one-minute files of generated pink noise (16 kHz, float32 WAV, other seeds each)
to a temporary folder and runs ``python -m wav2vec2_anc.train --audio FOLDER --model scratch:tiny --max-steps STEPS
--no-evaluate`` in a child process, whose peak resident memory (``ru_maxrss``) is the figure. Training only: the
held-out evaluation of an hour of audio is left out (``--no-evaluate``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from suite import shaped_noise  # noqa: E402

import helpers  # noqa: E402

# Run in a fresh interpreter, so that RUSAGE_CHILDREN holds the training process alone.
PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_training_mb(folder: Path, out: Path, steps: int) -> float:
    """Peak resident memory of the training command on ``folder``, MB (``ru_maxrss`` is in KiB on Linux)."""
    command = [sys.executable, "-m", "wav2vec2_anc.train", "--audio", str(folder), "--model", "scratch:tiny",
               "--out", str(out), "--max-steps", str(steps), "--no-evaluate"]
    result = subprocess.run([sys.executable, "-c", PEAK, *command], cwd=REPO, capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1]) / 1024


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", default="1,60", help="comma-separated lengths of audio, one file per minute")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default="training_memory.json")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()
    records = []
    for minutes in (int(m) for m in args.minutes.split(",")):
        with tempfile.TemporaryDirectory() as work:
            folder = Path(work) / "audio"
            folder.mkdir()
            for i in range(minutes):
                helpers.save_audio(folder / f"pink_{i:03d}.wav", 0.1 * shaped_noise(60.0, 1.0, seed=100 + i))
            peak = peak_training_mb(folder, Path(work) / "run", args.steps)
        records.append({"minutes": minutes, "steps": args.steps, "peak_rss_mb": round(peak, 1)})
        print(records[-1], flush=True)
    records = helpers.with_provenance(records, made_by)
    Path(args.out).write_text(json.dumps(records, indent=1))
    return records


if __name__ == "__main__":
    main()
