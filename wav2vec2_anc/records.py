"""Strict JSON for result records and ``metrics.json``: no bare ``Infinity``, read back to the same floats.

Free of torch, so reading results (``benchmarks/report.py``) does not need it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path


def strict_json_values(value):
    """``value`` with every non-finite float replaced by a string: ``"inf"``, ``"-inf"`` or ``"nan"``.

    JSON has no infinity, and ``JSON.parse`` and ``jq`` reject the bare ``Infinity`` Python writes.
    ``"inf"`` is exact cancellation (a residual of exactly zero), ``"-inf"`` a diverged canceller,
    ``"nan"`` a band with no noise in it. ``float()`` reads each back.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: strict_json_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json_values(item) for item in value]
    return value


def dumps_strict(value, indent: int = 1) -> str:
    """Strict JSON text of ``value`` (see ``strict_json_values``)."""
    return json.dumps(strict_json_values(value), indent=indent, allow_nan=False)


def loads_strict(text: str):
    """Parse JSON written by ``dumps_strict``, turning ``"inf"``, ``"-inf"`` and ``"nan"`` back into floats."""

    def restore(value):
        if value in ("inf", "-inf", "nan"):
            return float(value)
        if isinstance(value, dict):
            return {key: restore(item) for key, item in value.items()}
        if isinstance(value, list):
            return [restore(item) for item in value]
        return value

    return restore(json.loads(text))


# Where the benchmarks write their results, relative to the repository.
RESULTS_DIR = "benchmarks/results"


def provenance(argv: list[str] | None = None) -> dict:
    """What made a result: ``{"commit": git SHA (with ``-dirty`` for a changed tree), "command": argv}``.

    The commit is the repository's that holds this package; "unknown" outside a git checkout. Result files being
    written (``RESULTS_DIR``) do not make the tree dirty: a run that starts while another writes its results there
    runs the same code.
    """
    repo = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        if git("status", "--porcelain", "--untracked-files=no", "--", ".", f":(exclude){RESULTS_DIR}"):
            commit += "-dirty"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"commit": commit, "command": ["python", *(sys.argv if argv is None else argv)]}


def with_provenance(records: list[dict], made_by: dict | None = None) -> list[dict]:
    """Each record with ``commit`` and ``command`` added, for every result file a benchmark writes.

    Args:
        made_by: ``provenance()`` taken when the run started (the code it ran); default taken now.
    """
    made_by = provenance() if made_by is None else made_by
    return [{**record, **made_by} for record in records]
