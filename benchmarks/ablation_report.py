"""Markdown tables of ``ablation.py``'s records: what each mechanism adds, and the canceller against the better baseline.

``python benchmarks/report.py benchmarks/results/ablation_*.json`` prints them (``report.py`` hands these records here).
A mechanism "adds" the NR with it less the NR without it, on the same clip, as the network alone and refined online
(``COMPARISONS`` says which variants each row compares); each noise class's mean of that is given, and the class where
it adds most. The rule of
the ablation: a mechanism stays where it adds at least ``KEEP_DB`` on some class of noise, or where it is what keeps
every 1-s segment above ``NEVER_AMPLIFIES_DB``, of the shipped canceller or of the network alone (the notebook shows both).
"""

from __future__ import annotations

KEEP_DB = 0.5
NEVER_AMPLIFIES_DB = -0.5
# The classes of noise of the test set (benchmarks/suite.py, benchmarks/test_audio/SOURCES.md).
CLASSES = {
    "stationary": ("white_test", "pink_test", "brown_test"),
    "hum": ("mains_hum_60hz",),
    "drifting engine": ("engine_fast_drift",),
    "engine recordings": ("engine_ferrari_f360.wav", "engine_ford_gt40.wav", "engine_lamborghini_diablo.wav",
                          "engine_lotus.wav"),
    "other recordings": ("colobot_021.wav", "slide_leaves.wav"),
}
BASELINES = ("wiener", "nlms", "fxnlms", "wiener_predistorted")
# What each row compares: the mechanism's label, the variant with it, the variant without it, and whether the
# comparison is of the network alone and refined (None), or of one of them only (False, True). Variant names are
# ablation.py's; ``with`` may be a tuple of choices, the first a clip has (the gate bypassed where there is one).
COMPARISONS = (
    ("the online refinement at the error microphone", ("shipped", True), ("shipped", False)),
    ("the refinement's mix (with plain (Fx)NLMS and the drive as it came)", ("shipped", True),
     ("no_refinement_mix", True)),
    ("the mix's third member, the drive as it came", ("shipped", True), ("no_fixed_member", True)),
    ("the encoder, the gate bypassed (over `bank_by_errors` where there is a bank)", ("no_gate", "shipped"),
     "no_encoder"),
    ("the validation gate", "shipped", "no_gate"),
    ("the stretch bank (against a model trained without it)", "shipped", "no_bank"),
    ("the bank's own errors", "shipped", "no_bank_errors"),
    ("the safety gain on the encoder's correction", "shipped", "no_correction_gain"),
    ("the safety gain on the output", "shipped", "no_output_gain"),
    ("both safety gains", "shipped", "no_safety_gains"),
    ("the learned output stage (a saturating loudspeaker)", "shipped", "no_output_stage"),
    ("the pre-distortion through the identified curve's inverse (a saturating loudspeaker)", "shipped",
     "no_predistortion"),
    ("the refinement's correction through that inverse too (a saturating loudspeaker)", ("shipped", True),
     ("no_refinement_predistortion", True)),
)


def is_ablation(record: dict) -> bool:
    return "variant" in record


def class_of(clip: str) -> str:
    return next((name for name, clips in CLASSES.items() if clip in clips), "other")


def setting(record: dict) -> str:
    """The scene, the loudspeaker where it is not linear, its η̂'s deliberate error, the latency where it is not 1 ms,
    and the run's suite and start where they are not the test set's and the closed form's: ``"bandpass, sat:2"``,
    ``"bandpass, sat:2, η̂×0.8, tuning set"``, ``"none, tuning set, learned start"``."""
    loudspeaker, latency_ms = record.get("loudspeaker", "linear"), record.get("latency_ms", 1.0)
    eta_error = float(option(record, "--eta-error") or 1.0)
    return ", ".join([record["scene"], *([loudspeaker] if loudspeaker != "linear" else []),
                      *([f"η̂×{eta_error:g}"] if eta_error != 1.0 else []),
                      *([f"{latency_ms:g} ms"] if latency_ms != 1.0 else []),
                      *(["tuning set"] if option(record, "--suite") == "tuning" else []),
                      *(["learned start"] if option(record, "--shared-filter") == "learned" else [])])


def option(record: dict, flag: str) -> str | None:
    """The value of ``flag`` in the command that made ``record`` (``--flag value`` or ``--flag=value``), None if absent."""
    command = list(record.get("command") or [])
    for i, word in enumerate(command):
        if word == flag and i + 1 < len(command):
            return command[i + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def by_clip(records: list[dict], scene: str) -> dict[str, dict[tuple[str, bool], dict]]:
    """``{clip: {(variant, refined): record}}`` of one setting (``setting``)."""
    table: dict[str, dict] = {}
    for r in records:
        if setting(r) == scene:
            table.setdefault(r["clip"], {})[(r["variant"], r["refined"])] = r
    return table


def median(values: list[float]) -> float:
    """The lower middle value (a real clip's), as the other tables' medians."""
    return sorted(values)[(len(values) - 1) // 2]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def pair(rows: dict, with_: str | tuple, without: str, refined: bool) -> tuple[dict, dict] | None:
    """The records a comparison reads on one clip, as the network alone or refined: a variant name, or
    ``(name, refined)`` for that record itself (counted in the refined column); None where the clip did not run them."""
    def find(variant):
        if isinstance(variant, tuple) and isinstance(variant[1], bool):  # one record, shown in the refined column
            return rows.get(variant) if refined else None
        for name in (variant if isinstance(variant, tuple) else (variant,)):
            if (name, refined) in rows:
                return rows[(name, refined)]
        return None

    found = find(with_), find(without)
    return found if None not in found else None


def pair_refined(with_, refined: bool) -> bool:
    """Whether the with-variant of a comparison shown in the ``refined`` column is itself the refined record."""
    return with_[1] if isinstance(with_, tuple) and isinstance(with_[1], bool) else refined


def adds(clips: dict, with_, without, refined: bool) -> dict[str, list[float]]:
    """Per noise class, what the mechanism adds on each clip: NR with it − NR without it, dB."""
    gains: dict[str, list[float]] = {}
    for clip, rows in clips.items():
        found = pair(rows, with_, without, refined)
        if found:
            gains.setdefault(class_of(clip), []).append(found[0]["nr_db"] - found[1]["nr_db"])
    return gains


def signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", "−")


def mechanism_table(records: list[dict], setting_name: str) -> str:
    """One row per mechanism the setting ran: what it adds, its best class's mean (network alone, refined) and its mean
    over clips, and the worst 1-s segment without it (network alone / refined)."""
    clips = by_clip(records, setting_name)
    lines = ["| mechanism | adds, network alone: best class | adds, refined: best class | refined, mean over clips "
             "| worst 1-s segment without it, alone / refined | pays |", "|---|---|---|---|---|---|"]
    shipped_worst = {refined: min(rows[("shipped", refined)]["worst_1s_db"] for rows in clips.values())
                     for refined in (False, True)}
    for label, with_, without in COMPARISONS:
        cells, best_any, all_refined = [], float("-inf"), []
        for refined in (False, True):
            per_class = {name: mean(values) for name, values in adds(clips, with_, without, refined).items()}
            if per_class:
                best = max(per_class, key=per_class.get)
                cells.append(f"{signed(per_class[best])} ({best})")
                best_any = max(best_any, per_class[best])
            else:
                cells.append("")
            if refined:
                all_refined = [g for values in adds(clips, with_, without, True).values() for g in values]
        if not any(cells):
            continue
        worst, keeps_segments = {}, False
        for refined in (False, True):
            found = [found for rows in clips.values() if (found := pair(rows, with_, without, refined))]
            worst[refined] = min(pair_[1]["worst_1s_db"] for pair_ in found) if found else float("nan")
            # It keeps the segments only if what it is compared with is the shipped canceller (or network) itself.
            shipped = bool(found) and all(pair_[0]["variant"] == "shipped" for pair_ in found)
            keeps_segments |= shipped and worst[refined] < NEVER_AMPLIFIES_DB <= shipped_worst[pair_refined(with_, refined)]
        pays = best_any >= KEEP_DB or keeps_segments
        worst_cells = " / ".join("–" if worst[r] != worst[r] else f"{worst[r]:.2f}" for r in (False, True))
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {signed(mean(all_refined)) if all_refined else ''} | "
                     f"{worst_cells} | {'yes' if pays else 'no'} |")
    return "\n".join(lines)


def baseline_table(records: list[dict], scene: str) -> str:
    """Per clip: the canceller as shipped (refined), the network alone, the better baseline, and the target."""
    clips = by_clip(records, scene)
    lines = ["| clip | better baseline | dB | network alone | canceller (refined) | canceller − baseline "
             "| worst 1-s segment |", "|---|---|---|---|---|---|---|"]
    for clip, rows in clips.items():
        baselines = {v: rows[(v, False)]["nr_db"] for v in BASELINES if (v, False) in rows}
        best = max(baselines, key=baselines.get)
        canceller = rows[("shipped", True)]
        margin = canceller["nr_db"] - baselines[best]
        lines.append(f"| {clip} | {best} | {baselines[best]:.1f} | {rows[('shipped', False)]['nr_db']:.1f} | "
                     f"{canceller['nr_db']:.1f} | {signed(margin)} | {canceller['worst_1s_db']:.2f} |")
    columns = {name: [rows[key]["nr_db"] for rows in clips.values() if key in rows] for name, key in
               [*((v, (v, False)) for v in BASELINES), ("network alone", ("shipped", False)),
                ("canceller", ("shipped", True))]}
    lines.append("\nMedian over the clips: " + ", ".join(f"{name} {median(values):.1f} dB"
                                                         for name, values in columns.items() if values))
    return "\n".join(lines)


def target_checks(records: list[dict]) -> list[tuple[str, str, bool]]:
    """The targets on the ablation's clips, per setting: the canceller ≥ the better baseline (``BASELINES``) − 0.5 dB on every
    clip, and no 1-s segment below −0.5 dB."""
    checks = []
    for scene in dict.fromkeys(setting(r) for r in records):
        clips = by_clip(records, scene)
        margins = {clip: rows[("shipped", True)]["nr_db"] - max(rows[(v, False)]["nr_db"] for v in BASELINES
                                                                 if (v, False) in rows)
                   for clip, rows in clips.items()}
        worst_clip = min(margins, key=margins.get)
        checks.append((f"{scene}: canceller ≥ the better baseline − 0.5 dB, every clip",
                       f"{signed(margins[worst_clip])} dB ({worst_clip})", margins[worst_clip] >= -0.5))
        segments = {clip: rows[("shipped", True)]["worst_1s_db"] for clip, rows in clips.items()}
        worst_clip = min(segments, key=segments.get)
        checks.append((f"{scene}: canceller every 1-s segment ≥ −0.5 dB", f"{segments[worst_clip]:.2f} dB ({worst_clip})",
                       segments[worst_clip] >= NEVER_AMPLIFIES_DB))
    return checks


def ablation_tables(records: list[dict]) -> str:
    parts = []
    for scene in dict.fromkeys(setting(r) for r in records):
        parts += [f"\n**Ablation, scene `{scene}`** (dB; classes: {', '.join(CLASSES)})\n", mechanism_table(records, scene),
                  f"\n**The canceller against the better baseline, scene `{scene}`**\n", baseline_table(records, scene)]
    return "\n".join(parts)
