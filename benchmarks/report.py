"""Markdown tables of benchmark results, as shown in the README.

Usage:
    python benchmarks/report.py results.json [more.json ...]

For each latency in the records: one row per clip, one column per method, each cell the held-out
median 1-s NR in dB (the whole-clip NR and the worst 10 % follow in a second table for the model),
and the model's training seconds and streaming real-time factor. Then the predict-ahead targets
(issue 4), each with its worst case and whether it holds, and the acoustic-scene targets (issue 9).

Records of ``ablation.py`` get its tables (``ablation_report``). Records of ``switching.py`` (noise that changes,
issue 10) get that benchmark's own tables and the
switching targets: on the built-in switching suite the headline ones, with ``--with-white`` the
never-amplify one alone, and on any other library the ones for real recordings.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablation_report import ablation_tables, is_ablation  # noqa: E402
from ablation_report import target_checks as ablation_checks  # noqa: E402
from lag_backends_report import is_lag_backends, lag_backend_tables  # noqa: E402
from lag_backends_report import target_checks as lag_backend_checks  # noqa: E402

from wav2vec2_anc.metrics import lower_median  # noqa: E402
from wav2vec2_anc.records import loads_strict  # noqa: E402

METHODS = ("negation", "nlms", "fxnlms", "wiener", "wiener_true_s", "wiener_predistorted", "model", "model_no_encoder",
           "model_fxnlms", "linear_bound")
# The identification SNR a run uses unless it says otherwise (plant.IDENTIFICATION_SNR_DB; records carry theirs).
DEFAULT_IDENTIFICATION_SNR_DB = 30.0


def cell(value) -> str:
    if value is None:
        return ""
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.1f}"


def eta_error(record: dict) -> float:
    """The factor the run set on the identified η (its record's ``eta_error``, or ``--eta-error`` in its command), 1 if none."""
    if "eta_error" in record:
        return float(record["eta_error"])
    command = record.get("command") or []
    for i, word in enumerate(command):
        if word == "--eta-error":
            return float(command[i + 1])
        if word.startswith("--eta-error="):
            return float(word.split("=", 1)[1])
    return 1.0


def setting(record: dict) -> tuple[str, str, float]:
    """``(scene, loudspeaker, latency_ms)``; records made before scenes existed are ``none``, ``linear``.

    A run off the honest protocol's defaults says so in its loudspeaker: ``"sat:2, η̂×1.2"`` for η mis-set on
    purpose, ``"linear, Ŝ at 20 dB"`` for an identification at another SNR.
    """
    loudspeaker = record.get("loudspeaker", "linear")
    if eta_error(record) != 1.0:
        loudspeaker += f", η̂×{eta_error(record):g}"
    snr_db = record.get("identification_snr_db")
    if snr_db is not None and snr_db != DEFAULT_IDENTIFICATION_SNR_DB and record.get("scene", "none") != "none":
        loudspeaker += f", Ŝ at {snr_db:g} dB"
    return record.get("scene", "none"), loudspeaker, record["latency_ms"]


def latency_table(records: list[dict], latency_ms: float) -> str:
    """Median 1-s NR of every method per clip (the bound: whole-clip NR), plus the model's worst 10 %.

    ``records`` must hold one scene and loudspeaker (``setting``).
    """
    rows = [r for r in records if r["latency_ms"] == latency_ms]
    clips = list(dict.fromkeys(r["clip"] for r in rows))
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    header = ["clip", *methods, "model worst 10%", "train s", "stream RTF"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for clip in clips:
        by_method = {r["method"]: r for r in rows if r["clip"] == clip}
        values = [cell(by_method[m]["nr_db"] if m == "linear_bound" else by_method[m]["nr_db_median_1s"])
                  if m in by_method else "" for m in methods]
        model = by_method.get("model", {})
        extra = [cell(model.get("nr_db_worst10_1s")), cell(model.get("train_seconds")),
                 f"{model['stream_rtf']:.3f}" if "stream_rtf" in model else ""]
        lines.append("| " + " | ".join([clip, *values, *extra]) + " |")
    return "\n".join(lines)


def margin_db(nr_db: float, reference_db: float) -> float:
    """``nr_db − reference_db``, with ∞ − ∞ (both exact) counted as 0."""
    return 0.0 if nr_db == reference_db else nr_db - reference_db


def target_checks(records: list[dict]) -> list[tuple[str, str, bool]]:
    """The predict-ahead targets as ``(target, worst case found, holds)``.

    - never amplify: the model's worst-10 % 1-s NR ≥ −0.5 dB on every clip at every latency;
    - linear predictor: the model's NR ≥ the Wiener predictor's NR − 1 dB on every clip and latency;
    - tones: mains hum ≥ 30 dB at 1 ms (when that row was run);
    - streaming: every model record's ``stream_rtf`` ≤ 0.5.
    """
    records = [r for r in records if setting(r)[:2] == ("none", "linear")]
    models = [r for r in records if r["method"] == "model"]
    wiener = {(r["clip"], r["latency_ms"]): r["nr_db"] for r in records if r["method"] == "wiener"}
    where = lambda r: f"{r['clip']} at {r['latency_ms']:g} ms"  # noqa: E731
    checks = []
    worst = min(models, key=lambda r: r["nr_db_worst10_1s"])
    checks.append(("model worst-10% 1-s NR ≥ −0.5 dB", f"{cell(worst['nr_db_worst10_1s'])} dB, {where(worst)}",
                   worst["nr_db_worst10_1s"] >= -0.5))
    margins = [(margin_db(r["nr_db"], wiener[r["clip"], r["latency_ms"]]), r) for r in models
               if (r["clip"], r["latency_ms"]) in wiener]
    margin, closest = min(margins, key=lambda pair: pair[0])
    checks.append(("model NR ≥ Wiener NR − 1 dB", f"{margin:+.1f} dB, {where(closest)}", margin >= -1.0))
    hum = [r for r in models if r["clip"] == "mains_hum" and r["latency_ms"] == 1.0]
    if hum:
        checks.append(("mains hum ≥ 30 dB at 1 ms", f"{cell(hum[0]['nr_db'])} dB", hum[0]["nr_db"] >= 30.0))
    slowest = max(models, key=lambda r: r.get("stream_rtf", 0.0))
    if "stream_rtf" in slowest:
        checks.append(("stream RTF ≤ 0.5", f"{slowest['stream_rtf']:.3f}, {where(slowest)}", slowest["stream_rtf"] <= 0.5))
    return checks


def linear_scene_checks(rows: list[dict], label: str, nr) -> list[tuple[str, str, bool]]:
    """For one method's records at one setting: ≥ wiener − 1 dB, ≥ fxnlms and worst-10 % ≥ −0.5 dB on every clip.

    ``nr(clip, method)`` is another method's whole-clip NR at the same setting.
    """
    to_wiener = min((margin_db(r["nr_db"], nr(r["clip"], "wiener")), r["clip"]) for r in rows)
    to_fxnlms = min((margin_db(r["nr_db"], nr(r["clip"], "fxnlms")), r["clip"]) for r in rows)
    worst = min(rows, key=lambda r: r["nr_db_worst10_1s"])
    return [
        (f"{label} ≥ wiener − 1 dB", f"{to_wiener[0]:+.1f} dB, {to_wiener[1]}", to_wiener[0] >= -1.0),
        (f"{label} ≥ fxnlms", f"{to_fxnlms[0]:+.1f} dB, {to_fxnlms[1]}", to_fxnlms[0] >= 0.0),
        (f"{label} worst-10% 1-s NR ≥ −0.5 dB", f"{cell(worst['nr_db_worst10_1s'])} dB, {worst['clip']}",
         worst["nr_db_worst10_1s"] >= -0.5),
    ]


def scene_target_checks(records: list[dict]) -> list[tuple[str, str, bool]]:
    """The acoustic-scene targets of the honest protocol as ``(target, worst case or median found, holds)``, on whole-clip NR.

    - linear loudspeaker, every scene but ``none``, D ∈ {0, 1 ms}: model ≥ wiener − 1 dB, model ≥ fxnlms, and
      the model's worst-10 % 1-s NR ≥ −0.5 dB, on every clip; the same for ``model_fxnlms`` where it was run;
    - saturating loudspeaker at 1 ms, η̂ as identified: model − wiener ≥ 3 dB and model − fxnlms ≥ 3 dB in the
      median over clips;
    - η̂ mis-set on purpose (``--eta-error``): model ≥ wiener and worst-10 % ≥ −0.5 dB on every clip;
    - Ŝ identified at another SNR (robustness): model ≥ fxnlms − 0.5 dB and worst-10 % ≥ −0.5 dB on every clip.
    """
    import statistics

    def nr(clip, method, where):
        return next(r["nr_db"] for r in records if r["clip"] == clip and r["method"] == method and setting(r) == where)

    def never_amplifies(rows, label):
        worst = min(rows, key=lambda r: r["nr_db_worst10_1s"])
        return (f"{label} worst-10% 1-s NR ≥ −0.5 dB", f"{cell(worst['nr_db_worst10_1s'])} dB, {worst['clip']}",
                worst["nr_db_worst10_1s"] >= -0.5)

    checks = []
    for where in sorted({setting(r) for r in records if setting(r)[0] != "none" and setting(r)[2] in (0.0, 1.0)}):
        scene, loudspeaker, latency_ms = where
        label = f"{scene}, {loudspeaker}, {latency_ms:g} ms"
        for method in ("model", "model_fxnlms"):
            rows = [r for r in records if r["method"] == method and setting(r) == where]
            if not rows:
                continue
            name = f"{label}: {method}"
            margins = {other: [(margin_db(r["nr_db"], nr(r["clip"], other, where)), r["clip"]) for r in rows]
                       for other in ("wiener", "fxnlms")}
            if "Ŝ at" in loudspeaker:
                lowest = min(margins["fxnlms"])
                checks += [(f"{name} ≥ fxnlms − 0.5 dB", f"{lowest[0]:+.1f} dB, {lowest[1]}", lowest[0] >= -0.5),
                           never_amplifies(rows, name)]
            elif "η̂×" in loudspeaker:
                lowest = min(margins["wiener"])
                checks += [(f"{name} ≥ wiener", f"{lowest[0]:+.1f} dB, {lowest[1]}", lowest[0] >= 0.0),
                           never_amplifies(rows, name)]
            elif loudspeaker == "linear":
                checks.extend(linear_scene_checks(rows, name, functools.partial(nr, where=where)))
            elif latency_ms == 1.0:
                for other in ("wiener", "fxnlms"):
                    median = statistics.median(g for g, _ in margins[other])
                    checks.append((f"{name} − {other} ≥ 3 dB, median over clips", f"{median:+.1f} dB", median >= 3.0))
    return checks


def is_switching(record: dict) -> bool:
    """True for a record of ``switching.py`` (a sequence of clips, no single clip)."""
    return "segment_nr_db" in record and "clip" not in record


def switching_tables(records: list[dict]) -> str:
    """Markdown: per scene, loudspeaker and latency, one row per method (dB), then each method's median NR per clip."""
    cell = lambda value: "∞" if value == float("inf") else f"{value:.1f}"
    blocks = []
    for setting in dict.fromkeys((r["scene"], r["loudspeaker"], r["latency_ms"]) for r in records):
        rows = [r for r in records if (r["scene"], r["loudspeaker"], r["latency_ms"]) == setting]
        lines = [f"**{setting[2]:g} ms, scene `{setting[0]}`, loudspeaker `{setting[1]}`** "
                 f"({len(rows[0]['segments']) - 1} switches every {rows[0]['switch_seconds']:g} s; NR in dB)", "",
                 "| method | whole sequence | median segment | 1 s after a switch | train s |", "|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {cell(r['nr_db'])} | {cell(r['nr_db_median_segment'])} | "
                  f"{cell(r['nr_db_after_switch_1s'])} | {r['train_seconds']:.0f} |" for r in rows]
        clips = list(dict.fromkeys(s[0] for s in rows[0]["segments"]))
        lines += ["", "| median segment NR by clip | " + " | ".join(clips) + " |", "|---|" + "---|" * len(clips)]
        for r in rows:
            by_clip = [cell(lower_median([v for v, s in zip(r["segment_nr_db"], r["segments"]) if s[0] == clip]))
                       for clip in clips]
            lines.append(f"| {r['method']} | " + " | ".join(by_clip) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def switching_library(records: list[dict]) -> str:
    """Which library one run's sequence was built from: ``"suite"`` (the built-in switching suite), ``"suite+white"``
    (the same with ``--with-white``), ``"test"`` (the test set's, ``--suite test``) or ``"other"`` (any other
    files: the targets for real recordings).

    The suite's names are those ``suite.switching_suite`` generates, plus the bundled recording it is run with;
    a sequence of that recording alone is a library of real recordings.
    """
    from suite import TEST_SWITCHING_RECORDING, switching_suite, test_switching_suite

    from wav2vec2_anc.audio_io import DEFAULT_SAMPLE

    clips = {segment[0] for r in records for segment in r["segments"]}
    if clips == set(test_switching_suite(0.01)) | {TEST_SWITCHING_RECORDING}:
        return "test"
    generated = set(switching_suite(0.01, with_white=True))
    if not clips & generated or not clips <= generated | {DEFAULT_SAMPLE.name}:
        return "other"
    return "suite+white" if "white" in clips else "suite"


def switching_target_checks(records: list[dict]) -> list[tuple[str, str, bool]]:
    """The switching targets (issue 10) as ``(target, found, holds)``, per scene, loudspeaker and latency.

    - built-in suite: model ≥ ``wiener_library`` + 3 dB on ``nr_db_median_segment``; model ≥ NLMS (FxNLMS in a
      scene) + 3 dB on ``nr_db_after_switch_1s``; every model segment ≥ −0.5 dB; and the goal beyond, model
      within 1 dB of ``wiener_oracle`` on ``nr_db_median_segment``;
    - built-in suite with white noise: every model segment ≥ −0.5 dB;
    - the test set's library (the honest protocol's targets): model ≥ ``wiener_library`` (median segment), model ≥
      NLMS/FxNLMS (after a switch), and every model segment ≥ −0.5 dB;
    - any other library: model ≥ ``wiener_library`` (median segment), model ≥ NLMS/FxNLMS (after a switch), and
      no model segment amplified (every one ≥ 0 dB).
    """
    library = switching_library(records)
    checks = []
    for where in sorted({setting(r) for r in records}):
        by_method = {r["method"]: r for r in records if setting(r) == where}
        model = by_method["model"]
        adaptive = by_method.get("nlms") or by_method["fxnlms"]
        label = f"{where[0]}, {where[1]}, {where[2]:g} ms: model"
        worst = min(model["segment_nr_db"])
        if library == "suite+white":
            checks.append((f"{label} every segment ≥ −0.5 dB", f"{worst:.2f} dB", worst >= -0.5))
            continue
        gain = 3.0 if library == "suite" else 0.0
        extra = f" + {gain:g} dB" if gain else ""
        median = margin_db(model["nr_db_median_segment"], by_method["wiener_library"]["nr_db_median_segment"])
        after = margin_db(model["nr_db_after_switch_1s"], adaptive["nr_db_after_switch_1s"])
        checks += [
            (f"{label} median segment ≥ wiener_library{extra}", f"{median:+.2f} dB", median >= gain),
            (f"{label} 1 s after a switch ≥ {adaptive['method']}{extra}", f"{after:+.2f} dB", after >= gain),
        ]
        if library in ("suite", "test"):
            checks.append((f"{label} every segment ≥ −0.5 dB", f"{worst:.2f} dB", worst >= -0.5))
        if library == "suite":
            oracle = margin_db(model["nr_db_median_segment"], by_method["wiener_oracle"]["nr_db_median_segment"])
            checks.append((f"{label} median segment ≥ wiener_oracle − 1 dB (goal)", f"{oracle:+.2f} dB", oracle >= -1.0))
        elif library == "other":
            checks.append((f"{label} no segment amplified (every one ≥ 0 dB)", f"{worst:.3f} dB", worst >= 0.0))
    return checks


def print_checks(title: str, checks: list[tuple[str, str, bool]]) -> None:
    print(f"\n**Targets** ({title})\n\n| target | found | holds |\n|---|---|---|")
    for target, found, holds in checks:
        print(f"| {target} | {found} | {'yes' if holds else '**no**'} |")


def main(argv=None):
    paths = (argv if argv is not None else sys.argv[1:]) or ["results.json"]
    records = []
    for path in paths:
        from_file = loads_strict(Path(path).read_text())
        # Each switching run has its own sequence and library: its tables and targets stand alone.
        switching = [r for r in from_file if is_switching(r)]
        if switching:
            print(f"\n### `{path}`\n\n{switching_tables(switching)}")
            print_checks(f"noise that changes, library: {switching_library(switching)}",
                         switching_target_checks(switching))
        records += [r for r in from_file if not is_switching(r)]
    ablation = [r for r in records if is_ablation(r)]
    lags = [r for r in records if is_lag_backends(r)]
    records = [r for r in records if not (is_ablation(r) or is_lag_backends(r))]
    if lags:
        import helpers

        print(lag_backend_tables(lags))
        print_checks("real time: the update lag and the backends, at the ear",
                     lag_backend_checks(lags, (helpers.AdvancedSettings.encoder_update_ms,
                                               helpers.AdvancedSettings.update_lag_ms), helpers.fastest_backend()))
    if ablation:
        print(ablation_tables(ablation))
        print_checks("the ablation's clips, at the ear", ablation_checks(ablation))
    for scene, loudspeaker, latency_ms in sorted({setting(r) for r in records}):
        where = "" if (scene, loudspeaker) == ("none", "linear") else f", scene `{scene}`, loudspeaker `{loudspeaker}`"
        print(f"\n**{latency_ms:g} ms{where}** (median 1-s NR in dB; `linear_bound`: whole-clip bound)\n")
        print(latency_table([r for r in records if setting(r)[:2] == (scene, loudspeaker)], latency_ms))
    if any(setting(r)[:2] == ("none", "linear") for r in records):
        print_checks("no scene", target_checks(records))
    scene_checks = scene_target_checks(records)
    if scene_checks:
        print_checks("acoustic scenes, whole-clip NR at the ear", scene_checks)


if __name__ == "__main__":
    main()
