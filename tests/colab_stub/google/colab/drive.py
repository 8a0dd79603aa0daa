"""``google.colab.drive`` for tests: mounting makes the folder that Colab would show as the user's Drive."""

from pathlib import Path


def mount(mountpoint: str) -> None:
    (Path(mountpoint) / "MyDrive").mkdir(parents=True, exist_ok=True)
