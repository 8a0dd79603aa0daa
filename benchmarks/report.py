"""Markdown tables of benchmark results, as shown in the README.

Usage:
    python benchmarks/report.py results.json [more.json ...]

For each latency in the records: one row per clip, one column per method, each cell the held-out
median 1-s NR in dB (the whole-clip NR and the worst 10 % follow in a second table for the model),
and the model's training seconds and streaming real-time factor.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

METHODS = ("negation", "nlms", "wiener", "model", "model_no_encoder", "linear_bound")


def cell(value) -> str:
    if value is None:
        return ""
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.1f}"


def latency_table(records: list[dict], latency_ms: float) -> str:
    """Median 1-s NR of every method per clip (the bound: whole-clip NR), plus the model's worst 10 %."""
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


def main(argv=None):
    paths = (argv if argv is not None else sys.argv[1:]) or ["results.json"]
    records = [r for path in paths for r in json.loads(Path(path).read_text())]
    for latency_ms in sorted({r["latency_ms"] for r in records}):
        print(f"\n**{latency_ms:g} ms** (median 1-s NR in dB; `linear_bound`: whole-clip bound)\n")
        print(latency_table(records, latency_ms))


if __name__ == "__main__":
    main()
