"""Cancellation benchmark: every method, every metric, on generated noises and real recordings.

Usage:
    python benchmarks/cancellation.py [--clips DIR] [--out results.json] [--model MODEL_NAME]
                                      [--max-steps N] [--latency-ms 0,1,5,20] [--shared-filter wiener]
                                      [--update-ms 50] [--context-seconds 0.25] [--safety-seconds 0.25]
                                      [--bank-error-ms 10]
                                      [--scene none,room,bandpass] [--loudspeaker linear,sat:2]
                                      [--stretch-bank 16] [--only engine,white] [--learning-rate 1e-4]
                                      [--plot results.png]

For each clip it trains on the first 70 % and evaluates on the last 30 %, for every method and
latency. With no ``--clips`` it runs the built-in suite: white, pink and brown noise, 50 Hz mains hum
with harmonics and a drifting engine tone (20 s each, generated), and the recordings in
``sample_audio/``. It prints a table and writes a JSON list of records, one per clip × method ×
latency (× scene × loudspeaker). Methods: ``negation`` (delayed by the latency), ``nlms``, ``wiener``,
``model``, ``model_no_encoder`` (the model with the encoder's features zeroed: its shared filter
alone), and for the generated stationary noises ``linear_bound``, the best any causal linear
predictor can do (computed from the spectrum; only ``nr_db`` is set).

``--scene`` puts a primary and a secondary path between the noise and the ear (``room``: the Deep
ANC room; ``bandpass``: NTU's band-pass paths; or a ``.npz``/2-channel WAV of your own) and
``--loudspeaker sat:R`` a saturating loudspeaker. There every figure is at the ear, and the methods
are ``wiener`` (the optimal causal linear controller, true S), ``fxnlms`` (online, with the identified
Ŝ), ``model``, ``model_no_encoder``, ``model_fxnlms`` (the model's drive refined online by FxNLMS at the
error microphone) and, with saturation, ``wiener_predistorted`` (the wiener drive
through the known inverse loudspeaker). Records carry ``scene``, ``loudspeaker``, ``eta`` and
``lead_samples``. With a linear loudspeaker the model starts at the optimal controller and one filter per
sixteenth of the training audio (``--stretch-bank``), held as fitted and mixed by the encoder and by each
filter's errors at the ear over the newest 10 ms (``--bank-error-ms``): it hears the error microphone, as
FxNLMS does, and is judged in the scene's closed loop (``inference.closed_loop_drive``).
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

from suite import linear_prediction_bound_db, shaped_noise_spectrum, synthetic_suite, test_suite  # noqa: E402

import helpers  # noqa: E402
from wav2vec2_anc.audio_io import list_audio_files  # noqa: E402
from wav2vec2_anc.pairs import split_heldout  # noqa: E402

HELDOUT_FRACTION = 0.3
METHODS = ("negation", "nlms", "fxnlms", "wiener", "wiener_true_s", "wiener_predistorted", "model", "model_no_encoder",
           "model_fxnlms", "linear_bound")
# The stretch bank of a linear scene. The room's drifting engine at 1 ms, the bank with the optimal controller
# mixed by its errors at the ear alone (no network; an exploratory script, not a committed command): 16
# stretches 21.2 dB, 8 stretches 17.7, 4 stretches 13.6; FxNLMS 18.3.
STRETCHES = 16
# Spectral exponents of the generated stationary noises, for their linear-prediction bound.
STATIONARY_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0, "white_test": 0.0, "pink_test": 1.0, "brown_test": 2.0}
# The test set's recordings (benchmarks/test_audio/SOURCES.md): no constant was tuned on them.
TEST_AUDIO_DIR = REPO / "benchmarks" / "test_audio"


def load_suite(clips_dir: str | None, seconds: float, suite: str = "tuning") -> dict[str, np.ndarray]:
    """The clips to run: the files of ``clips_dir``; or the tuning set (the generated suite plus ``sample_audio/``);
    or the test set (``suite.test_suite`` plus ``benchmarks/test_audio/``), which nothing was tuned on."""
    if clips_dir:
        return {path.name: helpers.load_audio(path) for path in list_audio_files(clips_dir)}
    if suite == "tuning":
        clips, folder = synthetic_suite(seconds), helpers.SAMPLE_AUDIO_DIR
    else:
        clips, folder = test_suite(seconds), TEST_AUDIO_DIR
    clips.update({path.name: helpers.load_audio(path) for path in list_audio_files(folder)})
    return clips


def only_clips(suite: dict[str, np.ndarray], names: str) -> dict[str, np.ndarray]:
    """The clips of ``suite`` named in ``names`` (comma-separated), in that order.

    Raises:
        KeyError: a name that is not a clip of the suite, before any work.
    """
    wanted = [name.strip() for name in names.split(",")]
    missing = sorted(set(wanted) - set(suite))
    if missing:
        raise KeyError(f"--only {missing}: not among the clips {sorted(suite)}")
    return {name: suite[name] for name in wanted}


def record(clip: str, method: str, latency_ms: float, metrics: dict, **extra) -> dict:
    """One JSON record; every record has the same keys."""
    return {
        "clip": clip,
        "method": method,
        "latency_ms": latency_ms,
        **metrics,
        "train_seconds": extra.pop("train_seconds", 0.0),
        "model_name": extra.pop("model_name", None),
        **extra,
    }


def plant_record(plant) -> dict:
    """The plant's fields of a record: the scene, the true η and what the system identified (Ŝ's misalignment, η̂, μ)."""
    described = plant.describe()
    return dict(scene=plant.scene.name, loudspeaker=plant.loudspeaker, lead_samples=plant.scene.lead_samples,
                **{key: described[key] for key in ("eta", "eta_estimate", "identification_snr_db", "s_hat_misalignment_db",
                                                   "fxnlms_step")})


def run_clip(name: str, audio: np.ndarray, latencies_ms: list[float], args, work_dir: Path,
             scene: str = "none", loudspeaker: str = "linear") -> list[dict]:
    """All methods at all latencies on one clip, in one scene with one loudspeaker."""
    train, heldout = split_heldout(audio, HELDOUT_FRACTION)
    clips = [helpers.Clip(name=name, train=train, heldout=heldout)]
    records = []
    for latency_ms in latencies_ms:
        delay = helpers.latency_samples(latency_ms)
        plant, wiener_filter = helpers.make_plant(scene, loudspeaker, train, delay, args.filter_taps, args.rt60,
                                                  args.identification_snr_db, args.eta_error, args.seed)
        where = {**plant_record(plant), "eta_error": args.eta_error}
        if name in STATIONARY_EXPONENTS and plant.is_identity:
            bound = linear_prediction_bound_db(shaped_noise_spectrum(STATIONARY_EXPONENTS[name]), delay)
            empty = dict.fromkeys(["nr_db_median_1s", "nr_db_worst10_1s", "nr_dba", "octave_nr_db"])
            records.append(record(name, "linear_bound", latency_ms, {**empty, "nr_db": bound}, **where))
        run_dir = work_dir / f"{name}_{scene}_{loudspeaker}_{latency_ms:g}ms".replace(":", "").replace("/", "_")
        model, train_seconds = fine_tune(clips, latency_ms, args, run_dir, plant, stretches=args.stretch_bank)
        noise, anti_noise = helpers.heldout_inverses(model, clips, wiener_filter, plant=plant)
        # Streamed in 20 ms blocks over the whole clip, to measure the real-time factor (a model that hears
        # the error microphone is fed the noise there, the loop's start: the compute is the same).
        ear = plant.noise_at_ear(audio) if model.needs_ear_noise else None
        _, stream_rtf = helpers.stream_inverse(model, audio, block_samples=helpers.latency_samples(20), ear_noise=ear)
        for method, inverse in anti_noise.items():
            extra = dict(train_seconds=train_seconds, model_name=args.model, update_ms=args.update_ms,
                         update_lag_ms=args.update_lag_ms, encoder_update_ms=args.encoder_update_ms,
                         context_seconds=args.context_seconds, learning_rate=args.learning_rate,
                         stretch_bank=helpers.stretch_count(args.stretch_bank, plant),
                         bank_error_ms=args.bank_error_ms if model.config.bank_error_window_samples else 0.0,
                         ) if method.startswith("model") else {}
            if method.startswith("model") and not plant.is_identity:
                extra["encoder_correction"] = model.encoder_correction
            if method == "model":
                extra["stream_rtf"] = stream_rtf
            records.append(record(name, method, latency_ms, helpers.all_metrics(noise, inverse), **where, **extra))
    return records


def fine_tune(clips, latency_ms: float, args, output_dir: Path, plant, file_bank: bool = False, stretches: int = 0):
    """A model for this latency and plant, fine-tuned on the clips' training parts.

    Its filters start where the notebook's do (``recipe.start_filters``): fitted with Ŝ and, in a scene, on the
    training audio less its validation tail, which then gates the encoder's correction.

    Args:
        file_bank: start the encoder's basis at one optimal controller per clip (``fit_filter_bank``).
        stretches: where their errors at the ear can steer them (``helpers.stretch_count``), start the basis at
            the optimal controller and ``fit_stretch_bank``'s filters of this many stretches of the audio,
            held as fitted; their errors over the newest ``args.bank_error_ms`` join the encoder's logits. 0: none.

    Returns:
        ``(model, train_seconds)``.
    """
    head = helpers.head_settings(latency_ms, args.update_ms, args.context_seconds, args.update_lag_ms, args.encoder_update_ms,
                                 filter_taps=args.filter_taps,
                                 safety_window_samples=int(args.safety_seconds * helpers.SAMPLE_RATE))
    starts = helpers.start_filters(clips, plant, helpers.latency_samples(latency_ms), args.filter_taps,
                                   file_bank=file_bank, stretches=stretches, shared_filter=args.shared_filter)
    model, train_shared_filter = helpers.build_canceller(args.model, head, starts, plant, args.bank_error_ms,
                                                         args.shared_filter, args.seed)
    dataset = helpers.training_pairs(starts, plant, helpers.SAMPLE_RATE, helpers.SAMPLE_RATE // 4, model.training_warmup,
                                     args.bank_error_ms, args.seed)
    settings = helpers.TrainSettings(
        output_dir=str(output_dir), max_steps=args.max_steps, seed=args.seed, learning_rate=args.learning_rate,
        train_shared_filter=train_shared_filter, save_steps=args.max_steps,
        logging_steps=max(1, args.max_steps // 10), progress_bar=False,
    )
    start = time.perf_counter()
    helpers.fine_tune(model, dataset, settings, plant, starts)
    return model, time.perf_counter() - start


def format_table(records: list[dict]) -> str:
    """A fixed-width table: one row per clip × latency × method."""
    header = f"{'clip':<24} {'ms':>4} {'method':<17} {'NR dB':>7} {'med 1s':>7} {'worst10':>7} {'dBA':>7} {'train s':>7}"
    rows = [header, "-" * len(header)]
    cell = lambda value: f"{value:>7.1f}" if value is not None else f"{'':>7}"  # noqa: E731
    for r in records:
        rows.append(
            f"{r['clip']:<24} {r['latency_ms']:>4g} {r['method']:<17} {cell(r['nr_db'])} {cell(r['nr_db_median_1s'])} "
            f"{cell(r['nr_db_worst10_1s'])} {cell(r['nr_dba'])} {cell(r['train_seconds'])}"
        )
    return "\n".join(rows)


def plot_results(records: list[dict], path: Path, ceiling_db: float = 60.0):
    """One panel per clip: held-out NR against latency for every method (exact cancellation drawn at the ceiling).

    With a single latency, one bar chart of the median 1-s NR instead.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len({r["latency_ms"] for r in records}) == 1:
        return plot_bars(records, path)
    clips = list(dict.fromkeys(r["clip"] for r in records))
    columns = 4
    fig, axes = plt.subplots(-(-len(clips) // columns), columns, figsize=(16, 3.6 * -(-len(clips) // columns)), squeeze=False)
    styles = {"linear_bound": dict(color="k", linestyle=":", marker=None)}
    for ax, clip in zip(axes.flat, clips):
        for method in METHODS:
            rows = sorted((r for r in records if r["clip"] == clip and r["method"] == method), key=lambda r: r["latency_ms"])
            if rows:
                latencies = [r["latency_ms"] for r in rows]
                values = np.clip([r["nr_db"] for r in rows], -10, ceiling_db)
                ax.plot(latencies, values, **{"marker": "o", "label": method, **styles.get(method, {})})
        ax.set_title(clip, fontsize=10)
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("held-out NR (dB)")
        ax.set_ylim(-10, ceiling_db + 2)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(clips):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"Noise reduction against latency (values beyond {ceiling_db:g} dB, such as exact cancellation, "
                 f"drawn at {ceiling_db:g})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_bars(records: list[dict], path: Path, ceiling_db: float = 150.0):
    """Bars of the held-out median 1-s NR per clip and method, at the records' one latency."""
    import matplotlib.pyplot as plt

    clips = list(dict.fromkeys(r["clip"] for r in records))
    methods = [m for m in METHODS if m != "linear_bound" and any(r["method"] == m for r in records)]
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(13, 4.5))
    for i, method in enumerate(methods):
        values = [next(r["nr_db_median_1s"] for r in records if r["clip"] == clip and r["method"] == method) for clip in clips]
        ax.bar(np.arange(len(clips)) + i * width, np.minimum(values, ceiling_db), width, label=method)
    ax.axhline(30, color="k", linestyle="--", linewidth=0.8, label="30 dB target")
    ax.set_xticks(np.arange(len(clips)) + 0.4 - width / 2, clips, rotation=15, ha="right")
    ax.set_ylabel(f"held-out median 1-s NR (dB, capped at {ceiling_db:g})")
    ax.set_title(f"Noise reduction at {records[0]['latency_ms']:g} ms latency (exact negation: ∞, drawn at the cap)")
    ax.legend(ncol=len(methods) + 1, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def add_run_arguments(parser, *, max_steps: int, latency_ms: str, update_ms: float, context_seconds: float,
                      safety_seconds: float, bank_error_ms: float = 0.0,
                      encoder_update_ms: float = helpers.AdvancedSettings.encoder_update_ms) -> None:
    """The options ``fine_tune`` and the scene loop read, shared with ``switching.py`` (their defaults differ)."""
    parser.add_argument("--model", default="scratch:tiny", help="MODEL_NAME for the model rows (default: scratch:tiny)")
    parser.add_argument("--max-steps", type=int, default=max_steps,
                        help=f"fine-tuning steps per model (default: {max_steps})")
    parser.add_argument("--latency-ms", default=latency_ms, help=f"comma-separated latencies in ms (default: {latency_ms})")
    parser.add_argument("--learning-rate", type=float, default=helpers.TrainSettings.learning_rate,
                        help="the encoder's learning rate, the notebook's ADVANCED['learning_rate'] (default: "
                             f"{helpers.TrainSettings.learning_rate:g}, for pretrained weights)")
    parser.add_argument("--shared-filter", default="wiener", choices=["wiener", "learned"],
                        help="the model's shared filter: closed-form Wiener start, held fixed, or learned from zero")
    parser.add_argument("--filter-taps", type=int, default=helpers.HEAD_DEFAULTS["filter_taps"],
                        help="taps of the model's filter, the Wiener filters and (Fx)NLMS (default: 512)")
    parser.add_argument("--update-ms", type=float, default=update_ms,
                        help=f"how often the encoder updates the filter (ADVANCED['block_ms']; default: {update_ms:g})")
    parser.add_argument("--encoder-update-ms", type=float, default=encoder_update_ms,
                        help="how often the encoder computes an update, a whole number of --update-ms; the blocks "
                             f"between reuse it (ADVANCED['encoder_update_ms']; default: {encoder_update_ms:g})")
    parser.add_argument("--update-lag-ms", type=float, default=helpers.AdvancedSettings.update_lag_ms,
                        help="how much older the input each encoder update is computed from than its block's own past "
                             f"(ADVANCED['update_lag_ms']; default: {helpers.AdvancedSettings.update_lag_ms:g})")
    parser.add_argument("--context-seconds", type=float, default=context_seconds,
                        help=f"what the encoder hears per update (ADVANCED['context_seconds']; default: {context_seconds:g})")
    parser.add_argument("--safety-seconds", type=float, default=safety_seconds,
                        help=f"the past the safety gains judge (ADVANCED['safety_seconds']; default: {safety_seconds:g})")
    parser.add_argument("--bank-error-ms", type=float, default=bank_error_ms,
                        help="with a filter bank: the newest ms of each context on which the bank's own errors "
                             "(at the ear in a scene, through a linear loudspeaker only) join the encoder's logits, the "
                             f"notebook's ADVANCED['bank_error_ms'] (0: off; default: {bank_error_ms:g})")
    parser.add_argument("--scene", default="none",
                        help="comma-separated acoustic scenes: none, room, bandpass or a .npz/2-channel WAV (default: none)")
    parser.add_argument("--loudspeaker", default="linear", help="comma-separated: linear, sat:R (default: linear)")
    parser.add_argument("--rt60", type=float, default=0.2, help="the room scene's reverberation time, s (default: 0.2)")
    parser.add_argument("--identification-snr-db", type=float, default=helpers.IDENTIFICATION_SNR_DB,
                        help="in a scene: the excitation that identifies Ŝ and the loudspeaker, above the place's noise at "
                             f"the error microphone, dB (default: {helpers.IDENTIFICATION_SNR_DB:g})")
    parser.add_argument("--eta-error", type=float, default=1.0,
                        help="a factor on the identified loudspeaker's η, to mis-set it on purpose (default: 1, as measured)")
    parser.add_argument("--suite", default="tuning", choices=["tuning", "test"],
                        help="without --clips: the tuning set (the built-in suite and sample_audio/) or the test set, "
                             "which nothing was tuned on (default: tuning)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each generated clip (default: 20)")
    parser.add_argument("--seed", type=int, default=0, help="for the generated clips, the model and every draw (default: 0)")


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", help="folder of audio files (default: the built-in suite)")
    parser.add_argument("--only", help="comma-separated clip names: run these of the suite or folder alone")
    parser.add_argument("--out", default="results.json", help="JSON records (default: results.json)")
    parser.add_argument("--stretch-bank", type=int, default=STRETCHES,
                        help="in a scene with a linear loudspeaker: start the encoder's basis at the optimal controller "
                             "and one per stretch of each clip's training audio, this many stretches "
                             "(baselines.fit_stretch_bank), mixed by the encoder and, with --bank-error-ms, by their "
                             f"errors at the ear (0: the learned rank-8 basis; default: {STRETCHES})")
    add_run_arguments(parser, max_steps=500, latency_ms="0", update_ms=50.0, context_seconds=0.25, safety_seconds=0.25,
                      bank_error_ms=10.0)
    parser.add_argument("--plot", help="also save a bar chart of the results here (PNG)")
    args = parser.parse_args(argv)
    made_by = helpers.provenance()  # the code this run ran, before anything can change it
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    latencies = [float(v) for v in args.latency_ms.split(",")]
    suite = load_suite(args.clips, args.seconds, args.suite)
    if args.only:
        try:
            suite = only_clips(suite, args.only)
        except KeyError as error:
            parser.error(error.args[0])
    records = []
    with tempfile.TemporaryDirectory() as work_dir:
        for name, audio in tqdm(suite.items(), desc="clips", unit="clip"):
            for scene in args.scene.split(","):
                for loudspeaker in args.loudspeaker.split(","):
                    records.extend(run_clip(name, audio, latencies, args, Path(work_dir), scene, loudspeaker))
            # An interrupted run keeps what it finished.
            Path(args.out).write_text(helpers.dumps_strict(helpers.with_provenance(records, made_by)))
    print(format_table(records))
    records = helpers.with_provenance(records, made_by)
    Path(args.out).write_text(helpers.dumps_strict(records))
    if args.plot:
        plot_results(records, Path(args.plot))
    return records


if __name__ == "__main__":
    main()
