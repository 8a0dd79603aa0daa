"""Reading every accepted format, and a clear, named error for every bad input."""

import numpy as np
import pytest
import soundfile as sf

import helpers


def sine(rate, seconds=1.5, frequency=440.0, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float64)


@pytest.mark.parametrize(
    "subtype, fmt, ext, tolerance",
    [
        ("PCM_U8", "WAV", ".wav", 1 / 64),
        ("PCM_16", "WAV", ".wav", 1e-4),
        ("PCM_24", "WAV", ".wav", 1e-6),
        ("PCM_32", "WAV", ".wav", 1e-6),
        ("FLOAT", "WAV", ".wav", 1e-6),
        ("DOUBLE", "WAV", ".wav", 1e-6),
        ("PCM_16", "FLAC", ".flac", 1e-4),
        ("VORBIS", "OGG", ".ogg", 0.05),
    ],
)
def test_reads_every_format_at_16k(tmp_path, subtype, fmt, ext, tolerance):
    path = tmp_path / f"tone{ext}"
    sf.write(path, sine(16_000), 16_000, subtype=subtype, format=fmt)
    audio = helpers.load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == 24_000
    error = np.abs(audio - sine(16_000)).max() if fmt != "OGG" else rms(audio - sine(16_000)) / rms(sine(16_000))
    assert error < tolerance


def rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


def test_stereo_is_averaged(tmp_path):
    left, right = sine(16_000, frequency=300), sine(16_000, frequency=700)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16_000, subtype="FLOAT")
    np.testing.assert_allclose(helpers.load_audio(path), (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
def test_other_rates_are_resampled(tmp_path, rate):
    path = tmp_path / f"tone_{rate}.wav"
    sf.write(path, sine(rate), rate, subtype="FLOAT")
    audio = helpers.load_audio(path)
    assert abs(len(audio) - 24_000) <= 1
    # A 440 Hz tone stays a 440 Hz tone of the same amplitude (ignore the filter's edge transients).
    expected = sine(16_000)[: len(audio)]
    middle = slice(800, len(audio) - 800)
    assert rms(audio[middle] - expected[middle]) < 0.01 * rms(expected)


def test_input_file_is_not_modified(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, sine(44_100), 44_100, subtype="PCM_16")
    before = path.read_bytes()
    helpers.load_audio(path)
    assert path.read_bytes() == before


def write_bad(tmp_path, case):
    """Write one kind of bad input; return its path."""
    path = tmp_path / f"{case}.wav"
    if case == "missing":
        return path
    if case == "empty":
        path.write_bytes(b"")
    elif case == "not_audio":
        path.write_text("this is a text file, not audio\n" * 20)
    elif case == "corrupt":
        good = tmp_path / "good.wav"
        sf.write(good, sine(16_000), 16_000, subtype="PCM_16")
        data = bytearray(good.read_bytes())
        data[20:22] = (0x7777).to_bytes(2, "little")  # an audio format code that does not exist
        path.write_bytes(bytes(data))
    elif case == "silent":
        sf.write(path, np.zeros(48_000), 16_000, subtype="PCM_16")
    elif case in ("nan", "inf"):
        audio = sine(16_000, seconds=3)
        audio[1000] = np.nan if case == "nan" else np.inf
        sf.write(path, audio, 16_000, subtype="FLOAT")
    elif case == "too_short":
        sf.write(path, sine(16_000, seconds=0.5), 16_000, subtype="PCM_16")
    return path


BAD_CASES = {
    "missing": "no such file",
    "empty": "empty",
    "not_audio": "not a readable audio file",
    "corrupt": "not a readable audio file",
    "silent": "silent",
    "nan": "NaN or Inf",
    "inf": "NaN or Inf",
    "too_short": "too short",
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_names_file_and_problem(tmp_path, case):
    path = write_bad(tmp_path, case)
    with pytest.raises(helpers.AudioInputError) as error:
        helpers.load_clips(path, min_train_samples=16_000, heldout_fraction=0.3)
    assert str(path) in str(error.value)
    assert BAD_CASES[case] in str(error.value)


def test_folder_loads_every_file_and_rejects_empty_folder(tmp_path):
    for name, frequency in [("a.wav", 300), ("b.flac", 500)]:
        sf.write(tmp_path / name, sine(16_000, seconds=2, frequency=frequency), 16_000, subtype="PCM_16")
    (tmp_path / "notes.txt").write_text("ignored")
    clips = helpers.load_clips(tmp_path, min_train_samples=16_000, heldout_fraction=0.3)
    assert [c.name for c in clips] == ["a.wav", "b.flac"]
    assert all(len(c.train) == 22_400 and len(c.heldout) == 9_600 for c in clips)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(helpers.AudioInputError, match="no audio files"):
        helpers.load_clips(empty, 16_000, 0.3)


def test_saved_wav_round_trips_exactly(tmp_path):
    audio = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 3  # float WAV may exceed ±1
    path = helpers.save_audio(tmp_path / "out" / "x.wav", audio)
    read, rate = sf.read(path, dtype="float32")
    assert rate == 16_000
    np.testing.assert_array_equal(read, audio)
