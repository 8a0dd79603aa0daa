"""The setup cell's check of what Colab lacks: only the notebook's packages, never torch."""

import importlib.metadata

import pytest

from wav2vec2_anc.environment import missing_requirements, versions

REQUIREMENTS = """\
torch>=2.1
transformers>=5.24,<6   # the model
datasets>=5.2
librosa>=0.11
soundfile>=0.14
scipy>=1.11
"""


def fake_versions(found):
    def version(name):
        if name not in found:
            raise importlib.metadata.PackageNotFoundError(name)
        return found[name]

    return version


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ({"transformers": "5.24.0", "datasets": "5.2.0", "librosa": "0.11.0", "soundfile": "0.14.0"}, []),
        # Colab's older transformers and datasets, no soundfile: one line each, as written.
        ({"transformers": "4.57.1", "datasets": "4.0.0", "librosa": "0.11.0"},
         ["transformers>=5.24,<6", "datasets>=5.2", "soundfile>=0.14"]),
        ({"transformers": "6.0.0", "datasets": "5.2.0", "librosa": "0.11.0", "soundfile": "0.14.0"},
         ["transformers>=5.24,<6"]),
    ],
)
def test_missing_requirements_lists_only_what_is_absent_or_out_of_range(tmp_path, found, expected):
    path = tmp_path / "requirements.txt"
    path.write_text(REQUIREMENTS)
    # torch and scipy are absent here and still not listed: they are not the notebook's to install.
    assert missing_requirements(path, installed_version=fake_versions(found)) == expected


def test_this_environment_meets_the_repository_requirements():
    from conftest import REPO

    assert missing_requirements(REPO / "requirements.txt") == []
    assert versions().startswith(f"torch {importlib.metadata.version('torch')}, transformers ")
