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
    if not clips:
        raise AudioInputError(f"{path}: holds no clip (a dataset with no rows)")
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


def switch_draws(owners: np.ndarray, rows: np.ndarray, length: int, warmup_samples: int, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``rows``, the pair whose noise plays first and the sample where the row's own takes over.

    The switch falls anywhere from half-way through the warm-up to half-way through the labelled segment, so the
    encoder's context holds the old noise, both, or the new one alone; the first noise is another clip's pair.

    Args:
        owners: the clip of each pair, the clips' pairs laid end to end, shape ``(pairs,)``.
        rows: the pairs switched to (``balanced_indices``), shape ``(switches,)``.
        length: samples of every input (warm-up and segment).

    Returns:
        ``(donors, cuts)``, each int64 of shape ``(switches,)``.
    """
    rng = np.random.default_rng(seed)
    donors, cuts = np.empty(len(rows), np.int64), np.empty(len(rows), np.int64)
    for k, row in enumerate(rows):
        others = np.flatnonzero(owners != owners[row])
        cuts[k] = rng.integers(warmup_samples // 2, warmup_samples + (length - warmup_samples) // 2 + 1)
        donors[k] = rng.choice(others)
    return donors, cuts


class TrainingPairs:
    """The training pairs, cut when a batch is drawn: each clip's training audio is held once, so memory grows with
    the audio, not with the pairs (a 1-s segment every 0.25 s would copy the audio about five times over).

    Row ``r`` is a ``dict`` of float32 tensors: ``input_values`` (``warmup + segment`` samples), ``labels`` (the
    segment's anti-noise: −input, or in a scene −the noise at the ear) and, with ear noise, ``ear_noise`` (the noise
    at the error microphone over the whole input). The rows are every clip's pairs cycled up to the largest count
    (``balanced_indices``), then, with switches, as many pairs again in which the noise switches clip part-way
    (``switch_draws``). A torch ``Dataset`` for ``transformers.Trainer``.
    """

    def __init__(self, clips: list[Clip], segment_samples: int, hop_samples: int, warmup_samples: int = 0, scene=None,
                 with_switches: bool = False, seed: int = 0, with_ear_noise: bool = False):
        from .acoustics import noise_at_ear

        if with_ear_noise and scene is None:
            raise ValueError("with_ear_noise needs an acoustic scene: without one the input is the noise at the ear")
        self.scene, self.warmup, self.with_ear_noise = scene, warmup_samples, with_ear_noise
        self.length = warmup_samples + segment_samples
        self.audio = [np.asarray(clip.train, dtype=np.float32) for clip in clips]
        self.ears = [None if scene is None else noise_at_ear(audio, scene).astype(np.float32) for audio in self.audio]
        starts = [segment_starts(len(audio), self.length, hop_samples) for audio in self.audio]
        # Every pair, clips end to end, as (clip, start).
        self.owners = np.concatenate([np.full(len(s), i) for i, s in enumerate(starts)] + [np.zeros(0, np.int64)])
        self.starts = np.concatenate(starts + [np.zeros(0, np.int64)]).astype(np.int64)
        counts = [len(s) for s in starts]
        self.rows = balanced_indices(counts)
        self.donors = self.cuts = np.zeros(0, np.int64)
        if with_switches and sum(count > 0 for count in counts) > 1:
            self.donors, self.cuts = switch_draws(self.owners, self.rows, self.length, warmup_samples, seed)

    @property
    def column_names(self) -> list[str]:
        return ["input_values", "labels"] + (["ear_noise"] if self.with_ear_noise else [])

    def __len__(self) -> int:
        return len(self.rows) + len(self.donors)

    num_rows = property(__len__)

    def pair_input(self, pair: int) -> np.ndarray:
        start = self.starts[pair]
        return self.audio[self.owners[pair]][start : start + self.length]

    def __getitem__(self, index: int) -> dict:
        import torch

        from .acoustics import noise_at_ear

        if not -len(self) <= index < len(self):
            raise IndexError(f"row {index} of {len(self)}")
        index %= len(self)
        if index < len(self.rows):
            pair = self.rows[index]
            x = self.pair_input(pair)
            ear = None if self.scene is None else self.ears[self.owners[pair]][self.starts[pair]:][: self.length]
        else:
            k = index - len(self.rows)
            cut = self.cuts[k]
            x = np.concatenate([self.pair_input(self.donors[k])[:cut], self.pair_input(self.rows[k])[cut:]])
            ear = None if self.scene is None else noise_at_ear(x, self.scene).astype(np.float32)
        heard = x if ear is None else ear
        row = {"input_values": torch.from_numpy(np.array(x, dtype=np.float32)),
               "labels": torch.from_numpy(-np.array(heard[self.warmup :], dtype=np.float32))}
        if self.with_ear_noise:
            row["ear_noise"] = torch.from_numpy(np.array(ear, dtype=np.float32))
        return row

    def select(self, indices) -> list[dict]:
        """The rows at ``indices``, as a list."""
        return [self[int(i)] for i in indices]

    def __repr__(self) -> str:
        switches = f", {len(self.donors)} of them switching noise" if len(self.donors) else ""
        seconds = sum(len(a) for a in self.audio) / SAMPLE_RATE
        return (f"TrainingPairs: {len(self)} pairs of {self.length} samples from {len(self.audio)} clips "
                f"({seconds:.1f} s of audio, held once){switches}; columns {self.column_names}")


def build_dataset(clips: list[Clip], segment_samples: int, hop_samples: int, warmup_samples: int = 0, scene=None,
                  with_switches: bool = False, seed: int = 0, with_ear_noise: bool = False) -> TrainingPairs:
    """The training pairs of every clip's training part (``TrainingPairs``): (input, −input), or in an acoustic
    ``scene`` (input, −noise at the ear), the noise at the ear being ``P∗input``; balanced across clips, with switch
    pairs where ``with_switches`` and two or more clips give pairs (seeded by ``seed``)."""
    return TrainingPairs(clips, segment_samples, hop_samples, warmup_samples, scene, with_switches, seed, with_ear_noise)
