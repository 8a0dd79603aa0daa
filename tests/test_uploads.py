"""Uploads: several files or a .zip of them become one library folder; an unsafe zip is refused."""

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import helpers
from wav2vec2_anc import notebook_ui
from wav2vec2_anc.audio_io import list_audio_files
from wav2vec2_anc.notebook_ui import read_upload, resolve_audio_path


def wav_bytes(value: float, seconds: float = 0.1) -> bytes:
    """A float WAV holding the constant ``value``, so each file can be told apart after the round trip."""
    buffer = io.BytesIO()
    sf.write(buffer, np.full(int(seconds * 16_000), value, np.float32), 16_000, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_one_file_is_stored_and_returned_as_is(tmp_path):
    path = read_upload({"noise.wav": wav_bytes(0.25)}, tmp_path / "uploads")
    assert path == tmp_path / "uploads" / "noise.wav"
    assert helpers.load_audio(path)[0] == 0.25


def test_a_cancelled_upload_is_none(tmp_path):
    assert read_upload({}, tmp_path / "uploads") is None
    assert not (tmp_path / "uploads").exists()


def test_several_files_become_a_fresh_folder_of_them_all(tmp_path):
    uploads = tmp_path / "uploads"
    first = read_upload({"a.wav": wav_bytes(0.1), "b.flac": wav_bytes(0.2), "c.WAV": wav_bytes(0.3)}, uploads)
    assert first.is_dir() and first.parent == uploads
    assert [p.name for p in list_audio_files(first)] == ["a.wav", "b.flac", "c.WAV"]
    assert [helpers.load_audio(p)[0] for p in list_audio_files(first)] == [
        pytest.approx(0.1), pytest.approx(0.2), pytest.approx(0.3)]
    second = read_upload({"d.wav": wav_bytes(0.4), "e.wav": wav_bytes(0.5)}, uploads)
    assert second != first  # the earlier upload's files do not mix in
    assert [p.name for p in list_audio_files(second)] == ["d.wav", "e.wav"]
    assert len(helpers.load_clips(second, min_train_samples=100, heldout_fraction=0.3)) == 2


def test_a_zip_becomes_its_audio_files_flattened_with_unique_names(tmp_path):
    archive = zip_bytes({
        "library/hum.wav": wav_bytes(0.1),
        "library/cars/engine.wav": wav_bytes(0.2),
        "library/trucks/engine.wav": wav_bytes(0.3),
        "library/readme.txt": b"not audio",
        "__MACOSX/library/._hum.wav": b"resource fork",
    })
    folder = read_upload({"sounds.zip": archive}, tmp_path / "uploads")
    assert folder.is_dir()
    names = [p.name for p in list_audio_files(folder)]
    assert names == ["engine-2.wav", "engine.wav", "hum.wav"]
    values = {p.name: helpers.load_audio(p)[0] for p in list_audio_files(folder)}
    assert values == {"hum.wav": pytest.approx(0.1), "engine.wav": pytest.approx(0.2), "engine-2.wav": pytest.approx(0.3)}
    assert files_under(tmp_path) == set(list_audio_files(folder))  # nothing else written: no readme, no fork


def test_a_zip_of_one_audio_file_gives_that_file(tmp_path):
    path = read_upload({"one.zip": zip_bytes({"deep/down/only.wav": wav_bytes(0.5)})}, tmp_path / "uploads")
    assert path.is_file() and path.name == "only.wav"
    assert helpers.load_audio(path)[0] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "entries, symlinks, problem",
    [
        ({"ok.wav": wav_bytes(0.1), "../evil.wav": wav_bytes(0.2)}, (), "outside"),
        ({"sub/../../evil.wav": wav_bytes(0.2)}, (), "outside"),
        ({"/etc/evil.wav": wav_bytes(0.2)}, (), "outside"),
        ({"C:/evil.wav": wav_bytes(0.2)}, (), "outside"),
        ({"ok.wav": wav_bytes(0.1), "link.wav": b"/etc/passwd"}, ("link.wav",), "symbolic link"),
        ({"notes.txt": b"hello"}, (), "no audio"),
    ],
)
def test_an_unsafe_or_empty_zip_is_refused_naming_it(tmp_path, entries, symlinks, problem):
    uploads = tmp_path / "uploads"
    with pytest.raises(helpers.AudioInputError, match=rf"bad\.zip.*{problem}"):
        read_upload({"bad.zip": zip_bytes(entries, symlinks)}, uploads)
    assert files_under(tmp_path) == set()  # nothing written, inside upload_dir or out


def test_a_zip_over_the_size_or_entry_cap_is_refused_before_unpacking(tmp_path, monkeypatch):
    archive = zip_bytes({"a.wav": wav_bytes(0.1), "b.wav": wav_bytes(0.2)})
    total = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(archive)).infolist())
    monkeypatch.setattr(notebook_ui, "MAX_ZIP_UNCOMPRESSED_BYTES", total)
    assert read_upload({"fits.zip": archive}, tmp_path / "a").is_dir()  # exactly at the cap: accepted
    monkeypatch.setattr(notebook_ui, "MAX_ZIP_UNCOMPRESSED_BYTES", total - 1)
    with pytest.raises(helpers.AudioInputError, match=r"big\.zip.*more than"):
        read_upload({"big.zip": archive}, tmp_path / "b")
    monkeypatch.setattr(notebook_ui, "MAX_ZIP_UNCOMPRESSED_BYTES", 1 << 30)
    monkeypatch.setattr(notebook_ui, "MAX_ZIP_ENTRIES", 1)
    with pytest.raises(helpers.AudioInputError, match=r"many\.zip.*2 entries"):
        read_upload({"many.zip": archive}, tmp_path / "c")
    assert not (tmp_path / "b").exists() or files_under(tmp_path / "b") == set()
    assert not (tmp_path / "c").exists() or files_under(tmp_path / "c") == set()


def test_a_corrupt_zip_or_a_stray_file_among_several_is_named(tmp_path):
    with pytest.raises(helpers.AudioInputError, match=r"broken\.zip.*not a readable zip"):
        read_upload({"broken.zip": b"PK not really"}, tmp_path / "uploads")
    with pytest.raises(helpers.AudioInputError, match=r"notes\.txt.*neither an audio file"):
        read_upload({"a.wav": wav_bytes(0.1), "notes.txt": b"hello"}, tmp_path / "uploads")
    assert files_under(tmp_path) == set()


def test_files_and_zips_together_make_one_library(tmp_path):
    folder = read_upload({"hum.wav": wav_bytes(0.1), "more.zip": zip_bytes({"x/hum.wav": wav_bytes(0.2)})},
                         tmp_path / "uploads")
    assert [p.name for p in list_audio_files(folder)] == ["hum-2.wav", "hum.wav"]


class FileUploadValue:
    """An ipywidgets 8 FileUpload as ``resolve_audio_path`` reads it: ``value`` a tuple of dicts."""

    def __init__(self, files: dict[str, bytes]):
        self.value = tuple({"name": name, "content": memoryview(data)} for name, data in files.items())


def test_the_widget_with_several_files_gives_the_library_folder(tmp_path):
    default = tmp_path / "default.wav"
    widget = FileUploadValue({"a.wav": wav_bytes(0.1), "b.wav": wav_bytes(0.2)})
    folder = resolve_audio_path(None, widget, tmp_path / "uploads", default)
    assert [p.name for p in list_audio_files(folder)] == ["a.wav", "b.wav"]
    one = resolve_audio_path(None, FileUploadValue({"a.wav": wav_bytes(0.1)}), tmp_path / "uploads", default)
    assert one == tmp_path / "uploads" / "a.wav"
    assert resolve_audio_path(None, FileUploadValue({}), tmp_path / "uploads", default) == default


def test_the_outputs_zip_holds_what_the_run_wrote_less_checkpoints_and_uploads(tmp_path):
    import zipfile

    out = tmp_path / "outputs"
    for name in ("metrics.json", "model/config.json", "checkpoints/run-1/optimizer.pt", "uploads/mine.wav"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(name)
    archive = helpers.zip_outputs(out)
    archive = helpers.zip_outputs(out)  # again: the zip of the first run is not zipped into the second
    assert archive == out / "outputs.zip"
    with zipfile.ZipFile(archive) as bundle:
        assert sorted(bundle.namelist()) == ["metrics.json", "model/config.json"]
        assert bundle.read("model/config.json") == b"model/config.json"


def test_trying_another_file_with_two_files_cancels_both(tmp_path, tiny_model):
    """Step 10 after Run all: two files picked in its upload button, then its next cell run again."""
    widget = FileUploadValue({"first.wav": wav_bytes(0.1), "second.wav": wav_bytes(0.2)})
    new_path = resolve_audio_path(None, widget, tmp_path / "uploads", tmp_path / "default.wav")
    for new_file in list_audio_files(new_path):  # the cell's loop
        helpers.cancel_file(tiny_model, new_file, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "first_inverse.wav", "first_residual.wav", "second_inverse.wav", "second_residual.wav"]


def test_the_outputs_zip_goes_to_google_drive_when_asked_in_colab(tmp_path, monkeypatch):
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "colab_stub"))
    monkeypatch.setenv("COLAB_STUB_DOWNLOADS", str(tmp_path / "downloads.txt"))
    before = {name: module for name, module in sys.modules.items() if name.startswith("google")}
    for name in before:
        del sys.modules[name]
    try:
        import google.colab  # noqa: F401  (the stand-in: in_colab() now says yes)

        out = tmp_path / "outputs"
        (out / "model").mkdir(parents=True)
        (out / "metrics.json").write_text("{}")
        archive = notebook_ui.offer_download(out, to_drive=True, drive_root=tmp_path / "drive")
    finally:  # the real google packages (protobuf's) back, the stand-in gone: later tests are not in Colab
        for name in [name for name in sys.modules if name.startswith("google")]:
            del sys.modules[name]
        sys.modules.update(before)
    assert not notebook_ui.in_colab()
    saved = tmp_path / "drive" / "MyDrive" / "wav2vec2-noise-cancellation" / "outputs.zip"
    assert saved.read_bytes() == archive.read_bytes()
    assert (tmp_path / "downloads.txt").read_text().split() == [str(archive)]


def test_the_widget_of_ipywidgets_7_is_read_too(tmp_path):
    class Version7:  # value: a dict of file name to {"content": bytes, "metadata": …}
        value = {"a.wav": {"content": wav_bytes(0.1)}, "b.wav": {"content": wav_bytes(0.2)}}

    folder = resolve_audio_path(None, Version7(), tmp_path / "uploads", tmp_path / "default.wav")
    assert [p.name for p in list_audio_files(folder)] == ["a.wav", "b.wav"]
