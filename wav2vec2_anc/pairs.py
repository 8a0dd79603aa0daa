"""Training pairs: split each clip into a training head and a held-out tail, cut (input, −input) pairs."""

from __future__ import annotations

import dataclasses

import numpy as np

from .audio_io import SAMPLE_RATE, AudioInputError, list_audio_files, load_audio
from .dataset_input import dataset_audio, is_dataset


@dataclasses.dataclass
class Clip:
    """One input file at 16 kHz, split into a training head and a held-out tail."""

    name: str
    train: np.ndarray  # (samples,)
    heldout: np.ndarray  # (samples,)


def split_heldout(audio: np.ndarray, heldout_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split ``audio`` into ``(train, heldout)``: the held-out part is the last ``heldout_fraction``."""
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    split = int(round(len(audio) * (1.0 - heldout_fraction)))
    return audio[:split], audio[split:]


def load_clips(path, min_train_samples: int, heldout_fraction: float) -> list[Clip]:
    """Load every clip at ``path`` (a file, a folder, or a dataset: ``dataset_input``) and split each into train and
    held-out.

    All clips are read and checked before any is used, so bad input fails fast.

    Args:
        min_train_samples: the training part must hold one training pair (segment plus warm-up).

    Raises:
        AudioInputError: any unusable file, or one too short to give one training pair.
    """
    if is_dataset(path):
        named = dataset_audio(str(path))
    else:
        named = ((str(file), file.name, load_audio(file)) for file in list_audio_files(path))
    clips = []
    for label, name, audio in named:
        train, heldout = split_heldout(audio, heldout_fraction)
        if len(train) < min_train_samples or len(heldout) == 0:
            need = min_train_samples / SAMPLE_RATE / (1.0 - heldout_fraction)
            raise AudioInputError(
                f"{label}: clip too short ({len(audio) / SAMPLE_RATE:.2f} s); one training pair needs "
                f"{min_train_samples / SAMPLE_RATE:.2f} s and {heldout_fraction:.0%} is held out, "
                f"so it needs at least {need:.2f} s"
            )
        clips.append(Clip(name=name, train=train, heldout=heldout))
    return clips


def validation_split(clips: list[Clip], validation_fraction: float = 0.2) -> list[Clip]:
    """Each clip's training part split again: ``train`` its head to fit on, ``heldout`` its tail to validate on.

    The clips' own held-out tails are left out entirely.
    """
    split = []
    for clip in clips:
        fit, validation = split_heldout(clip.train, validation_fraction)
        split.append(Clip(name=clip.name, train=fit, heldout=validation))
    return split


def training_audio(clips: list[Clip]) -> np.ndarray:
    """Every clip's training part, end to end, shape ``(samples,)``: what the closed-form fits see."""
    return np.concatenate([clip.train for clip in clips])


def segment_starts(num_samples: int, segment_samples: int, hop_samples: int) -> np.ndarray:
    """Start indices of the segments of length ``segment_samples`` every ``hop_samples``; the last ends at the end."""
    if num_samples < segment_samples:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, num_samples - segment_samples + 1, hop_samples)
    if starts[-1] != num_samples - segment_samples:
        starts = np.append(starts, num_samples - segment_samples)
    return starts


def inversion_pairs(
    audio: np.ndarray,
    segment_samples: int,
    hop_samples: int,
    warmup_samples: int = 0,
    noise_at_ear: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``audio`` into segments and pair each with the anti-noise that cancels it exactly.

    Each input carries ``warmup_samples`` of the audio before its segment, so the model has the past
    it will have at inference; the label covers the segment only.

    Args:
        noise_at_ear: the noise where it is to be cancelled, ``P∗audio`` in an acoustic scene, same
            shape as ``audio``; ``None``: the audio itself (today's task).

    Returns:
        ``(inputs, labels)``: float32 of shapes ``(pairs, warmup + segment)`` and ``(pairs, segment)``,
        with ``labels == −noise_at_ear`` over each segment (``−inputs[:, warmup:]`` without a scene).
    """
    length = warmup_samples + segment_samples
    starts = segment_starts(len(audio), length, hop_samples)
    inputs = np.stack([audio[s : s + length] for s in starts]).astype(np.float32)
    if noise_at_ear is None:
        return inputs, -inputs[:, warmup_samples:]
    target = np.stack([noise_at_ear[s + warmup_samples : s + length] for s in starts]).astype(np.float32)
    return inputs, -target


def balanced_indices(pair_counts: list[int]) -> np.ndarray:
    """Row indices into the clips' pairs laid end to end that give every clip as many rows as the largest has.

    Clip ``i``'s ``pair_counts[i]`` pairs are cycled in order up to the largest count, so each of its
    pairs appears ``⌊N/n⌋`` or ``⌈N/n⌉`` times and every clip holds exactly ``N`` rows: an epoch sees
    each file equally often whatever its length. Deterministic (no draw); a clip with no pairs gets none.

    Args:
        pair_counts: pairs per clip, in the order they are laid end to end.

    Returns:
        int64 of shape ``(clips with pairs × N,)``, clip by clip.
    """
    largest = max(pair_counts, default=0)
    offsets = np.cumsum([0, *pair_counts[:-1]])
    return np.concatenate([offset + np.arange(largest) % count for offset, count in zip(offsets, pair_counts) if count]
                          + [np.zeros(0, dtype=np.int64)]).astype(np.int64)


def switch_pairs(
    pairs: list[tuple[np.ndarray, np.ndarray]], rows: np.ndarray, warmup_samples: int, scene=None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs in which the noise switches: another clip's pair up to a random sample, the row's own after it.

    A canceller trained on one noise at a time never hears a change; these teach it to follow one.
    The switch falls anywhere from half-way through the warm-up to half-way through the labelled
    segment, so the encoder's context holds the old noise, both, or the new one alone.

    Args:
        pairs: each clip's ``inversion_pairs``, ``(inputs, labels)``; at least two clips with pairs.
        rows: indices into the clips' pairs laid end to end (``balanced_indices``): one switch pair each,
            whose new noise is that row.
        warmup_samples: of every input.
        scene: the ``acoustics.Scene`` the labels are at the ear of (``None``: the input itself).

    Returns:
        ``(inputs, labels)`` shaped like ``inversion_pairs``'s, one pair per row.
    """
    from .acoustics import noise_at_ear

    rng = np.random.default_rng(seed)
    inputs = np.concatenate([p[0] for p in pairs])
    owner = np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(pairs)])
    length = inputs.shape[1]
    switched = np.empty((len(rows), length), dtype=np.float32)
    for k, row in enumerate(rows):
        donors = np.flatnonzero(owner != owner[row])
        cut = rng.integers(warmup_samples // 2, warmup_samples + (length - warmup_samples) // 2 + 1)
        switched[k] = np.concatenate([inputs[rng.choice(donors)][:cut], inputs[row][cut:]])
    at_ear = switched if scene is None else np.stack([noise_at_ear(x, scene) for x in switched]).astype(np.float32)
    return switched, -at_ear[:, warmup_samples:]


def build_dataset(clips: list[Clip], segment_samples: int, hop_samples: int, warmup_samples: int = 0, scene=None,
                  with_switches: bool = False, seed: int = 0, with_ear_noise: bool = False):
    """The training pairs of every clip's training part as a ``datasets.Dataset``: (input, −input), or
    in an acoustic ``scene`` (input, −noise at the ear), the noise at the ear being ``P∗input``.

    Columns ``input_values`` (``warmup + segment`` samples) and ``labels`` (``segment`` samples), float32,
    and with ``with_ear_noise`` (a scene's, for a model that ``needs_ear_noise``) ``ear_noise``: ``P∗input``
    over the whole input, what the error microphone hears of the noise before any anti-noise plays.
    Each file counts the same whatever its length: when the clips give different numbers of pairs,
    the rows are every clip's pairs cycled up to the largest count (``balanced_indices``), through
    ``Dataset.select``'s index mapping, so the repeats cost no memory. A single clip's dataset (and
    clips of equal pair counts) are the pairs clip by clip, unchanged. With ``with_switches`` and a
    library of two or more clips, as many rows again are ``switch_pairs`` (seeded by ``seed``).
    """
    import datasets

    from .acoustics import noise_at_ear

    if with_ear_noise and scene is None:
        raise ValueError("with_ear_noise needs an acoustic scene: without one the input is the noise at the ear")
    ears = [None if scene is None else noise_at_ear(clip.train, scene) for clip in clips]
    pairs = [inversion_pairs(clip.train, segment_samples, hop_samples, warmup_samples, ear) for clip, ear in zip(clips, ears)]
    columns = {"input_values": np.concatenate([p[0] for p in pairs]), "labels": np.concatenate([p[1] for p in pairs])}
    if with_ear_noise:
        # Cut as the inputs are, from each clip's whole noise at the ear.
        columns["ear_noise"] = np.concatenate([inversion_pairs(ear, segment_samples, hop_samples, warmup_samples)[0]
                                               for ear in ears])
    features = datasets.Features({name: datasets.Sequence(datasets.Value("float32")) for name in columns})
    dataset = datasets.Dataset.from_dict({name: list(values) for name, values in columns.items()}, features=features)
    counts = [len(p[0]) for p in pairs]
    rows = balanced_indices(counts)
    if len(set(counts)) > 1:
        dataset = dataset.select(rows)
    if with_switches and sum(count > 0 for count in counts) > 1:
        switched, switched_labels = switch_pairs(pairs, rows, warmup_samples, scene, seed)
        extra = {"input_values": list(switched), "labels": list(switched_labels)}
        if with_ear_noise:
            extra["ear_noise"] = [noise_at_ear(x, scene).astype(np.float32) for x in switched]
        dataset = datasets.concatenate_datasets([dataset, datasets.Dataset.from_dict(extra, features=features)])
    return dataset.with_format("torch")
