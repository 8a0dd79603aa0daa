"""Notebook UI: uploads (Colab's picker, a Jupyter widget, a path when headless) and audio players.

``google.colab``, ``ipywidgets`` and ``IPython`` are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .audio_io import AUDIO_EXTENSIONS, SAMPLE_RATE, AudioInputError


def in_colab() -> bool:
    """Whether this runs in Google Colab (its kernel imports ``google.colab`` at start)."""
    return "google.colab" in sys.modules


# A .zip upload is unpacked only if its directory promises no more than this, in all and in entries:
# a zip bomb or a tree of thousands of files is refused before a byte is written.
MAX_ZIP_UNCOMPRESSED_BYTES = 1 << 30  # 1 GiB
MAX_ZIP_ENTRIES = 1000
_SYMLINK_MODE = 0o120000  # S_IFLNK in a zip entry's Unix mode (the high 16 bits of external_attr)


def is_audio_name(name: str) -> bool:
    """Whether a file name has one of ``AUDIO_EXTENSIONS`` (any case)."""
    return Path(name).suffix.lower() in AUDIO_EXTENSIONS


def zip_audio_members(archive, zip_name: str) -> list:
    """The audio entries of an open ``zipfile.ZipFile``, checked from its directory before anything is read.

    Entries other than audio are skipped, and so are hidden ones (a name part starting with ``.``, as
    macOS's ``__MACOSX/._x.wav`` resource forks do, and the ``__MACOSX`` folder itself).

    Raises:
        AudioInputError: naming ``zip_name``, for more than ``MAX_ZIP_ENTRIES`` entries, an entry whose
            path is absolute or climbs out with ``..``, a symbolic link, audio entries that would unpack
            to more than ``MAX_ZIP_UNCOMPRESSED_BYTES``, or no audio entry at all.
    """
    from pathlib import PurePosixPath

    entries = archive.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise AudioInputError(f"{zip_name}: zip holds {len(entries)} entries, more than the {MAX_ZIP_ENTRIES} allowed")
    audio = []
    for entry in entries:
        path = PurePosixPath(entry.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0].endswith(":")):
            raise AudioInputError(f"{zip_name}: zip entry {entry.filename!r} points outside the folder it unpacks to")
        if (entry.external_attr >> 16) & 0o170000 == _SYMLINK_MODE:
            raise AudioInputError(f"{zip_name}: zip entry {entry.filename!r} is a symbolic link")
        hidden = any(part.startswith(".") or part == "__MACOSX" for part in path.parts)
        if not entry.is_dir() and not hidden and is_audio_name(path.name):
            audio.append(entry)
    total = sum(entry.file_size for entry in audio)
    if total > MAX_ZIP_UNCOMPRESSED_BYTES:
        raise AudioInputError(f"{zip_name}: zip's audio would unpack to {total / 1e6:.0f} MB, more than the "
                              f"{MAX_ZIP_UNCOMPRESSED_BYTES / 1e6:.0f} MB allowed")
    if not audio:
        raise AudioInputError(f"{zip_name}: zip holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    return audio


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext``, … if taken (case-insensitively); adds the result to ``taken``."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, number = name, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{stem}-{number}{suffix}"
    taken.add(candidate.lower())
    return candidate


def unpack_upload(uploaded: dict[str, bytes], folder: Path) -> list[Path]:
    """Write every uploaded audio file, and the audio files of every uploaded ``.zip``, flat into ``folder``.

    Folders inside a zip are flattened: each file keeps its own name, and a name met before (in any
    case) becomes ``stem-2.ext``, ``stem-3.ext``, … in upload order and the zip's own order, so no file
    overwrites another.

    Returns:
        The paths written, in that order.

    Raises:
        AudioInputError: an unsafe or empty zip (``zip_audio_members``), a corrupt one, or an upload
            that is neither audio nor a zip.
    """
    import io
    import shutil
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    written = []
    for name, data in uploaded.items():
        name = Path(name.replace("\\", "/")).name
        if Path(name).suffix.lower() == ".zip":
            try:
                archive = zipfile.ZipFile(io.BytesIO(data))
            except zipfile.BadZipFile as error:
                raise AudioInputError(f"{name}: not a readable zip file ({error})") from error
            with archive:
                for entry in zip_audio_members(archive, name):
                    path = folder / unique_name(Path(entry.filename.replace("\\", "/")).name, taken)
                    # zipfile stops each entry at the size its directory declares (and checks the CRC), so
                    # the sizes checked above bound what is written.
                    with archive.open(entry) as source, path.open("wb") as target:
                        shutil.copyfileobj(source, target)
                    written.append(path)
        elif is_audio_name(name):
            path = folder / unique_name(name, taken)
            path.write_bytes(data)
            written.append(path)
        else:
            raise AudioInputError(f"{name}: neither an audio file ({', '.join(AUDIO_EXTENSIONS)}) nor a .zip of them")
    return written


def read_upload(uploaded: dict[str, bytes], upload_dir: str | os.PathLike) -> Path | None:
    """Store an upload in ``upload_dir`` and return the ``AUDIO_PATH`` to use; ``None`` for no upload.

    One file that is not a zip is stored as ``upload_dir/<name>`` whatever its extension (the loader
    then says if it is not audio), as before several files were accepted. Anything else (several
    files, or ``.zip`` archives of them, which are unpacked safely: ``unpack_upload``) becomes a
    library in a folder of its own, ``upload_dir/library-<12 hex digits>``, named by a SHA-256 of the
    upload, so an earlier upload's files never mix in and the same upload again lands in the same
    place. If that leaves exactly one audio file, its path is returned, else the folder's
    (``load_clips`` trains one model on every file of a folder).

    Args:
        uploaded: ``{file name: bytes}``, as Colab's ``files.upload()`` returns.

    Raises:
        AudioInputError: as ``unpack_upload``.
    """
    import hashlib
    import shutil

    if not uploaded:
        return None
    upload_dir = Path(upload_dir)
    if len(uploaded) == 1 and Path(next(iter(uploaded))).suffix.lower() != ".zip":
        name, data = next(iter(uploaded.items()))
        path = upload_dir / Path(name.replace("\\", "/")).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path
    digest = hashlib.sha256()
    for name, data in uploaded.items():
        digest.update(hashlib.sha256(name.encode()).digest() + hashlib.sha256(data).digest())
    folder = upload_dir / f"library-{digest.hexdigest()[:12]}"
    staging = upload_dir / f".{folder.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        written = unpack_upload(uploaded, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # a refused upload leaves nothing behind
        raise
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder / written[0].name if len(written) == 1 else folder


def ask_for_audio(upload_dir: str | os.PathLike, picker: bool = True):
    """Ask the user for files: ``files.upload()`` in Colab, an ipywidgets FileUpload in Jupyter.

    Several audio files, or ``.zip`` archives of them, may be picked: together they are the library
    one model trains on (``read_upload``).

    Args:
        picker: in Colab, Colab's own file picker, which stops "Run all" until it is answered; False shows the
            widget there too, so that "Run all" stops for one upload at most (step 2's) and later uploads are
            read when their cell is run again.

    Returns:
        In Colab with ``picker``, the ``AUDIO_PATH`` of the upload (``read_upload``; ``None`` if it was cancelled).
        Else the FileUpload widget (``resolve_audio_path`` reads it); without ipywidgets, ``None``.
    """
    if in_colab() and picker:
        from google.colab import files

        return read_upload(files.upload(), upload_dir)
    try:
        import ipywidgets
        from IPython.display import display
    except ImportError:
        return None
    widget = ipywidgets.FileUpload(accept=",".join((*AUDIO_EXTENSIONS, ".zip")), multiple=True)
    display(widget)
    return widget


def resolve_audio_path(audio_path, asked, upload_dir, default: Path) -> Path:
    """Choose the input: ``audio_path`` if set, else the upload (``read_upload``), else ``default`` (with a note)."""
    if audio_path:
        return Path(audio_path)
    if isinstance(asked, Path):
        return asked
    if asked is not None and getattr(asked, "value", None):
        value = asked.value
        # ipywidgets 8: a tuple of dicts with "name" and "content" (a memoryview); 7 (as Colab has shipped): a dict
        # of file name to a dict with "content".
        items = value.items() if isinstance(value, dict) else ((item["name"], item) for item in value)
        return read_upload({name: bytes(item["content"]) for name, item in items}, upload_dir)
    print(f"No file given or uploaded: using the bundled sample {Path(default).name}")
    return Path(default)


# A residual this far below the input (−20 dB) is hard to hear beside it: a louder copy joins the players.
FAINT_RESIDUAL_RATIO = 0.1


def listening_set(noise: np.ndarray, anti_noise: np.ndarray) -> dict[str, np.ndarray]:
    """The players of a result, in the order to listen: the noise and what is left of it side by side (A/B), the
    residual ×10 where it is faint, then the anti-noise, labelled for a newcomer.

    Args:
        noise, anti_noise: where they meet (the input and the model's output, or both at the ear), same shape.
    """
    residual = noise + anti_noise
    players = {"A: the noise": noise, "B: what is left (noise + anti-noise)": residual}
    if np.sqrt(np.mean(np.square(residual, dtype=np.float64))) < FAINT_RESIDUAL_RATIO * np.sqrt(
            np.mean(np.square(noise, dtype=np.float64))):
        players["B × 10, to hear what is left"] = 10 * residual
    players["the anti-noise: the noise upside down, so alone it sounds the same; only the sum matters"] = anti_noise
    return players


def play_all(signals: dict[str, np.ndarray], max_seconds: float = 30.0):
    """A labelled audio player per signal, the first ``max_seconds`` only, all scaled by one factor.

    One factor keeps their levels comparable; the cap keeps a long file from putting tens of MB of
    audio into the notebook.
    """
    from IPython.display import Audio, display

    limit = int(max_seconds * SAMPLE_RATE)
    peak = max(float(np.max(np.abs(s[:limit]))) for s in signals.values())
    scale = 1.0 / peak if peak > 1.0 else 1.0
    for label, signal in signals.items():
        shown = np.asarray(signal[:limit], dtype=np.float32)
        note = f" (first {max_seconds:g} s of {len(signal) / SAMPLE_RATE:.0f} s)" if len(signal) > limit else ""
        print(label + note)
        display(Audio(shown * scale, rate=SAMPLE_RATE, normalize=False))


def zip_outputs(output_dir: str | os.PathLike) -> Path:
    """Zip what a run wrote into ``output_dir/<folder name>.zip``, less the checkpoints and uploads (large, and
    yours already); the zip never holds itself.

    Returns:
        The zip's path.
    """
    import zipfile

    output_dir = Path(output_dir)
    archive = output_dir / f"{output_dir.resolve().name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(output_dir.rglob("*")):
            relative = path.relative_to(output_dir)
            if path.is_file() and path != archive and relative.parts[0] not in ("checkpoints", "uploads"):
                bundle.write(path, relative)
    return archive


def offer_download(output_dir: str | os.PathLike, to_drive: bool = False,
                   drive_root: str | os.PathLike = "/content/drive") -> Path:
    """Zip the outputs (``zip_outputs``) and, in Colab, offer the zip for download: they vanish with the runtime.

    Args:
        to_drive: in Colab, also mount Google Drive at ``drive_root`` (Colab asks for permission) and copy the zip to
            ``MyDrive/wav2vec2-noise-cancellation/`` there.

    Returns:
        The zip's path.
    """
    import shutil

    archive = zip_outputs(output_dir)
    if not in_colab():
        print(f"Everything this run wrote is in {Path(output_dir).resolve()} (zipped: {archive.name})"
              + ("; saving to Google Drive works in Colab only" if to_drive else ""))
        return archive
    from google.colab import files

    files.download(str(archive))
    if to_drive:
        from google.colab import drive

        drive.mount(str(drive_root))
        folder = Path(drive_root) / "MyDrive" / "wav2vec2-noise-cancellation"
        folder.mkdir(parents=True, exist_ok=True)
        print(f"Saved to Google Drive: {shutil.copy2(archive, folder / archive.name)}")
    return archive
