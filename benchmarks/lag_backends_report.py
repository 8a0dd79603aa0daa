"""Tables of ``lag_backends.py``'s records: what each update lag and each backend costs against the lag-free float32
model, per clip, for the network alone and the canceller (refined), and the accuracy targets of issue 26."""

from __future__ import annotations

from ablation_report import setting, signed

# The targets: the shipped lag on the fastest backend within SHIPPED_DB of the lag-free float32 torch model on every
# clip; each backend within BACKEND_DB of float32 torch at the same lag.
SHIPPED_DB = 0.5
BACKEND_DB = 0.3


def is_lag_backends(record: dict) -> bool:
    return "update_lag_ms" in record and "backend" in record and "variant" not in record


def variants(records: list[dict]) -> list[tuple[float, str]]:
    """``(lag, backend)`` pairs the records hold, lag-free torch first."""
    return sorted({(r["update_lag_ms"], r["backend"]) for r in records}, key=lambda v: (v[0], v[1] != "torch", v[1]))


def by_clip(records: list[dict], where: str, refined: bool) -> dict[str, dict[tuple[float, str], float]]:
    """``{clip: {(lag, backend): nr_db}}`` of one setting, the network alone or refined."""
    table: dict[str, dict] = {}
    for r in records:
        if setting(r) == where and r["refined"] == refined:
            table.setdefault(r["clip"], {})[(r["update_lag_ms"], r["backend"])] = r["nr_db"]
    return table


def lag_backend_table(records: list[dict], where: str) -> str:
    """Per clip: the lag-free float32 NR, then each other (lag, backend)'s difference from it; the canceller's below."""
    columns = [v for v in variants(records) if v != (0.0, "torch")]
    header = "| clip | refined | lag 0 torch (dB) | " + " | ".join(f"lag {lag:g} {backend}" for lag, backend in columns) + " |"
    lines = [header, "|" + "---|" * (3 + len(columns))]
    for refined in (False, True):
        for clip, row in by_clip(records, where, refined).items():
            base = row.get((0.0, "torch"))
            if base is None:
                continue
            cells = [signed(row[v] - base) if v in row else "" for v in columns]
            lines.append(f"| {clip} | {'yes' if refined else 'no'} | {base:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target_checks(records: list[dict], shipped_lag: float, fastest: str) -> list[tuple[str, str, bool]]:
    """``(target, worst case, holds)``: the shipped lag on ``fastest`` against lag-free torch, each backend against
    torch at the shipped lag; over every clip and setting, network alone and refined."""
    checks = []
    settings = sorted({setting(r) for r in records})
    comparisons = [(f"lag {shipped_lag:g} ms on {fastest} ≥ lag-free float32 − {SHIPPED_DB} dB",
                    (shipped_lag, fastest), (0.0, "torch"), -SHIPPED_DB, False)]
    comparisons += [(f"{backend} within {BACKEND_DB} dB of float32 torch", (shipped_lag, backend), (shipped_lag, "torch"),
                     -BACKEND_DB, True) for lag, backend in variants(records) if lag == shipped_lag and backend != "torch"]
    for label, with_, against, floor, both_ways in comparisons:
        differences = [(row[with_] - row[against], f"{clip}, {where}{', refined' if refined else ''}")
                       for where in settings for refined in (False, True)
                       for clip, row in by_clip(records, where, refined).items() if with_ in row and against in row]
        if not differences:
            continue
        worst = max(differences, key=lambda d: abs(d[0])) if both_ways else min(differences)
        holds = abs(worst[0]) <= -floor if both_ways else worst[0] >= floor
        checks.append((label, f"{signed(worst[0])} dB ({worst[1]})", holds))
    return checks


def lag_backend_tables(records: list[dict]) -> str:
    parts = []
    for where in sorted({setting(r) for r in records}):
        parts.append(f"\n**{where}**: held-out NR of the lag-free float32 model, and each lag's and backend's "
                     f"difference from it (dB)\n\n{lag_backend_table(records, where)}")
    return "\n".join(parts)
