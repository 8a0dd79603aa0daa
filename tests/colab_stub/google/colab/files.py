"""``google.colab.files`` as Colab behaves: the picked files land in the working folder and come back as bytes.

The test names the files to "pick" in ``COLAB_STUB_UPLOAD``: several joined by ``os.pathsep``, and one such list per
call to ``upload`` separated by ``|`` (the last list answers every later call); empty means the user cancelled.
``download`` appends the path it was offered to the file named in ``COLAB_STUB_DOWNLOADS``.
"""

import os
from pathlib import Path

CALLS = Path(".colab_stub_calls")  # in the working folder: how many uploads were asked for so far


def upload() -> dict[str, bytes]:
    answers = os.environ.get("COLAB_STUB_UPLOAD", "").split("|")
    call = int(CALLS.read_text()) if CALLS.exists() else 0
    CALLS.write_text(str(call + 1))
    picked = [name for name in answers[min(call, len(answers) - 1)].split(os.pathsep) if name]
    uploaded = {}
    for source in picked:
        data = Path(source).read_bytes()
        Path(Path(source).name).write_bytes(data)
        uploaded[Path(source).name] = data
    return uploaded


def download(path: str) -> None:
    with open(os.environ["COLAB_STUB_DOWNLOADS"], "a") as log:
        log.write(f"{path}\n")
