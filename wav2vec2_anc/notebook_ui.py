"""Notebook UI: uploads (Colab's picker, a Jupyter widget, a path when headless) and audio players.

``google.colab``, ``ipywidgets`` and ``IPython`` are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .audio_io import AUDIO_EXTENSIONS, SAMPLE_RATE


def in_colab() -> bool:
    """Whether this runs in Google Colab (its kernel imports ``google.colab`` at start)."""
    return "google.colab" in sys.modules


def read_upload(uploaded: dict[str, bytes], upload_dir: str | os.PathLike) -> Path | None:
    """Store the first uploaded file's bytes in ``upload_dir`` and return its path; ``None`` for no upload.

    Args:
        uploaded: ``{file name: bytes}``, as Colab's ``files.upload()`` returns.
    """
    if not uploaded:
        return None
    name, data = next(iter(uploaded.items()))
    path = Path(upload_dir) / Path(name).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def ask_for_audio(upload_dir: str | os.PathLike):
    """Ask the user for a file: ``files.upload()`` in Colab, an ipywidgets FileUpload in Jupyter.

    Returns:
        In Colab, the path of the uploaded file (``None`` if the upload was cancelled). In Jupyter,
        the FileUpload widget (``resolve_audio_path`` reads it); outside both, ``None``.
    """
    if in_colab():
        from google.colab import files

        return read_upload(files.upload(), upload_dir)
    try:
        import ipywidgets
        from IPython.display import display
    except ImportError:
        return None
    widget = ipywidgets.FileUpload(accept=",".join(AUDIO_EXTENSIONS), multiple=False)
    display(widget)
    return widget


def resolve_audio_path(audio_path, asked, upload_dir, default: Path) -> Path:
    """Choose the input: ``audio_path`` if set, else an uploaded file, else ``default`` (with a note)."""
    if audio_path:
        return Path(audio_path)
    if isinstance(asked, Path):
        return asked
    if asked is not None and getattr(asked, "value", None):
        # ipywidgets 8: a tuple of dicts with "name" and "content" (a memoryview).
        item = asked.value[0]
        return read_upload({item["name"]: bytes(item["content"])}, upload_dir)
    print(f"No file given or uploaded: using the bundled sample {Path(default).name}")
    return Path(default)


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
