"""Strict JSON for result records and ``metrics.json``: no bare ``Infinity``, read back to the same floats.

Free of torch, so reading results (``benchmarks/report.py``) does not need it.
"""

from __future__ import annotations

import json
import math


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
