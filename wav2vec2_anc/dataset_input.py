"""Noise from a 🤗 ``datasets`` dataset: a folder written by ``save_to_disk``, or a hub dataset ``hub:NAME[:CONFIG[:SPLIT]]``.

Each row is a clip, named by its id column where there is one (``ID_COLUMNS``), else by its audio's file name, else
``row-<index>``. The audio column (an ``Audio`` feature, or a struct or column of raw bytes) is read undecoded and
decoded with soundfile and librosa (``audio_io``), as files are: ``datasets``' own decoder needs torchcodec and
FFmpeg, which may be absent. Rows are checked as files are, and an error names the row (its index and id). A hub
dataset streams (``streaming=True``), so only the rows used are downloaded; rows are read until
``DATASET_CAP_HOURS`` of audio, so an hour-long corpus does not fill memory by accident.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .audio_io import AudioInputError, check_audio, decode_audio, to_mono_16k

HUB_PREFIX = "hub:"
DATASET_CAP_HOURS = 2.0
ID_COLUMNS = ("id", "file", "filename", "file_name", "name", "path")
# save_to_disk writes one of these into the folder (a Dataset, or a DatasetDict).
SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def is_dataset(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a dataset: ``hub:…``, or a folder ``save_to_disk`` wrote."""
    text = str(path)
    return text.startswith(HUB_PREFIX) or (Path(text).is_dir() and any((Path(text) / m).is_file() for m in SAVED_MARKERS))


def open_dataset(spec: str):
    """The rows of ``spec``: a saved ``Dataset`` (a ``DatasetDict``'s ``train`` split, else its first), or a hub
    dataset's split (default ``train``), streamed."""
    import datasets

    if spec.startswith(HUB_PREFIX):
        name, config, split = (spec[len(HUB_PREFIX):].split(":") + ["", ""])[:3]
        return datasets.load_dataset(name, config or None, split=split or "train", streaming=True)
    data = datasets.load_from_disk(spec)
    if isinstance(data, datasets.DatasetDict):
        data = data["train"] if "train" in data else data[next(iter(data))]
    return data


def audio_column(features) -> str:
    """The audio column: the one ``Audio`` feature, else one named ``audio``.

    Raises:
        AudioInputError: no such column.
    """
    import datasets

    columns = [name for name, feature in (features or {}).items() if isinstance(feature, datasets.Audio)]
    if columns:
        return columns[0]
    if features and "audio" in features:
        return "audio"
    raise AudioInputError(f"dataset has no Audio feature nor an 'audio' column (columns: {sorted(features or {})})")


def encoded_bytes(value, label: str) -> tuple[bytes, str | None]:
    """An audio cell's encoded file and its file name: ``{"bytes", "path"}`` (an undecoded ``Audio``) or raw bytes."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value), None
    if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        path = value.get("path")
        if value.get("bytes"):
            return bytes(value["bytes"]), path
        if Path(path).is_file():
            return Path(path).read_bytes(), path
        raise AudioInputError(f"{label}: its audio file {path} is not there")
    raise AudioInputError(f"{label}: the audio cell holds neither bytes nor a file ({type(value).__name__})")


def dataset_audio(spec: str, cap_hours: float = DATASET_CAP_HOURS) -> Iterator[tuple[str, str, np.ndarray]]:
    """Each row's label for messages (the dataset, the row's index and id), its name, and its audio, 16 kHz mono
    float32 of shape ``(samples,)``, checked, until ``cap_hours`` of audio.

    Raises:
        AudioInputError: naming the dataset and the row (index and id) for an unreadable, silent or NaN/Inf row.
    """
    import datasets

    data = open_dataset(spec)
    # A streamed dataset may not know its columns until a row is read; then nothing decodes its audio either.
    features = data.features if data.features is not None else dict.fromkeys(next(iter(data), {}))
    column = audio_column(features)
    if isinstance(features[column], datasets.Audio):
        data = data.cast_column(column, datasets.Audio(decode=False))
    id_column = next((name for name in ID_COLUMNS if name in features and name != column), None)
    budget = int(cap_hours * 3600 * 16_000)
    taken: set[str] = set()
    for index, row in enumerate(data):
        row_id = row[id_column] if id_column else None
        label = f"{spec}: row {index}" + (f" (id {row_id})" if row_id is not None else "")
        encoded, file_name = encoded_bytes(row[column], label)
        audio, rate = decode_audio(encoded, label)
        check_audio(audio, label)
        name = str(row_id) if row_id is not None else (Path(file_name).name if file_name else f"row-{index}")
        while name in taken:
            name = f"{name}-{index}"
        taken.add(name)
        mono = to_mono_16k(audio, rate)
        yield label, name, mono
        budget -= len(mono)
        if budget <= 0:
            print(f"{spec}: read up to the cap of {cap_hours:g} h of audio (dataset_input.DATASET_CAP_HOURS)")
            return
