"""Tables of ``lag_backends.py``'s records: what each timing (how often the encoder updates, and its lag) and each
backend costs against the reference (every block its own update, no lag, float32 torch), per clip, for the network
alone and the canceller (refined), and the accuracy targets of issue 26."""

from __future__ import annotations

from ablation_report import setting, signed

# The targets: the shipped timing on the fastest backend within SHIPPED_DB of the reference on every clip; each
# backend within BACKEND_DB of float32 torch at the same timing.
SHIPPED_DB = 0.5
BACKEND_DB = 0.3
# The reference's timing: an update every 50-ms block, no lag. Records made before the encoder's update period was a
# setting of its own updated every block.
REFERENCE = (50.0, 0.0)


def is_lag_backends(record: dict) -> bool:
    return "update_lag_ms" in record and "backend" in record and "variant" not in record


def variant(record: dict) -> tuple[float, float, str]:
    """``(encoder update period, update lag, backend)`` of one record."""
    return record.get("encoder_update_ms", REFERENCE[0]), record["update_lag_ms"], record["backend"]


def label(key: tuple[float, float, str]) -> str:
    every, lag, backend = key
    return f"every {every:g} ms, lag {lag:g} ms, {backend}"


def variants(records: list[dict]) -> list[tuple[float, float, str]]:
    """The variants the records hold, the reference first."""
    return sorted({variant(r) for r in records}, key=lambda v: (v[:2] != REFERENCE, v[:2], v[2] != "torch", v[2]))


def by_clip(records: list[dict], where: str, refined: bool) -> dict[str, dict[tuple, float]]:
    """``{clip: {variant: nr_db}}`` of one setting, the network alone or refined."""
    table: dict[str, dict] = {}
    for r in records:
        if setting(r) == where and r["refined"] == refined:
            table.setdefault(r["clip"], {})[variant(r)] = r["nr_db"]
    return table


def lag_backend_table(records: list[dict], where: str) -> str:
    """Per clip: the reference's NR, then each other variant's difference from it; the canceller's below."""
    reference = (*REFERENCE, "torch")
    columns = [v for v in variants(records) if v != reference]
    header = f"| clip | refined | {label(reference)} (dB) | " + " | ".join(label(v) for v in columns) + " |"
    lines = [header, "|" + "---|" * (3 + len(columns))]
    for refined in (False, True):
        for clip, row in by_clip(records, where, refined).items():
            base = row.get(reference)
            if base is None:
                continue
            cells = [signed(row[v] - base) if v in row else "" for v in columns]
            lines.append(f"| {clip} | {'yes' if refined else 'no'} | {base:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target_checks(records: list[dict], shipped: tuple[float, float], fastest: str) -> list[tuple[str, str, bool]]:
    """``(target, worst case, holds)``: the ``shipped`` timing ``(encoder update period, lag)`` on ``fastest`` against
    the reference, each backend against torch at the shipped timing; over every clip and setting, network alone and
    refined."""
    checks = []
    settings = sorted({setting(r) for r in records})
    comparisons = [(f"{label((*shipped, fastest))} ≥ the reference − {SHIPPED_DB} dB", (*shipped, fastest),
                    (*REFERENCE, "torch"), -SHIPPED_DB, False)]
    comparisons += [(f"{backend} within {BACKEND_DB} dB of float32 torch", (*shipped, backend), (*shipped, "torch"),
                     -BACKEND_DB, True) for *timing, backend in variants(records)
                    if tuple(timing) == tuple(shipped) and backend != "torch"]
    for target, with_, against, floor, both_ways in comparisons:
        differences = [(row[with_] - row[against], f"{clip}, {where}{', refined' if refined else ''}")
                       for where in settings for refined in (False, True)
                       for clip, row in by_clip(records, where, refined).items() if with_ in row and against in row]
        if not differences:
            continue
        worst = max(differences, key=lambda d: abs(d[0])) if both_ways else min(differences)
        holds = abs(worst[0]) <= -floor if both_ways else worst[0] >= floor
        checks.append((target, f"{signed(worst[0])} dB ({worst[1]})", holds))
    return checks


def lag_backend_tables(records: list[dict]) -> str:
    parts = []
    for where in sorted({setting(r) for r in records}):
        parts.append(f"\n**{where}**: held-out NR of the reference (an update every block, no lag, float32), and each "
                     f"timing's and backend's difference from it (dB)\n\n{lag_backend_table(records, where)}")
    return "\n".join(parts)
