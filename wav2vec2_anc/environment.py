"""The runtime: which of the notebook's packages Colab lacks, and the versions a run ended up with.

Imports nothing heavy, so the notebook's setup cell can use it before installing anything.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

# What the notebook imports beyond Colab's own stack. torch is never on this list: Colab's build
# matches its CUDA, and a pip install of torch would replace it with a multi-GB download.
NOTEBOOK_PACKAGES = ("transformers", "datasets", "accelerate", "librosa", "soundfile", "pyroomacoustics")


def missing_requirements(requirements: str | Path, packages=NOTEBOOK_PACKAGES, installed_version=None) -> list[str]:
    """The requirement lines of ``packages`` that the environment does not meet, for one ``pip install``.

    Args:
        requirements: path of ``requirements.txt``.
        packages: the distributions to check; other lines (torch among them) are ignored.
        installed_version: ``name → version string`` (raises ``PackageNotFoundError`` when absent);
            defaults to ``importlib.metadata.version``.

    Returns:
        e.g. ``["transformers>=5.24,<6"]``: each line as written, comment stripped.
    """
    from packaging.requirements import Requirement

    installed_version = installed_version or importlib.metadata.version
    missing = []
    for line in Path(requirements).read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if not spec:
            continue
        requirement = Requirement(spec)
        if requirement.name not in packages:
            continue
        try:
            version = installed_version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(spec)
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            missing.append(spec)
    return missing


def versions(packages=("torch", *NOTEBOOK_PACKAGES)) -> str:
    """One line: ``name version`` of each installed package, for the setup cell to print."""
    found = []
    for name in packages:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)
