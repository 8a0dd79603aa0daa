"""The cancellation benchmark: its records, on a short clip and a few steps."""

import json
import math
from pathlib import Path

import cancellation  # noqa: E402
import numpy as np
import pytest
import report  # noqa: E402
import soundfile as sf
from suite import shaped_noise

import helpers
from wav2vec2_anc.pairs import split_heldout

REPO = Path(__file__).resolve().parents[1]
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
    audio = shaped_noise(6.0, 2.0, seed=3)
    sf.write(clips / "brownish.wav", audio, 16_000, subtype="FLOAT")
    out = tmp_path / "results.json"
    cancellation.main(["--clips", str(clips), "--out", str(out), "--max-steps", "2", "--latency-ms", "0,5",
                       "--filter-taps", "64", "--update-ms", "100", "--learning-rate", "3e-3",
                       "--plot", str(tmp_path / "plot.png")])
    def no_bare_constants(name):
        raise AssertionError(f"bare {name} in the results: not strict JSON")

    json.loads(out.read_text(), parse_constant=no_bare_constants)
    records = helpers.loads_strict(out.read_text())
    assert {(r["method"], r["latency_ms"]) for r in records} == {
        (m, latency) for m in ["negation", "nlms", "wiener", "model", "model_no_encoder", "model_fxnlms"]
        for latency in (0.0, 5.0)
    }
    assert all(KEYS <= set(r) for r in records)
    assert all(set(r["octave_nr_db"]) == {"63", "125", "250", "500", "1000", "2000", "4000", "8000"} for r in records)
    by = {(r["method"], r["latency_ms"]): r for r in records}
    assert by["negation", 0.0]["nr_db"] == math.inf
    _, heldout = split_heldout(audio, 0.3)
    split = len(audio) - len(heldout)
    expected = helpers.noise_reduction_db(heldout, -audio[split - 80 : len(audio) - 80])
    assert by["negation", 5.0]["nr_db"] == pytest.approx(expected, abs=1e-4)
    assert by["model", 5.0]["model_name"] == "scratch:tiny"
    assert {method for method, _ in by if "stream_rtf" in by[method, 5.0]} == {"model"}
    assert (by["model", 5.0]["update_ms"], by["model", 5.0]["context_seconds"]) == (100.0, 0.25)
    assert by["model", 5.0]["learning_rate"] == 3e-3
    assert (tmp_path / "plot.png").stat().st_size > 0
    assert np.isfinite(by["model", 5.0]["nr_db"])


def test_only_keeps_the_named_clips_in_order_and_refuses_unknown_ones(tmp_path, capsys):
    suite = {"a.wav": np.zeros(1), "b.wav": np.ones(1), "c.wav": np.zeros(2)}
    assert list(cancellation.only_clips(suite, "c.wav, a.wav")) == ["c.wav", "a.wav"]
    with pytest.raises(KeyError, match=r"--only \['d.wav'\]: not among the clips \['a.wav', 'b.wav', 'c.wav'\]"):
        cancellation.only_clips(suite, "a.wav,d.wav")
    # From the command line the refusal comes before any work.
    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(clips / "a.wav", shaped_noise(1.0, 2.0), 16_000, subtype="FLOAT")
    with pytest.raises(SystemExit):
        cancellation.main(["--clips", str(clips), "--only", "d.wav", "--out", str(tmp_path / "r.json")])
    assert "--only ['d.wav']: not among the clips ['a.wav']" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_target_checks_find_the_worst_case():
    def record(clip, method, latency_ms, nr_db, worst10=None, rtf=None):
        extra = {"nr_db_worst10_1s": worst10, "stream_rtf": rtf} if method == "model" else {}
        return {"clip": clip, "method": method, "latency_ms": latency_ms, "nr_db": nr_db, **extra}

    records = [
        record("white", "wiener", 0.0, math.inf), record("white", "model", 0.0, math.inf, math.inf, 0.1),
        record("mains_hum", "wiener", 1.0, 36.0), record("mains_hum", "model", 1.0, 35.2, 30.0, 0.2),
        record("pink", "wiener", 5.0, 1.0), record("pink", "model", 5.0, -0.5, -0.7, 0.6),
    ]
    checks = {target: (worst, holds) for target, worst, holds in report.target_checks(records)}
    assert checks["model worst-10% 1-s NR ≥ −0.5 dB"] == ("-0.7 dB, pink at 5 ms", False)
    assert checks["model NR ≥ Wiener NR − 1 dB"] == ("-1.5 dB, pink at 5 ms", False)
    assert checks["mains hum ≥ 30 dB at 1 ms"] == ("35.2 dB", True)
    assert checks["stream RTF ≤ 0.5"] == ("0.600, pink at 5 ms", False)
    del records[-2:]  # without pink every target holds, ∞ against ∞ included
    assert all(holds for _, _, holds in report.target_checks(records))


def test_scene_lead_shows_white_noise_cancelled_only_inside_the_lead():
    import scene_lead

    records = scene_lead.lead_records(["bandpass"], [1.0, 12.0], taps=256)
    white = {r["latency_ms"]: r["nr_db"] for r in records if r["clip"] == "white"}
    assert records[0]["lead_samples"] == 128  # 8 ms
    assert white[1.0] > 25.0 and abs(white[12.0]) < 1.0


def test_scene_target_checks_on_hand_made_records():
    def record(clip, method, nr_db, loudspeaker="linear", latency_ms=1.0, worst10=0.0, command=(), snr_db=30.0):
        return {"clip": clip, "method": method, "latency_ms": latency_ms, "scene": "bandpass",
                "loudspeaker": loudspeaker, "nr_db": nr_db, "nr_db_worst10_1s": worst10,
                "identification_snr_db": snr_db, "command": ["python", "benchmarks/cancellation.py", *command]}

    records = [
        record("a", "wiener", 40.0), record("a", "fxnlms", 15.0), record("a", "model", 39.5),
        record("b", "wiener", 30.0), record("b", "fxnlms", 31.0), record("b", "model", 30.5, worst10=-0.7),
        *[record(c, m, v, "sat:2") for c, m, v in [("a", "wiener", 20.0), ("a", "fxnlms", 10.0), ("a", "model", 30.0),
                                                   ("b", "wiener", 20.0), ("b", "fxnlms", 19.0), ("b", "model", 19.0),
                                                   ("c", "wiener", 10.0), ("c", "fxnlms", 5.0), ("c", "model", 14.0)]],
        # η̂ mis-set by 20 %: the model must stay ≥ wiener and never amplify.
        *[record(c, m, v, "sat:2", command=("--eta-error", "1.2"), worst10=w)
          for c, m, v, w in [("a", "wiener", 20.0, 0), ("a", "fxnlms", 10.0, 0), ("a", "model", 25.0, -0.2),
                             ("b", "wiener", 20.0, 0), ("b", "fxnlms", 19.0, 0), ("b", "model", 19.5, 1.0)]],
        # Ŝ identified at 20 dB: the model must stay ≥ fxnlms − 0.5 dB and never amplify.
        *[record(c, m, v, snr_db=20.0) for c, m, v in [("a", "wiener", 30.0), ("a", "fxnlms", 28.0), ("a", "model", 27.6)]],
    ]
    checks = {target: (found, holds) for target, found, holds in report.scene_target_checks(records)}
    assert checks["bandpass, linear, 1 ms: model ≥ wiener − 1 dB"] == ("-0.5 dB, a", True)
    assert checks["bandpass, linear, 1 ms: model ≥ fxnlms"] == ("-0.5 dB, b", False)
    assert checks["bandpass, linear, 1 ms: model worst-10% 1-s NR ≥ −0.5 dB"] == ("-0.7 dB, b", False)
    # sat: gains over wiener 10, −1, 4 → median 4; over fxnlms 20, 0, 9 → median 9.
    assert checks["bandpass, sat:2, 1 ms: model − wiener ≥ 3 dB, median over clips"] == ("+4.0 dB", True)
    assert checks["bandpass, sat:2, 1 ms: model − fxnlms ≥ 3 dB, median over clips"] == ("+9.0 dB", True)
    assert checks["bandpass, sat:2, η̂×1.2, 1 ms: model ≥ wiener"] == ("-0.5 dB, b", False)
    assert checks["bandpass, sat:2, η̂×1.2, 1 ms: model worst-10% 1-s NR ≥ −0.5 dB"] == ("-0.2 dB, a", True)
    assert checks["bandpass, linear, Ŝ at 20 dB, 1 ms: model ≥ fxnlms − 0.5 dB"] == ("-0.4 dB, a", True)


def test_fxnlms_tracking_reports_fxnlms_online_held_and_wiener(tmp_path):
    import fxnlms_tracking

    out = tmp_path / "tracking.json"
    records = fxnlms_tracking.main(["--scene", "bandpass", "--latency-ms", "1", "--taps", "64", "--refine-steps", "1,2",
                                    "--out", str(out)])
    assert helpers.loads_strict(out.read_text()) == records
    assert [r["clip"] for r in records] == list(cancellation.load_suite(None, 20.0))
    assert all({"fxnlms", "fxnlms_held", "wiener", "wiener_fxnlms", "wiener_fxnlms_x1", "wiener_fxnlms_x2"} <= set(r)
               and r["scene"] == "bandpass" for r in records)
    # ×2 is the refinement's own step (REFINEMENT_STEP_SCALE): the same run, to the bit; ×1 a different one.
    assert all(r["wiener_fxnlms_x2"] == r["wiener_fxnlms"] for r in records)
    assert any(r["wiener_fxnlms_x1"] != r["wiener_fxnlms"] for r in records)
    by_clip = {r["clip"]: r for r in records}
    # A steady hum: held weights cancel as well as adapting ones do; the fixed optimum is at least as good.
    assert by_clip["mains_hum"]["fxnlms_held"] == pytest.approx(by_clip["mains_hum"]["fxnlms"], abs=1.0)
    assert by_clip["mains_hum"]["wiener"] >= by_clip["mains_hum"]["fxnlms"] - 0.5


def test_oracle_reaction_reports_the_exact_oracle_and_each_later_switch(tmp_path):
    import oracle_reaction

    out = tmp_path / "reaction.json"
    records = oracle_reaction.main(["--latency-ms", "1", "--heard-ms", "5,80", "--out", str(out)])
    assert helpers.loads_strict(out.read_text()) == records
    assert [(r["heard_ms"], r["reaction_samples"]) for r in records] == [(None, 0), (5.0, 16 + 80), (80.0, 16 + 1280)]
    exact, soon, late = (r["nr_db_median_segment"] for r in records)
    # 80 ms of each 3-s segment left to the old noise's filter costs several dB; 5 ms, while the new filter's
    # taps still hold the old noise, costs nothing.
    assert late < exact - 3 and soon >= exact


def test_switching_target_checks_on_hand_made_records():
    def record(method, median, after, segments_db, clips=("mains_50hz", "brown"), latency_ms=1.0):
        return {"method": method, "latency_ms": latency_ms, "scene": "none", "loudspeaker": "linear",
                "nr_db_median_segment": median, "nr_db_after_switch_1s": after, "segment_nr_db": segments_db,
                "segments": [[clip, 0, 1, 0] for clip in clips]}

    suite = [record("wiener_library", 6.0, 6.0, [6.0, 6.0]), record("nlms", 12.0, 8.0, [12.0, 12.0]),
             record("wiener_oracle", 21.0, 16.0, [21.0, 21.0]), record("model", 19.5, 10.5, [19.5, -0.6])]
    assert report.switching_library(suite) == "suite"
    checks = {target: (found, holds) for target, found, holds in report.switching_target_checks(suite)}
    label = "none, linear, 1 ms: model"
    assert checks[f"{label} median segment ≥ wiener_library + 3 dB"] == ("+13.50 dB", True)
    assert checks[f"{label} 1 s after a switch ≥ nlms + 3 dB"] == ("+2.50 dB", False)
    assert checks[f"{label} every segment ≥ −0.5 dB"] == ("-0.60 dB", False)
    assert checks[f"{label} median segment ≥ wiener_oracle − 1 dB (goal)"] == ("-1.50 dB", False)

    # Any other library: no margin over the baselines, and a segment must not be amplified at all.
    recordings = [record(m, median, after, seg, clips=("rain.wav", "fan.wav")) for m, median, after, seg in
                  [("wiener_library", 0.5, 0.2, [0.5, 0.1]), ("nlms", -1.0, -5.0, [-1.0, -9.0]),
                   ("wiener_oracle", 0.9, 0.4, [0.9, 0.2]), ("model", 0.5, 0.3, [0.6, -0.01])]]
    assert report.switching_library(recordings) == "other"
    checks = {target: (found, holds) for target, found, holds in report.switching_target_checks(recordings)}
    assert checks[f"{label} median segment ≥ wiener_library"] == ("+0.00 dB", True)
    assert checks[f"{label} 1 s after a switch ≥ nlms"] == ("+5.30 dB", True)
    assert checks[f"{label} no segment amplified (every one ≥ 0 dB)"] == ("-0.010 dB", False)

    # The suite with white noise is judged on amplification alone.
    white = [dict(r, segments=[["white", 0, 1, 0], ["brown", 0, 1, 0]]) for r in suite]
    assert report.switching_library(white) == "suite+white"
    assert report.switching_target_checks(white) == [(f"{label} every segment ≥ −0.5 dB", "-0.60 dB", False)]
    # The bundled recording the suite is run with is, alone, a library of real recordings.
    assert report.switching_library([dict(suite[0], segments=[["engine_honda_nsx.wav", 0, 1, 0]])]) == "other"


def test_report_judges_each_switching_file_on_its_own(tmp_path, capsys):
    def record(method, clips, worst):
        return {"method": method, "latency_ms": 1.0, "scene": "none", "loudspeaker": "linear", "eta": None,
                "switch_seconds": 3.0, "nr_db": 5.0, "nr_db_median_segment": 5.0, "nr_db_after_switch_1s": 5.0,
                "segment_nr_db": [5.0, worst], "segments": [[clip, 0, 1, 0] for clip in clips], "train_seconds": 0.0}

    methods = ("wiener_library", "nlms", "wiener_oracle", "model")
    suite, white = tmp_path / "suite.json", tmp_path / "white.json"
    suite.write_text(helpers.dumps_strict([record(m, ["brown", "mains_50hz"], 1.0) for m in methods]))
    white.write_text(helpers.dumps_strict([record(m, ["white", "brown"], -0.7) for m in methods]))
    report.main([str(suite), str(white)])
    out = capsys.readouterr().out
    assert "library: suite)" in out and "library: suite+white)" in out
    assert "| none, linear, 1 ms: model every segment ≥ −0.5 dB | 1.00 dB | yes |" in out
    assert "| none, linear, 1 ms: model every segment ≥ −0.5 dB | -0.70 dB | **no** |" in out


def test_a_stretch_bank_in_a_scene_starts_from_the_optimal_controller_and_the_fit_parts_stretches(tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    cancellation.add_run_arguments(parser, max_steps=2, latency_ms="1", update_ms=100.0, context_seconds=0.25,
                                   safety_seconds=0.25)
    args = parser.parse_args(["--filter-taps", "64", "--bank-error-ms", "20"])
    train, heldout = split_heldout(cancellation.synthetic_suite(6.0)["engine"], 0.3)
    clips = [helpers.Clip("engine", train, heldout)]
    plant, wiener_filter = helpers.make_plant("bandpass", "linear", train, 16, 64)
    model, _ = cancellation.fine_tune(clips, 1.0, args, tmp_path, plant, stretches=4)
    # Every filter is fitted as a real system fits it: with the identified Ŝ, on the audio before the validation tail.
    fit = helpers.validation_split(clips)[0].train
    known = plant.identified_scene
    shared = helpers.fit_wiener_controller(fit, known, 16, 64)
    stretches = np.stack(list(helpers.fit_stretch_bank(fit, known, 16, 64, 4).values()))
    assert model.config.filter_bank and model.config.adaptive_rank == 5 and model.needs_ear_noise
    assert helpers.bank_hears_the_ear({"whole": wiener_filter}, 20.0, plant)
    assert list(helpers.fit_stretch_bank(fit, known, 16, 64, 4, whole=shared))[:2] == ["whole", "0.00–0.84 s"]
    assert model.config.bank_error_window_samples == 320
    # Held as fitted (float32): the shared filter's rate is 0 and the bank's basis takes no gradient.
    bank = model.filter_head.bank.detach().numpy()
    np.testing.assert_allclose(bank, np.concatenate([shared[None], stretches]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.filter_head.shared.detach().numpy(), shared, rtol=1e-6, atol=1e-7)
    # Not the fits of the whole training part (the validation tail would leak), nor those with the true S.
    for other in (np.stack(list(helpers.fit_stretch_bank(train, known, 16, 64, 4).values())),
                  np.stack(list(helpers.fit_stretch_bank(fit, plant.scene, 16, 64, 4).values()))):
        assert np.abs(other - stretches).max() > 1e-3 * np.abs(stretches).max()
    # The bank's filters stay as fitted, and so does the shared filter, which each of them adds to the basis.
    assert not model.filter_head.basis.requires_grad and not model.filter_head.shared.requires_grad
    # Through a saturating loudspeaker, or without a scene, its errors could not steer it: no bank.
    for scene, loudspeaker in (("bandpass", "sat:2"), ("none", "linear")):
        plant, wiener_filter = helpers.make_plant(scene, loudspeaker, train, 16, 64)
        assert helpers.stretch_count(16, plant) == 0
        assert not helpers.bank_hears_the_ear({"whole": wiener_filter}, 20.0, plant)
        model, _ = cancellation.fine_tune(clips, 1.0, args, tmp_path / scene, plant, stretches=4)
        assert not model.config.filter_bank


def test_report_reads_results_without_torch(tmp_path):
    """Reading results needs numpy alone: report.py runs with torch made unimportable."""
    import subprocess
    import sys

    results = REPO / "benchmarks" / "results"
    code = ("import runpy, sys; sys.modules['torch'] = None; "
            f"sys.argv = ['report.py', {str(results / 'test_switching_room.json')!r}, {str(results / 'test_room.json')!r}]; "
            f"runpy.run_path({str(REPO / 'benchmarks' / 'report.py')!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "noise that changes, library: test" in done.stdout
    assert "| room, linear, 1 ms: model every segment ≥ −0.5 dB |" in done.stdout
    assert "| room, linear, 1 ms: model ≥ fxnlms |" in done.stdout


def test_the_ablation_switches_each_mechanism_off_in_turn(tmp_path):
    import ablation

    out = tmp_path / "ablation.json"
    records = ablation.main(["--only", "white_test", "--seconds", "4", "--scene", "none,room", "--max-steps", "2",
                             "--filter-taps", "64", "--stretch-bank", "2", "--out", str(out)])
    assert helpers.loads_strict(out.read_text()) == records
    variants = {scene: {(r["variant"], r["refined"]) for r in records if r["scene"] == scene} for scene in ("none", "room")}
    every = {(name, refined) for name in ("shipped", "no_encoder") for refined in (False, True)}
    refinements = {("no_refinement_mix", True), ("no_fixed_member", True)}
    both = lambda *names: {(name, refined) for name in names for refined in (False, True)}  # noqa: E731
    assert variants["none"] == every | refinements | {("negation", False), ("nlms", False), ("wiener", False)} | both(
        "no_correction_gain", "no_output_gain", "no_safety_gains")
    assert variants["room"] == every | refinements | {("wiener", False), ("fxnlms", False), ("wiener_true_s", False)} | both(
        "no_gate", "no_bank_errors", "no_bank")
    assert all(r["commit"] and r["command"] and math.isfinite(r["worst_1s_db"]) for r in records)


def test_a_mechanism_is_switched_off_inside_its_variant_only():
    import ablation
    import torch

    model = helpers.build_model("scratch:tiny", filter_taps=32, latency_samples=16)
    model.set_encoder_correction(False)
    x = torch.randn(1, 8000)
    ends = torch.tensor([4000, 6000])
    raw = [x.double(), -1.25 * x.double(), 0.1 * x.double()]  # the output, −1.15·x, cancels best at g = 1/1.15
    with ablation.switched_off(model, "no_encoder"):
        assert model.encoder_correction and not model.encoder_features(torch.randn(3, 4000)).any()
    with ablation.switched_off(model, "no_output_gain"):
        assert (model.guard_gains(*raw, ends)[..., 1] == 1).all()
    with ablation.switched_off(model, "no_safety_gains"):
        assert model.safety_window == 0
    assert not model.encoder_correction and model.safety_window == 4000  # all as it was
    assert model.encoder_features(torch.randn(3, 4000)).abs().sum() > 0
    assert torch.allclose(model.guard_gains(*raw, ends)[..., 1], torch.tensor(1 / 1.15, dtype=torch.float64))


def test_the_ablation_report_judges_each_mechanism_by_its_best_class_and_the_canceller_by_the_better_baseline():
    from ablation_report import ablation_tables, target_checks

    def row(clip, variant, refined, nr_db, worst=1.0):
        return dict(clip=clip, scene="room", variant=variant, refined=refined, nr_db=nr_db, worst_1s_db=worst)

    records = [
        row("white_test", "wiener", False, 5.0), row("white_test", "fxnlms", False, 5.2),
        row("white_test", "shipped", False, 5.0), row("white_test", "shipped", True, 5.0),
        row("white_test", "no_encoder", False, 5.0), row("white_test", "no_encoder", True, 4.9),
        row("pink_test", "wiener", False, 4.0), row("pink_test", "fxnlms", False, 3.0),
        row("pink_test", "shipped", False, 4.0), row("pink_test", "shipped", True, 4.1),
        row("pink_test", "no_encoder", False, 4.0), row("pink_test", "no_encoder", True, 3.9),
        row("mains_hum_60hz", "wiener", False, 6.0), row("mains_hum_60hz", "fxnlms", False, 30.0),
        row("mains_hum_60hz", "shipped", False, 8.0), row("mains_hum_60hz", "shipped", True, 29.0, worst=-0.2),
        row("mains_hum_60hz", "no_encoder", False, 6.5), row("mains_hum_60hz", "no_encoder", True, 28.8, worst=-0.7),
        # Held at 1, the output's gain changes no NR by 0.5 dB, but the network alone then amplifies a second.
        *(row(clip, "no_output_gain", refined, nr_db) for clip, nr_db in (("white_test", 5.0), ("pink_test", 4.0))
          for refined in (False, True)),
        row("mains_hum_60hz", "no_output_gain", False, 7.9, worst=-3.0), row("mains_hum_60hz", "no_output_gain", True, 29.0),
    ]
    tables = ablation_tables(records)
    # Stationary: (0 + 0) / 2 alone, (0.1 + 0.2) / 2 refined; hum: 1.5 alone, 0.2 refined. The worst segment without
    # the encoder falls below −0.5 dB where the shipped canceller's does not: it pays that way too.
    assert ("| the encoder, the gate bypassed (over `bank_by_errors` where there is a bank) | +1.50 (hum) | +0.20 (hum) | "
            "+0.17 | 1.00 / -0.70 | yes |") in tables
    assert "| the safety gain on the output | +0.10 (hum) | +0.05 (stationary) | +0.03 | -3.00 / 1.00 | yes |" in tables
    # The refinement: refined against the network alone, 0, 0.1 and 21 dB on the three clips.
    assert "| the online refinement at the error microphone |  | +21.00 (hum) | +7.03 | – / 1.00 | yes |" in tables
    assert "significance" not in tables  # rows of mechanisms the records did not run are left out
    checks = target_checks(records)
    assert checks[0] == ("room: canceller ≥ the better baseline − 0.5 dB, every clip", "−1.00 dB (mains_hum_60hz)",
                         False)
    assert checks[1] == ("room: canceller every 1-s segment ≥ −0.5 dB", "-0.20 dB (mains_hum_60hz)", True)


def test_lag_backends_trains_one_model_per_timing_and_judges_the_shipped_one_on_every_backend(tmp_path):
    import lag_backends
    from lag_backends_report import target_checks

    shipped = (helpers.AdvancedSettings.encoder_update_ms, helpers.AdvancedSettings.update_lag_ms)
    records = lag_backends.main(["--only", "white_test", "--seconds", "4", "--scene", "none", "--max-steps", "2",
                                 "--filter-taps", "64", "--stretch-bank", "2", "--timings", "50/0,{:g}/{:g}".format(*shipped),
                                 "--out", str(tmp_path / "lags.json")])
    judged = {(r["encoder_update_ms"], r["update_lag_ms"], r["backend"], r["refined"]) for r in records}
    backends = {"torch", *helpers.installed_backends()}
    assert judged == {(50.0, 0.0, "torch", refined) for refined in (False, True)} | {
        (*shipped, backend, refined) for backend in backends for refined in (False, True)}
    assert all(r["commit"] and r["command"] and math.isfinite(r["nr_db"]) for r in records)
    labels = [label for label, _, _ in target_checks(records, shipped, "int8")]
    assert labels[0] == "every {:g} ms, lag {:g} ms, int8 ≥ the reference − 0.5 dB".format(*shipped)
    assert "onnx within 0.3 dB of float32 torch" in labels


def streaming_result(model="scratch:base", block_ms=20.0, backend="int8", minutes=10.0, rtf=0.45, audio=0.07,
                     misses=0, late=0, updates=6001, worker="process", load_cores=0, encoder_update_ms=100.0, woke=0,
                     priority="normal"):
    """A result of streaming.py, by hand, with the fields the report reads."""
    return {"model": model, "block_ms": block_ms, "backend": backend, "minutes": minutes, "paced": True,
            "worker": worker, "scene": "none", "bank": 0, "load_cores": load_cores, "context_seconds": 0.25,
            "update_ms": 50.0, "encoder_update_ms": encoder_update_ms, "real_time_factor": rtf,
            "audio_path_real_time_factor": audio, "block_ms_p50": 1.2, "block_ms_p99": 2.3, "block_ms_max": 5.0,
            "encoder_ms_mean": 38.0, "deadline_misses": misses, "misses_at_wake_up": woke,
            "blocks": int(minutes * 60_000 / block_ms),
            "late_updates": late, "updates": updates, "priority": priority}


def test_streaming_report_judges_each_target_on_its_own_run():
    from streaming_report import row, target_checks

    results = [
        streaming_result(),  # base: all three hold
        streaming_result(backend="onnx", rtf=0.4, minutes=1.0),  # faster, but too short to be judged
        streaming_result(worker="thread", rtf=0.3, minutes=1.0),  # a thread: never a target's run
        streaming_result(encoder_update_ms=50.0, rtf=0.2),  # another timing: neither
        streaming_result("scratch:tiny", 8.0, rtf=0.3, minutes=3.0, misses=2, late=7, updates=1801, woke=1),
        streaming_result("scratch:tiny", 8.0, rtf=0.3, minutes=1.0, load_cores=1, misses=40, woke=30),
        # The deployed configuration, the audio path at real-time priority: judged on it where there is one.
        streaming_result("scratch:tiny", 8.0, rtf=0.35, minutes=1.0, load_cores=1, misses=3, priority="fifo"),
    ]
    checks = {target: (found, holds) for target, found, holds in target_checks(results, 100.0)}
    assert checks["`scratch:base`, 20-ms blocks: real-time factor ≤ 0.5"] == ("0.45 (int8, 10 min)", True)
    assert checks["`scratch:base`, 20-ms blocks: no deadline miss over 10 minutes"][1]
    # tiny: 2 misses, in a run too short anyway, and 7 late of 1801 (0.39 %).
    assert checks["`scratch:tiny`, 8-ms blocks: no deadline miss over 10 minutes"] == (
        "2 in 3 min, 1 of them at the wake-up (int8, 3 min)", False)
    assert checks["`scratch:tiny`, 8-ms blocks: every miss the machine's (woken past the deadline), none the canceller's "
                  "compute"] == ("1 not at the wake-up", False)
    assert checks["`scratch:tiny`, 8-ms blocks: late updates ≤ 0.1 %"] == ("7 of 1801 (int8, 3 min)", False)
    assert checks["under load: `scratch:tiny`, 8-ms blocks, one core busy: no deadline miss"] == (
        "3 in 1 min, 0 at the wake-up (int8, real-time priority)", False)
    assert "audio path at real-time priority" in row(results[-1]) and "priority" not in row(results[-2])
    assert checks["goal beyond: `scratch:base`, 4-ms blocks: no deadline miss"] == ("no run", False)
    assert "| 0.45 (0.07 + 0.38) |" in row(results[0]) and "| 0 of 30000 | 0 of 6001 (0.00 %) |" in row(results[0])


def test_wake_up_measures_how_late_a_paced_loop_wakes():
    import wake_up

    late = wake_up.wake_up_lateness(block_ms=5.0, minutes=0.005)  # 60 blocks of 5 ms
    assert len(late) == 60 and late.min() >= 0.0 and np.median(late) < 5.0


def test_wake_up_times_the_same_work_every_block():
    import wake_up

    work = wake_up.FixedWork(0.2)
    late, wall, cpu = wake_up.paced_loop(block_ms=5.0, minutes=0.002, work=work)  # 24 blocks of 5 ms
    assert len(late) == len(wall) == len(cpu) == 24 and wall.min() > 0.0 and cpu.min() > 0.0
    assert work.repeats >= 1 and work.out.shape == (wake_up.WORK_SIZE, wake_up.WORK_SIZE)
    stats = wake_up.work_statistics(np.array([1.0, 1.1, 0.9, 6.0, 1.0]), np.array([1.0, 1.1, 0.9, 5.8, 1.0]), 4.0)
    assert stats["work_ms_p50"] == 1.0 and stats["work_ms_max"] == 6.0 and stats["work_over_period"] == 1
    assert stats["stretched_work_blocks"] == 1 and stats["stretched_work_wall_cpu_ms"] == [(6.0, 5.8)]


def test_least_squares_identification_recovers_a_path_from_a_recording_that_holds_its_tail():
    from identification import least_squares_path
    from scipy.signal import lfilter

    rng = np.random.default_rng(0)
    path, excitation = rng.standard_normal(64), rng.standard_normal(20000)
    recording = lfilter(path, [1.0], np.concatenate([excitation, np.zeros(63)]))
    np.testing.assert_allclose(least_squares_path(excitation, recording, 64), path, rtol=0, atol=1e-12)
    # Cut where the excitation stops, the recording misses the last response and the Toeplitz equations are off.
    assert np.max(np.abs(least_squares_path(excitation, recording[:20000], 64) - path)) > 1e-6


@pytest.mark.parametrize("benchmark", ["ablation", "lag_backends"])
def test_a_benchmark_sets_its_plant_up_with_the_eta_error_it_was_given(benchmark, monkeypatch, tmp_path):
    import importlib

    given = []

    def make_plant(*args, **kwargs):
        given.append(kwargs)
        raise StopIteration  # the plant is all this test needs: stop before any training

    monkeypatch.setattr(helpers, "make_plant", make_plant)
    with pytest.raises(StopIteration):
        importlib.import_module(benchmark).main(["--only", "white_test", "--seconds", "2", "--scene", "bandpass",
                                                 "--loudspeaker", "sat:2", "--eta-error", "0.8",
                                                 "--out", str(tmp_path / "out.json")])
    assert given[0]["eta_error"] == 0.8


def test_the_ablation_report_keeps_runs_of_other_settings_apart():
    from ablation_report import setting

    def run(*options, latency_ms=1.0, loudspeaker="sat:2"):
        return {"scene": "bandpass", "loudspeaker": loudspeaker, "latency_ms": latency_ms,
                "command": ["python", "benchmarks/ablation.py", *options]}

    assert setting(run()) == "bandpass, sat:2"
    assert setting(run("--eta-error", "0.8", "--suite", "tuning")) == "bandpass, sat:2, η̂×0.8, tuning set"
    assert setting(run("--eta-error", "1")) == "bandpass, sat:2"
    assert setting(run("--eta-error=1.2", "--suite=tuning")) == "bandpass, sat:2, η̂×1.2, tuning set"
    assert setting(run("--shared-filter", "learned", latency_ms=0.0, loudspeaker="linear")) == \
        "bandpass, 0 ms, learned start"
