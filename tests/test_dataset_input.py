"""A 🤗 datasets dataset as input: saved locally in the test (no download), decoded with soundfile and librosa."""

import io

import numpy as np
import pytest
import soundfile as sf

import helpers
from wav2vec2_anc.dataset_input import dataset_audio, is_dataset


def encoded(audio: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def save_dataset(folder, rows: dict, audio_feature: bool = True):
    """``rows``: columns; ``audio`` as ``{"bytes", "path"}`` structs, cast to an ``Audio`` feature (as the hub stores
    audio) without datasets' encoder, which needs torchcodec."""
    import datasets

    data = datasets.Dataset.from_dict(rows)
    if audio_feature:
        data = data.cast_column("audio", datasets.Audio())
    data.save_to_disk(str(folder))
    return folder


def test_a_saved_dataset_gives_the_same_clips_as_the_same_files(tmp_path):
    rng = np.random.default_rng(0)
    sources = {"hum": (np.sin(np.arange(3 * 22_050) / 9.0) * 0.3, 22_050),
               "stereo": (rng.standard_normal((2 * 16_000, 2)) * 0.1, 16_000),
               "noise": (rng.standard_normal(3 * 8_000) * 0.05, 8_000)}
    files = tmp_path / "files"
    files.mkdir()
    for name, (audio, rate) in sources.items():
        sf.write(files / f"{name}.wav", audio, rate, subtype="FLOAT")
    rows = {"id": list(sources), "audio": [{"bytes": encoded(a, r), "path": f"{n}.wav"} for n, (a, r) in sources.items()]}
    folder = save_dataset(tmp_path / "saved", rows)
    assert is_dataset(folder) and not is_dataset(files) and is_dataset("hub:someone/noises:default:train")
    from_dataset = helpers.load_clips(folder, 1000, 0.3)
    from_files = helpers.load_clips(files, 1000, 0.3)
    # Files come sorted by name, rows in their order: the same clips, each named by its id.
    by_name = {clip.name.removesuffix(".wav"): clip for clip in from_files}
    assert [clip.name for clip in from_dataset] == ["hum", "stereo", "noise"]
    for clip in from_dataset:
        np.testing.assert_array_equal(clip.train, by_name[clip.name].train)
        np.testing.assert_array_equal(clip.heldout, by_name[clip.name].heldout)


def test_raw_bytes_without_an_id_are_named_by_row_and_a_bad_row_is_named(tmp_path):
    good = encoded(np.sin(np.arange(16_000) / 7.0).astype(np.float32), 16_000)
    folder = save_dataset(tmp_path / "raw", {"audio": [good, good]}, audio_feature=False)
    assert [name for _, name, _ in dataset_audio(str(folder))] == ["row-0", "row-1"]
    silent = encoded(np.zeros(16_000, np.float32), 16_000)
    bad = save_dataset(tmp_path / "bad", {"id": ["ok", "quiet"], "audio": [{"bytes": good, "path": None},
                                                                           {"bytes": silent, "path": None}]})
    with pytest.raises(helpers.AudioInputError, match=r"bad: row 1 \(id quiet\): clip is silent"):
        helpers.load_clips(bad, 1000, 0.3)
    corrupt = save_dataset(tmp_path / "corrupt", {"audio": [{"bytes": b"RIFF0000WAVEjunk", "path": "x.wav"}]})
    with pytest.raises(helpers.AudioInputError, match=r"corrupt: row 0: not a readable audio file"):
        helpers.load_clips(corrupt, 1000, 0.3)


def test_a_dataset_is_read_up_to_its_cap(tmp_path):
    second = encoded(np.sin(np.arange(16_000) / 7.0).astype(np.float32), 16_000)  # 1 s each
    folder = save_dataset(tmp_path / "long", {"audio": [{"bytes": second, "path": f"{i}.wav"} for i in range(5)]})
    assert [name for _, name, _ in dataset_audio(str(folder), cap_hours=2.5 / 3600)] == ["0.wav", "1.wav", "2.wav"]


def test_a_saved_dataset_trains_the_same_model_and_figures_as_the_same_files(tmp_path):
    from wav2vec2_anc import train

    rng = np.random.default_rng(2)
    names = ["a_hum.wav", "b_noise.wav", "c_engine.wav"]  # rows in the order the files sort in, ids their names
    audio = [np.sin(np.arange(40_000) / 9.0) * 0.3, rng.standard_normal(40_000) * 0.1,
             np.sin(np.arange(40_000) * (0.02 + 0.00001 * np.arange(40_000))) * 0.2]
    files = tmp_path / "files"
    files.mkdir()
    for name, x in zip(names, audio):
        sf.write(files / name, x.astype(np.float32), 16_000, subtype="FLOAT")
    folder = save_dataset(tmp_path / "saved", {"id": names, "audio": [{"bytes": (files / n).read_bytes(), "path": n}
                                                                      for n in names]})
    runs = [train.main(["--audio", str(source), "--model", "scratch:tiny", "--out", str(tmp_path / label),
                        "--max-steps", "4", "--latency-ms", "1", "--filter-taps", "128"])
            for label, source in (("from_files", files), ("from_dataset", folder))]
    for run in runs:
        run.pop("audio_path")
    assert runs[0] == runs[1]
    assert [f["file"] for f in runs[0]["files"]] == names


def test_a_dataset_with_no_rows_is_refused_by_name(monkeypatch):
    # datasets cannot save an empty dataset; a streamed hub split can still hold no row.
    from wav2vec2_anc import pairs

    monkeypatch.setattr(pairs, "dataset_audio", lambda spec: iter(()))
    with pytest.raises(helpers.AudioInputError, match="hub:someone/empty: holds no clip"):
        helpers.load_clips("hub:someone/empty", 1000, 0.3)


def test_a_streamed_dataset_that_does_not_know_its_columns_is_read_from_its_rows(monkeypatch):
    from wav2vec2_anc import dataset_input

    tone = encoded(np.sin(np.arange(16_000) / 7.0).astype(np.float32), 16_000)

    class Streamed:  # as some hub datasets stream: features None, rows as stored
        features = None

        def __iter__(self):
            return iter([{"key": "one", "id": "first", "audio": {"bytes": tone, "path": "1.wav"}},
                         {"key": "two", "id": "second", "audio": {"bytes": tone, "path": "2.wav"}}])

    monkeypatch.setattr(dataset_input, "open_dataset", lambda spec: Streamed())
    assert [name for _, name, _ in dataset_audio("hub:someone/streamed")] == ["first", "second"]
