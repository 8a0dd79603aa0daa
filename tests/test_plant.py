"""What a real system measures with ANC off (Ŝ, the loudspeaker's η, FxNLMS's step), and the records' provenance."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erf

from wav2vec2_anc.acoustics import bandpass_scene, none_scene, room_scene
from wav2vec2_anc.audio_io import SAMPLE_RATE
from wav2vec2_anc.baselines import fit_wiener_controller
from wav2vec2_anc.fxnlms import FXNLMS_STEP_GRID, fxnlms_drive, tune_fxnlms_step
from wav2vec2_anc.plant import (
    Plant,
    identification_noise_rms,
    identify_loudspeaker,
    identify_secondary_path,
    make_plant,
    misalignment_db,
)
from wav2vec2_anc.records import provenance, with_provenance

REPO = Path(__file__).resolve().parents[1]


def hum(seconds: float, fundamental: float = 100.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(seed)
    return 0.1 * (np.sin(2 * np.pi * fundamental * t) + 0.5 * np.sin(4 * np.pi * fundamental * t + 1.0)
                  + 0.01 * rng.standard_normal(len(t)))


def white(seconds: float, seed: int = 0) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))


# ── Ŝ ──


def test_misalignment_db_by_hand():
    assert misalignment_db(np.array([1.0, 0.1]), np.array([1.0, 0.0])) == pytest.approx(-20.0)
    assert misalignment_db(np.array([0.9]), np.array([1.0, 0.0, 0.0])) == pytest.approx(-20.0)
    assert misalignment_db(np.ones(3), np.ones(3)) == -np.inf


def test_identification_noise_sits_snr_below_the_excitation_at_the_microphone():
    """Measured on signals: white noise at the excitation's level through S, against the noise level asked for."""
    scene = bandpass_scene()
    place = hum(2)
    excitation = 0.01 * np.sqrt(np.mean(place**2)) * np.random.default_rng(4).standard_normal(160_000)
    heard_db = 10 * np.log10(np.mean(np.convolve(excitation, scene.secondary)[:160_000] ** 2))
    for snr_db in (30.0, 20.0):
        noise_db = 20 * np.log10(identification_noise_rms(scene, place, snr_db))
        assert heard_db - noise_db == pytest.approx(snr_db, abs=0.1)
    with pytest.raises(ValueError, match="silent"):
        identify_secondary_path(scene, np.zeros(1000))


@pytest.mark.parametrize("make_scene", [bandpass_scene, room_scene])
def test_secondary_path_misalignment_is_as_documented(make_scene):
    """At the defaults (30 dB above a hum of the place, 10 s): −40 to −55 dB; at 20 dB about 10 dB worse; the place's
    noise is what limits it (60 dB above it, far better)."""
    scene, place = make_scene(), hum(3)
    at = {snr: misalignment_db(identify_secondary_path(scene, place, snr), scene.secondary) for snr in (20, 30, 60)}
    assert -55 <= at[30] <= -40
    assert 6 <= at[20] - at[30] <= 14
    assert at[60] < at[30] - 15


def test_the_none_scene_has_no_loudspeaker_to_measure():
    np.testing.assert_array_equal(identify_secondary_path(none_scene(), hum(1), taps=4), [1.0, 0.0, 0.0, 0.0])


# ── the loudspeaker's curve ──


def test_bussgang_gain_of_the_sef_for_gaussian_noise():
    """The identity the level sweep rests on, checked by sampling: E[f′(v)] = ⟨f(v), v⟩ / ⟨v, v⟩ = 1/√(1 + σ²/η²)."""
    eta, rng = 0.2, np.random.default_rng(1)
    for sigma in (0.05, 0.2, 0.8):
        v = sigma * rng.standard_normal(400_000)
        f = eta * np.sqrt(np.pi / 2) * erf(v / (np.sqrt(2) * eta))
        assert np.dot(f, v) / np.dot(v, v) == pytest.approx(1 / np.sqrt(1 + sigma**2 / eta**2), rel=0.01)


@pytest.mark.parametrize("eta", [0.05, 0.3, 1.0])
def test_level_sweep_finds_eta(eta):
    scene = bandpass_scene()
    estimate = identify_loudspeaker(scene, scene.secondary, eta, drive_rms=0.15, noise_rms=1e-4, place_noise=hum(1))
    assert estimate == pytest.approx(eta, rel=0.03)


def test_level_sweep_finds_a_linear_loudspeaker_linear():
    scene = bandpass_scene()
    assert identify_loudspeaker(scene, scene.secondary, None, drive_rms=0.15, noise_rms=1e-4, place_noise=hum(1)) is None
    # One that saturates far above anything the sweep plays (100 × its top) counts as linear too.
    assert identify_loudspeaker(scene, scene.secondary, 150.0, drive_rms=0.15, noise_rms=1e-4) is None


# ── the plant as a system knows it ──


def test_make_plant_knows_only_what_it_measured():
    train = hum(3)
    plant, wiener_filter = make_plant("bandpass", "sat:2", train, 16, 128)
    assert isinstance(plant, Plant)
    assert -60 < plant.s_hat_misalignment_db < -30 and not np.array_equal(plant.secondary_estimate, plant.scene.secondary)
    # The controller it deploys is fitted with Ŝ (and P∗x, which the error microphone records), not the true S.
    np.testing.assert_allclose(wiener_filter, fit_wiener_controller(train, plant.identified_scene, 16, 128), rtol=1e-9)
    assert np.abs(wiener_filter - fit_wiener_controller(train, plant.scene, 16, 128)).max() > 1e-6
    np.testing.assert_array_equal(plant.identified_scene.primary, plant.scene.primary)
    np.testing.assert_array_equal(plant.identified_scene.secondary, plant.secondary_estimate)
    # η̂ is the sweep's: close to η, not η itself; --eta-error scales it.
    assert plant.eta_estimate == pytest.approx(plant.eta, rel=0.05) and plant.eta_estimate != plant.eta
    mis_set, _ = make_plant("bandpass", "sat:2", train, 16, 128, eta_error=1.2)
    assert mis_set.eta == plant.eta and mis_set.eta_estimate == pytest.approx(1.2 * plant.eta_estimate)
    described = plant.describe()
    assert {"eta", "eta_estimate", "s_hat_misalignment_db", "identification_snr_db", "fxnlms_step"} <= set(described)
    assert described["identification_snr_db"] == 30.0 and described["fxnlms_step"] in FXNLMS_STEP_GRID
    # A worse identification is a worse Ŝ.
    noisy, _ = make_plant("bandpass", "sat:2", train, 16, 128, identification_snr_db=20.0)
    assert noisy.s_hat_misalignment_db > plant.s_hat_misalignment_db + 5


def test_the_none_scene_plant_is_exact():
    plant, wiener_filter = make_plant("none", "linear", hum(1), 0, 16)
    assert plant.is_identity and plant.eta_estimate is None and plant.fxnlms_step is None
    np.testing.assert_array_equal(wiener_filter, -np.eye(16)[0])


# ── FxNLMS's step ──


def test_tuned_step_is_the_largest_that_pays_on_broadband_noise_and_smaller_on_tones():
    """Band-pass scene at 1 ms: white noise converges fastest at the grid's largest μ, a hum diverges there."""
    scene = bandpass_scene()
    for noise, broadband in ((white(6, seed=2), True), (hum(6), False)):
        step = tune_fxnlms_step(noise, scene, scene.secondary, 16, 128)
        if broadband:
            assert step == max(FXNLMS_STEP_GRID)
        else:
            assert step < max(FXNLMS_STEP_GRID)
            with np.errstate(all="ignore"):
                diverged = fxnlms_drive(noise, scene, scene.secondary, 16, 128, max(FXNLMS_STEP_GRID))
            assert not np.all(np.isfinite(diverged)) or np.abs(diverged).max() > 100
            held = fxnlms_drive(np.concatenate([noise, hum(2, seed=5)]), scene, scene.secondary, 16, 128, step)
            assert np.all(np.isfinite(held)) and np.abs(held).max() < 10


# ── provenance ──


def test_records_carry_the_commit_and_the_command():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    made_by = provenance(["benchmarks/cancellation.py", "--suite", "test"])
    assert made_by["commit"].removesuffix("-dirty") == head
    assert made_by["command"] == ["python", "benchmarks/cancellation.py", "--suite", "test"]
    assert provenance()["command"][1:] == sys.argv
    stamped = with_provenance([{"clip": "a"}, {"clip": "b"}], made_by)
    assert all(r["commit"] == made_by["commit"] and r["command"] == made_by["command"] for r in stamped)
    assert [r["clip"] for r in stamped] == ["a", "b"]


def test_a_changed_result_file_leaves_the_commit_clean_and_changed_code_does_not(tmp_path):
    import importlib.util
    import shutil

    package = tmp_path / "wav2vec2_anc"
    package.mkdir()
    shutil.copy(REPO / "wav2vec2_anc" / "records.py", package / "records.py")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "old.json").write_text("[]")
    git = lambda *args: subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True, check=True)  # noqa: E731
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    spec = importlib.util.spec_from_file_location("copied_records", package / "records.py")
    records = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(records)
    head = git("rev-parse", "HEAD").stdout.strip()
    (tmp_path / "benchmarks" / "results" / "old.json").write_text("[1]")
    assert records.provenance([])["commit"] == head
    (package / "records.py").write_text((package / "records.py").read_text() + "\n")
    assert records.provenance([])["commit"] == head + "-dirty"
