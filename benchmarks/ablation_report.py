"""Markdown tables of ``ablation.py``'s records: what each mechanism adds, and the canceller against the better baseline.

``python benchmarks/report.py benchmarks/results/ablation_*.json`` prints them (``report.py`` hands these records here).
A mechanism "adds" the shipped model's NR less the NR with it switched off, on the same clip, both as the network
alone and refined online; each noise class's mean of that is given, and the class where it adds most. The rule of
the ablation: a mechanism stays where it adds at least ``KEEP_DB`` on some class of noise, or where it is what keeps
every 1-s segment of the shipped canceller above ``NEVER_AMPLIFIES_DB``.
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
MECHANISMS = {
    "no_refinement_mix": "the refinement's mix with plain (Fx)NLMS",
    "no_encoder": "the encoder (with a bank: `bank_by_errors` is left)",
    "no_gate": "the validation gate",
    "no_bank": "the stretch bank (a model trained without it)",
    "no_bank_errors": "the bank's own errors",
    "no_correction_gain": "the safety gain on the encoder's correction",
    "no_output_gain": "the safety gain on the output",
    "no_safety_gains": "both safety gains",
    "no_output_stage": "the learned output stage (a saturating loudspeaker)",
    "with_significance": "the gains' significance test (off as shipped: switched on)",
    "with_safety_memory": "the safety memory (off as shipped: switched on)",
}


def is_ablation(record: dict) -> bool:
    return "variant" in record


def class_of(clip: str) -> str:
    return next((name for name, clips in CLASSES.items() if clip in clips), "other")


def setting(record: dict) -> str:
    """The scene, and the loudspeaker where it is not linear: ``"bandpass, sat:2"``."""
    loudspeaker = record.get("loudspeaker", "linear")
    return record["scene"] if loudspeaker == "linear" else f"{record['scene']}, {loudspeaker}"


def by_clip(records: list[dict], scene: str) -> dict[str, dict[tuple[str, bool], dict]]:
    """``{clip: {(variant, refined): record}}`` of one setting (``setting``)."""
    table: dict[str, dict] = {}
    for r in records:
        if setting(r) == scene:
            table.setdefault(r["clip"], {})[(r["variant"], r["refined"])] = r
    return table


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def adds(clips: dict, variant: str, refined: bool) -> dict[str, float]:
    """Each noise class's mean of what the mechanism adds: shipped NR − NR without it, dB (clips that ran it only)."""
    gains: dict[str, list[float]] = {}
    for clip, rows in clips.items():
        if (variant, refined) in rows:
            gain = rows[("shipped", refined)]["nr_db"] - rows[(variant, refined)]["nr_db"]
            gains.setdefault(class_of(clip), []).append(gain)
    return {name: mean(values) for name, values in gains.items()}


def signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", "−")


def mechanism_table(records: list[dict], scene: str) -> str:
    """One row per mechanism: what it adds per class (network alone, refined), and the worst 1-s segment without it."""
    clips = by_clip(records, scene)
    variants = [v for v in MECHANISMS if any((v, refined) in rows for rows in clips.values() for refined in (False, True))]
    lines = ["| switched off | adds, network alone (best class) | adds, refined (best class) | mean over clips, refined "
             "| worst 1-s segment without it, refined | pays |", "|---|---|---|---|---|---|"]
    for variant in variants:
        cells, best_any = [], float("-inf")
        for refined in (False, True):
            per_class = adds(clips, variant, refined)
            if per_class:
                best = max(per_class, key=per_class.get)
                cells.append(f"{signed(per_class[best])} ({best})")
                best_any = max(best_any, per_class[best])
            else:
                cells.append("")
        refined_gains = [rows[("shipped", True)]["nr_db"] - rows[(variant, True)]["nr_db"]
                         for rows in clips.values() if (variant, True) in rows]
        worst = min((rows[(variant, True)]["worst_1s_db"] for rows in clips.values() if (variant, True) in rows),
                    default=float("nan"))
        shipped_worst = min(rows[("shipped", True)]["worst_1s_db"] for rows in clips.values())
        # Switched on (with_…), a mechanism pays where it adds; switched off, where shipped beats it.
        sign = -1 if variant.startswith("with_") else 1
        keeps_segments = worst < NEVER_AMPLIFIES_DB <= shipped_worst
        pays = sign * best_any >= KEEP_DB or (sign > 0 and keeps_segments)
        lines.append(f"| {MECHANISMS[variant]} | {cells[0]} | {cells[1]} | "
                     f"{signed(mean(refined_gains)) if refined_gains else ''} | {worst:.2f} | {'yes' if pays else 'no'} |")
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
