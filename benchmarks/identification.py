"""How well Ŝ is identified: the shipped NLMS against a least-squares fit of the same recording, on the tuning set.

Usage:
    python benchmarks/identification.py [--snr-db 30,20] [--out identification.json]

For every clip of the tuning set as the place's noise, in the room and the band-pass scene, the loudspeaker plays
the shipped excitation (``plant.identify_secondary_path``: 10 s of white noise, the place's noise ``--snr-db`` below it
at the error microphone) and the microphone records on for S's length after it stops. Ŝ is estimated twice from
that one recording: by the shipped NLMS (μ = ``IDENTIFICATION_STEP``, over the excitation's 10 s), and by least
squares over the whole recording (the Wiener–Hopf equations of the excitation's autocorrelation and its
cross-correlation with the microphone, ``scipy.linalg.solve_toeplitz``; exact, not windowed, because the recording
holds S's whole response to the last excitation sample), which an installer can compute once the recording ends.
Each record gives both misalignments (``plant.misalignment_db``) and carries the commit and the command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cancellation import load_suite  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc import plant as plants  # noqa: E402
from wav2vec2_anc.acoustics import make_scene  # noqa: E402


def least_squares_path(excitation: np.ndarray, measured: np.ndarray, taps: int) -> np.ndarray:
    """The FIR ``h`` of ``taps`` taps minimising ``Σ(measured − h∗excitation)²``, shape ``(taps,)``; ``measured`` is
    ``taps − 1`` samples longer than ``excitation``, the tail of its response."""
    from scipy.linalg import solve_toeplitz
    from scipy.signal import fftconvolve

    start = len(excitation) - 1
    autocorrelation = fftconvolve(excitation, excitation[::-1])[start : start + taps]
    cross = fftconvolve(measured, excitation[::-1])[start : start + taps]  # Σₙ m[n]·v[n − k], k = 0 … taps − 1
    return solve_toeplitz(autocorrelation, cross)


def clip_record(scene, place_noise: np.ndarray, snr_db: float) -> dict:
    """Ŝ's misalignment by NLMS and by least squares from one recording, dB."""
    taps = len(scene.secondary)
    rng = plants._excitation_rng(0)
    level = plants.excitation_rms(place_noise)
    excitation = level * rng.standard_normal(int(plants.IDENTIFICATION_SECONDS * helpers.SAMPLE_RATE))
    recording = np.concatenate([excitation, np.zeros(taps - 1)])  # the loudspeaker stops; the microphone records on
    measured = plants.recorded_with_anc_off(scene, recording, None,
                                            plants.identification_noise_rms(scene, place_noise, snr_db), place_noise, rng)
    nlms = plants._compiled_identification()(excitation / level, measured[: len(excitation)] / level, taps,
                                             plants.IDENTIFICATION_STEP, 1e-6)
    return {"nlms_misalignment_db": plants.misalignment_db(nlms, scene.secondary),
            "least_squares_misalignment_db": plants.misalignment_db(
                least_squares_path(excitation / level, measured / level, taps), scene.secondary)}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snr-db", default="30,20", help="the excitation above the place's noise, dB (default: 30,20)")
    parser.add_argument("--out", default="identification.json", help="JSON records (default: identification.json)")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()
    records = []
    for scene_name in ("room", "bandpass"):
        scene = make_scene(scene_name)
        for clip, audio in load_suite(None, 20.0, "tuning").items():
            for snr_db in (float(v) for v in args.snr_db.split(",")):
                record = {"scene": scene_name, "clip": clip, "snr_db": snr_db, **clip_record(scene, audio, snr_db)}
                print(record, flush=True)
                records.append(record)
    records = helpers.with_provenance(records, made_by)
    Path(args.out).write_text(helpers.dumps_strict(records))
    return records


if __name__ == "__main__":
    main()
