"""Switching benchmark: one canceller trained on a library of noises, judged on a sequence that switches between them.

Usage:
    python benchmarks/switching.py [--clips DIR] [--latency-ms 1,5] [--scene none] [--loudspeaker linear]
                                   [--switch-seconds 3] [--switches N] [--out switching.json]
                                   [--model scratch:tiny] [--max-steps 2000] [--with-white]
                                   [--filter-bank files] [--update-ms 10] [--context-seconds 0.1]
                                   [--bank-error-ms 10] [--safety-seconds 0.01]
                                   [--encoder-update-ms 10] [--update-lag-ms 50] [--backends int8,onnx]
                                   [--plot switching.png] [--seed 0]

The library is the files of ``--clips``, or by default the switching suite (``suite.switching_suite``:
mains hum at 50 and 60 Hz, engines at three fixed speeds, brown noise; ``--with-white`` adds white
noise) plus ``sample_audio/engine_honda_nsx.wav``. Every clip is scaled to an RMS of 0.1, so no clip
outweighs another in the closed-form fits by being louder, and split: the first 70 % trains, the last
30 % is held out. ONE model is trained on the training parts of all of them, the notebook's way with a
folder (``cancellation.fine_tune``): the ``"wiener"`` start with the library-wide optimal controller as
the shared filter, held fixed; with ``--filter-bank files`` (the default) the encoder's basis starts at
one optimal controller per file, which it mixes with softmax weights (``model.start_filter_bank``), and
half the training pairs switch file part-way (``pairs.switch_pairs``); every file gives the same number
of pairs (``pairs.build_dataset``). ``--filter-bank none`` is the rank-8 basis learned from zero.
Each bank filter's own errors over the newest 10 ms of every context join the encoder's mixing logits
(``--bank-error-ms``, ``signal_path.bank_error_logits``): they tell a change of noise within milliseconds,
where the encoder needs its context to fill. In a scene with a linear loudspeaker they are judged at the
ear: the model then hears the error microphone and runs in the scene's closed loop.
The encoder updates every 10 ms on 0.1 s of context (ending ``--update-lag-ms`` before its block, the shipped 50
unless told) and the safety gains judge the last 0.01 s, the span the bank's errors judge: a change of noise
has to be acted on within ms (the notebook's stationary defaults are 50 ms, 0.25 s, 0.25 s).
Two more safety mechanisms, a significance test on the gains and a safety memory of
the block's own filter, were measured here and removed (benchmarks/README.md, "Ablation"): at worst they kept
the recordings' worst segment at +0.001 dB where it is −0.06 dB without them, and cost 0.2–1.0 dB elsewhere.

The test sequence (``switching_sequence``) cycles through the clips' held-out parts in a seeded order,
switching clip every ``--switch-seconds``, each segment scaled to the same RMS at the reference microphone.

What each method sees: the sequence, from its first sample, and nothing else, as a deployed canceller
would. No method is told where the switches are or which noise plays, except the two oracles, which are
told both. At a switch the online filters carry their adaptation, the
model its context window and the fixed filters their taps over from the noise before; the first
segment is a cold start for every method alike. Methods, at the same latency and scene:

- ``wiener_library``: one optimal causal linear controller fitted on all the training audio end to end
  (``fit_wiener_controller`` with the scene's true S), the model's shared filter;
- ``nlms`` without a scene, ``fxnlms`` in one: online from zero weights through the whole sequence;
- ``wiener_oracle``: during each segment, the optimal controller fitted on that segment's own clip's
  training audio (``optimal_bank``): a filter bank with a perfect noise classifier that switches at the very sample;
- ``wiener_oracle_blocks``: the same bank and classifier on the model's schedule, each block taking the filter
  of the clip its context's newest sample belongs to, with the model's glide (``oracle_drive`` with ``block``);
- ``bank_by_errors`` (with ``--bank-error-ms``, without a scene): the bank the model starts from
  (``fit_filter_bank``: the same fits with a white floor 30 dB down, ``BANK_LOADING``, so that a filter still
  playing after a switch cannot boost the new noise much) mixed by its filters' own recent errors alone, on the
  model's schedule (``bank_error_drive``), no network: what the model's mix would be with a silent encoder;
- ``model`` and ``model_no_encoder`` (its shared filter alone): the model's drive over the whole sequence;
  ``model_int8`` (with ``--backends int8``): the same model, its encoder on another backend; without a scene, where
  the safety gains play, ``model_no_output_gain``: the same model with the gain on its output held at 1
  (``ablation.switched_off``), to judge that gain where its job is, after a switch of noise.

Every figure is at the ear (``Plant.noise_at_ear``, ``Plant.anti_noise_at_ear``), as in
``evaluation.heldout_inverses``. Records (strict JSON, ``helpers.dumps_strict``), one per method ×
latency × scene × loudspeaker: ``nr_db`` (whole sequence), ``nr_db_median_segment``,
``nr_db_after_switch_1s`` (the median over switches of the NR in the first second after each),
``segment_nr_db`` (per segment), ``window_nr_db_100ms`` (per 100 ms, for the plot), ``segments``
(``[clip, start, stop, source offset]``, samples), ``train_seconds``, ``model_name`` and the setting.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablation import switched_off  # noqa: E402
from cancellation import TEST_AUDIO_DIR, add_run_arguments, fine_tune, plant_record  # noqa: E402
from report import switching_tables  # noqa: E402
from suite import TEST_SWITCHING_RECORDING, switching_suite, test_switching_suite  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc.audio_io import at_rms, list_audio_files  # noqa: E402
from wav2vec2_anc.pairs import split_heldout  # noqa: E402
from wav2vec2_anc.plots import plot_switching  # noqa: E402
from wav2vec2_anc.switching import (  # noqa: E402
    CLIP_RMS,
    MIN_SWITCHES,
    Segment,
    default_switches,
    method_drives,
    optimal_bank,
    switching_records,
    switching_sequence,
)

HELDOUT_FRACTION = 0.3


# ── the library ──


def load_library(clips_dir: str | None, seconds: float, seed: int = 0, with_white: bool = False,
                 suite: str = "tuning") -> dict[str, np.ndarray]:
    """The clips, each scaled to ``CLIP_RMS``: the files of ``clips_dir``; or the switching suite plus the Honda sample
    (the tuning set); or ``test_switching_suite`` plus a test recording (the test set)."""
    if clips_dir:
        library = {path.name: helpers.load_audio(path) for path in list_audio_files(clips_dir)}
    elif suite == "test":
        library = test_switching_suite(seconds)
        library[TEST_SWITCHING_RECORDING] = helpers.load_audio(TEST_AUDIO_DIR / TEST_SWITCHING_RECORDING)
    else:
        library = switching_suite(seconds, seed, with_white)
        library[helpers.DEFAULT_SAMPLE.name] = helpers.load_audio(helpers.DEFAULT_SAMPLE)
    return {name: at_rms(audio, CLIP_RMS) for name, audio in library.items()}


def library_clips(library: dict[str, np.ndarray], heldout_fraction: float = HELDOUT_FRACTION) -> list[helpers.Clip]:
    """Each clip split into its training head and held-out tail (``pairs.split_heldout``)."""
    return [helpers.Clip(name, *split_heldout(audio, heldout_fraction)) for name, audio in library.items()]


# ── a run ──


def run_setting(clips: list[helpers.Clip], sequence: np.ndarray, segments: list[Segment], latency_ms: float, args,
                work_dir: Path, scene: str = "none", loudspeaker: str = "linear") -> list[dict]:
    """Train one model on every clip's training part and judge every method on the sequence, at the ear.

    Returns:
        One record per method.
    """
    delay = helpers.latency_samples(latency_ms)
    plant, library_filter = helpers.make_plant(scene, loudspeaker, helpers.training_audio(clips), delay,
                                               args.filter_taps, args.rt60, args.identification_snr_db, args.eta_error,
                                               args.seed)
    run_dir = work_dir / f"{scene}_{loudspeaker}_{latency_ms:g}ms".replace(":", "").replace("/", "_")
    model, train_seconds = fine_tune(clips, latency_ms, args, run_dir, plant, file_bank=args.filter_bank == "files")
    # bank_by_errors mixes the bank the model started from, fitted as the model's was (recipe.start_filters).
    filter_bank = helpers.start_filters(clips, plant, delay, args.filter_taps, file_bank=True).bank
    drives = method_drives(sequence, segments, plant, library_filter, filter_bank, delay, args.filter_taps, model,
                           optimal_bank(clips, plant.scene, delay, args.filter_taps))
    for backend in args.backends:  # the same trained model, its encoder on another backend
        drives[f"model_{backend}"] = helpers.closed_loop_drive(helpers.with_backend(model, backend), sequence, plant)
    if model.safety_window:  # the output's safety gain is for a noise the filters were not fitted for: after a switch
        with switched_off(model, "no_output_gain"):
            drives["model_no_output_gain"] = helpers.closed_loop_drive(model, sequence, plant)
    anti_noise = {method: plant.anti_noise_at_ear(drive) for method, drive in drives.items()}
    records = switching_records(plant.noise_at_ear(sequence), anti_noise, segments, latency_ms=latency_ms,
                                **plant_record(plant),
                                switch_seconds=args.switch_seconds, filter_bank=args.filter_bank,
                                safety_seconds=args.safety_seconds)
    for r in records:
        trained = r["method"].startswith("model")
        r.update(train_seconds=train_seconds if trained else 0.0, model_name=args.model if trained else None,
                 learning_rate=args.learning_rate if trained else None,
                 encoder_update_ms=args.encoder_update_ms if trained else None,
                 update_lag_ms=args.update_lag_ms if trained else None)
    return records


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", help="folder of audio files, the library (default: the switching suite)")
    parser.add_argument("--out", default="switching.json", help="JSON records (default: switching.json)")
    # A change of noise must be heard, and acted on, within tens of ms: shorter updates, context and
    # safety window than the notebook's stationary defaults (benchmarks/README.md has the measurements).
    add_run_arguments(parser, max_steps=2000, latency_ms="1,5", update_ms=10.0, context_seconds=0.1, safety_seconds=0.01,
                      bank_error_ms=10.0, encoder_update_ms=10.0)
    parser.add_argument("--switch-seconds", type=float, default=3.0, help="seconds between switches (default: 3)")
    parser.add_argument("--switches", type=int, help=f"how many switches (default: every clip twice, at least {MIN_SWITCHES})")
    parser.add_argument("--with-white", action="store_true", help="add white noise to the generated library")
    parser.add_argument("--filter-bank", default="files", choices=["files", "none"],
                        help="the encoder's basis: start at one optimal filter per file (files) or learn rank 8 from zero")
    parser.add_argument("--plot", help="also save NR against time across the switches here (PNG)")
    parser.add_argument("--backends", default="", help="comma-separated: also judge the trained model with its encoder "
                        "on each of these backends (int8, onnx), as model_<backend>")
    args = parser.parse_args(argv)
    args.backends = [backend for backend in args.backends.split(",") if backend]
    for backend in args.backends:
        if backend not in helpers.installed_backends():
            parser.error(f"--backends: {backend!r} is not an installed backend ({', '.join(helpers.installed_backends())})")
    made_by = helpers.provenance()  # the code this run ran, before anything can change it
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    clips = library_clips(load_library(args.clips, args.seconds, args.seed, args.with_white, args.suite))
    switches = args.switches or default_switches(len(clips))
    sequence, segments = switching_sequence({c.name: c.heldout for c in clips}, args.switch_seconds, switches, args.seed)
    records = []
    with tempfile.TemporaryDirectory() as work_dir:
        for latency_ms in [float(v) for v in args.latency_ms.split(",")]:
            for scene in args.scene.split(","):
                for loudspeaker in args.loudspeaker.split(","):
                    start = time.perf_counter()
                    records.extend(run_setting(clips, sequence, segments, latency_ms, args, Path(work_dir), scene, loudspeaker))
                    print(f"{latency_ms:g} ms, {scene}, {loudspeaker}: {time.perf_counter() - start:.0f} s", flush=True)
                    # An interrupted run keeps what it finished.
                    Path(args.out).write_text(helpers.dumps_strict(helpers.with_provenance(records, made_by)))
    records = helpers.with_provenance(records, made_by)
    print(switching_tables(records))
    if args.plot:
        plot_switching(records, Path(args.plot))
    return records


if __name__ == "__main__":
    main()
