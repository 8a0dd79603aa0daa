"""``google.colab.files`` as Colab behaves: the picked files land in the working folder and come back as bytes.

The test names the files to "pick" in ``COLAB_STUB_UPLOAD`` (several joined by ``os.pathsep``); empty or unset means
the user cancelled. ``download`` appends the path it was offered to the file named in ``COLAB_STUB_DOWNLOADS``.
"""

import os
from pathlib import Path


def upload() -> dict[str, bytes]:
    picked = [name for name in os.environ.get("COLAB_STUB_UPLOAD", "").split(os.pathsep) if name]
    uploaded = {}
    for source in picked:
        data = Path(source).read_bytes()
        Path(Path(source).name).write_bytes(data)
        uploaded[Path(source).name] = data
    return uploaded


def download(path: str) -> None:
    with open(os.environ["COLAB_STUB_DOWNLOADS"], "a") as log:
        log.write(f"{path}\n")
