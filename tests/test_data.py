"""Held-out split and (input, −input) pair building."""

import numpy as np

import helpers
from wav2vec2_anc.pairs import inversion_pairs, segment_starts, split_heldout


def test_split_keeps_the_tail_for_heldout():
    audio = np.arange(1000, dtype=np.float32)
    train, heldout = split_heldout(audio, 0.3)
    assert len(train) == 700 and len(heldout) == 300
    assert heldout[0] == 700 and heldout[-1] == 999


def test_segment_starts_cover_the_end():
    np.testing.assert_array_equal(segment_starts(10, 4, 3), [0, 3, 6])
    np.testing.assert_array_equal(segment_starts(11, 4, 3), [0, 3, 6, 7])
    assert len(segment_starts(3, 4, 3)) == 0


def test_pairs_are_segments_and_their_negation():
    audio = np.arange(10, dtype=np.float32)
    inputs, labels = inversion_pairs(audio, 4, 3)
    np.testing.assert_array_equal(inputs, [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])
    np.testing.assert_array_equal(labels, -inputs)


def test_pairs_carry_warmup_before_the_labelled_segment():
    audio = np.arange(12, dtype=np.float32)
    inputs, labels = inversion_pairs(audio, segment_samples=4, hop_samples=4, warmup_samples=2)
    np.testing.assert_array_equal(inputs, [[0, 1, 2, 3, 4, 5], [4, 5, 6, 7, 8, 9], [6, 7, 8, 9, 10, 11]])
    np.testing.assert_array_equal(labels, [[-2, -3, -4, -5], [-6, -7, -8, -9], [-8, -9, -10, -11]])


def test_warmup_with_safety_window_covers_the_outputs_it_judges():
    # 800 + 16 + 4000 + 64 = 4880, plus 4000 + 16 + 1600 = 10496 → 14 blocks
    assert helpers.warmup_samples(64, 16, 800, 4000, safety_window_samples=4000) == 11200


def test_warmup_covers_context_latency_taps_and_a_block():
    # 4880 → 7 blocks
    assert helpers.warmup_samples(filter_taps=64, latency_samples=16, block_samples=800, context_samples=4000) == 5600
    assert helpers.warmup_samples(filter_taps=10, latency_samples=0, block_samples=100, context_samples=100) == 300


def test_dataset_holds_pairs_of_every_clip():
    clips = [
        helpers.Clip("a", train=np.ones(8, np.float32), heldout=np.ones(2, np.float32)),
        helpers.Clip("b", train=np.full(6, 2.0, np.float32), heldout=np.ones(2, np.float32)),
    ]
    dataset = helpers.build_dataset(clips, segment_samples=4, hop_samples=4)
    assert dataset.num_rows == 2 + 2  # a: starts 0, 4; b: starts 0, 2
    row = dataset[3]
    assert row["input_values"].tolist() == [2.0] * 4
    assert row["labels"].tolist() == [-2.0] * 4


def test_head_settings_convert_the_notebook_units_to_samples():
    assert helpers.head_settings(1.0, 50.0, 0.25, filter_taps=64) == dict(
        latency_samples=16, block_samples=800, context_samples=4000, filter_taps=64
    )
