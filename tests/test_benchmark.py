"""The cancellation benchmark: its records, on a short clip and a few steps."""

import json
import math
import sys

import numpy as np
import pytest
import soundfile as sf

import helpers
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import cancellation  # noqa: E402

KEYS = {"clip", "method", "latency_ms", "nr_db", "nr_db_median_1s", "nr_db_worst10_1s", "octave_nr_db",
        "train_seconds", "model_name"}


def test_builtin_suite_has_the_generated_noises_and_the_samples():
    suite = cancellation.load_suite(None, seconds=1.0)
    assert list(suite)[:5] == ["white", "pink", "brown", "mains_hum", "engine"]
    assert {"engine_honda_nsx.wav", "slide_rock.wav", "colobot_076.wav"} <= set(suite)
    assert all(len(suite[name]) == 16_000 for name in ["white", "pink", "brown", "mains_hum", "engine"])


def test_benchmark_records_every_method_latency_and_metric(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    audio = helpers.shaped_noise(6.0, 2.0, seed=3)
    sf.write(clips / "brownish.wav", audio, 16_000, subtype="FLOAT")
    out = tmp_path / "results.json"
    cancellation.main(["--clips", str(clips), "--out", str(out), "--max-steps", "2", "--latency-ms", "0,5",
                       "--filter-taps", "64", "--plot", str(tmp_path / "plot.png")])
    records = json.loads(out.read_text())
    assert {(r["method"], r["latency_ms"]) for r in records} == {
        (m, latency) for m in ["negation", "nlms", "wiener", "model", "model_no_encoder"] for latency in (0.0, 5.0)
    }
    assert all(KEYS <= set(r) for r in records)
    assert all(set(r["octave_nr_db"]) == {"63", "125", "250", "500", "1000", "2000", "4000", "8000"} for r in records)
    by = {(r["method"], r["latency_ms"]): r for r in records}
    assert by["negation", 0.0]["nr_db"] == math.inf
    _, heldout = helpers.split_heldout(audio, 0.3)
    split = len(audio) - len(heldout)
    expected = helpers.noise_reduction_db(heldout, -audio[split - 80 : len(audio) - 80])
    assert by["negation", 5.0]["nr_db"] == pytest.approx(expected, abs=1e-4)
    assert by["model", 5.0]["stream_rtf"] > 0 and by["model", 5.0]["model_name"] == "scratch:tiny"
    assert (tmp_path / "plot.png").stat().st_size > 0
    assert np.isfinite(by["model", 5.0]["nr_db"])
