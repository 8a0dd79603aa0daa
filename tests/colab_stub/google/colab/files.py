"""``google.colab.files.upload`` as Colab behaves: the picked files land in the working folder and come back as bytes.

The test names the file to "pick" in ``COLAB_STUB_UPLOAD``; empty or unset means the user cancelled.
"""

import os
from pathlib import Path


def upload() -> dict[str, bytes]:
    source = os.environ.get("COLAB_STUB_UPLOAD")
    if not source:
        return {}
    data = Path(source).read_bytes()
    Path(Path(source).name).write_bytes(data)
    return {Path(source).name: data}
