"""Held-out split and (input, −input) pair building."""

import numpy as np
import pytest

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


@pytest.mark.parametrize("safety_window,update_lag,every", [(0, 0, 1), (4000, 0, 1), (0, 800, 1), (4000, 1600, 1),
                                                            (0, 800, 2), (4000, 800, 3)])
@pytest.mark.parametrize("latency", [0, 16, 80])
def test_the_warmup_is_all_the_past_an_output_needs(latency, safety_window, update_lag, every):
    """Run from ``warmup`` samples before an update's block edge, the model gives the samples after it exactly as
    one pass over the whole signal does: the context, the filter's taps, the latency, the glide, the safety gains'
    window and the update that blocks reuse."""
    import torch
    from conftest import predictable_noise, predicting_model

    audio = predictable_noise(32_000, seed=4)
    model = predicting_model(latency, safety_window, audio, update_lag, every)
    x = torch.from_numpy(audio)[None]
    whole = model(x).inverse[0]
    keep = 24_000  # an update's block edge, with more than the warm-up before it
    assert keep % model.update_period == 0 and keep > model.warmup and model.warmup % model.update_period == 0
    part = model(x[:, keep - model.warmup :]).inverse[0, model.warmup :]
    assert whole[keep:].abs().max() > 0.05  # the model makes anti-noise there
    torch.testing.assert_close(part, whole[keep:], atol=1e-5, rtol=0)


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
        latency_samples=16, block_samples=800, context_samples=4000, update_lag_samples=0, encoder_update_blocks=1,
        filter_taps=64
    )
    assert helpers.head_settings(1.0, 50.0, 0.25, update_lag_ms=50.0)["update_lag_samples"] == 800
    assert helpers.head_settings(1.0, 20.0, 0.25, encoder_update_ms=100.0)["encoder_update_blocks"] == 5
    with pytest.raises(ValueError, match="whole number of blocks"):
        helpers.head_settings(1.0, 50.0, 0.25, encoder_update_ms=75.0)


def ramp_clip(name, seconds, offset):
    """A clip whose samples are ``offset`` plus a ramp in [0, 1): a row's first sample names its clip and its start."""
    samples = int(seconds * 16_000)
    return helpers.Clip(name, train=(offset + np.arange(samples) / samples).astype(np.float32),
                        heldout=np.zeros(10, np.float32))


def test_every_file_gives_as_many_rows_whatever_its_length():
    # 1-s segments every 0.25 s: the 2-s clip has 5 pairs, the 8-s one 29; each file then holds 29 rows.
    short, long = ramp_clip("short", 2.0, 0.0), ramp_clip("long", 8.0, 1.0)
    dataset = helpers.build_dataset([short, long], segment_samples=16_000, hop_samples=4_000)
    first = np.array([float(row["input_values"][0]) for row in dataset])
    from_short, from_long = first[first < 1.0], first[first >= 1.0]
    assert len(from_short) == len(from_long) == 29
    np.testing.assert_allclose(np.sort(from_long), 1.0 + np.arange(29) * 4_000 / 128_000, rtol=1e-6)
    starts, repeats = np.unique(np.round(from_short * 32_000), return_counts=True)
    np.testing.assert_array_equal(starts, [0, 4_000, 8_000, 12_000, 16_000])  # every pair of the short file …
    assert sorted(repeats) == [5, 6, 6, 6, 6]  # … cycled in order up to 29 rows
    assert (dataset[0]["labels"] == -dataset[0]["input_values"]).all()


def test_a_single_clip_dataset_is_its_pairs_in_order():
    clip = ramp_clip("only", 2.0, 0.0)
    dataset = helpers.build_dataset([clip], segment_samples=16_000, hop_samples=4_000, warmup_samples=800)
    inputs, labels = inversion_pairs(clip.train, 16_000, 4_000, 800)
    np.testing.assert_array_equal(np.stack([row["input_values"].numpy() for row in dataset]), inputs)
    np.testing.assert_array_equal(np.stack([row["labels"].numpy() for row in dataset]), labels)
    assert dataset.column_names == ["input_values", "labels"]


def test_a_dataset_for_a_model_that_hears_the_ear_carries_the_noise_there_over_each_whole_input():
    from wav2vec2_anc.acoustics import Scene, noise_at_ear

    scene = Scene("hand", np.array([0.0, 0.5, 0.25]), np.array([1.0]))
    clip = ramp_clip("only", 2.0, 0.0)
    dataset = helpers.build_dataset([clip], 16_000, 4_000, 800, scene, with_ear_noise=True)
    assert dataset.column_names == ["input_values", "labels", "ear_noise"]
    # Cut from the clip's whole noise at the ear, as the inputs are from its audio: 0.5·x[n−1] + 0.25·x[n−2].
    x = clip.train.astype(np.float64)
    at_ear = np.concatenate([[0.0], 0.5 * x[:-1]]) + np.concatenate([[0.0, 0.0], 0.25 * x[:-2]])
    for row, start in zip(dataset, [0, 4_000, 8_000, 12_000, 15_200]):
        np.testing.assert_allclose(row["ear_noise"].numpy(), at_ear[start : start + 16_800], rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(row["labels"].numpy(), -row["ear_noise"].numpy()[800:])
    np.testing.assert_allclose(noise_at_ear(x, scene), at_ear, atol=1e-12)
    with pytest.raises(ValueError, match="acoustic scene"):
        helpers.build_dataset([clip], 16_000, 4_000, 800, with_ear_noise=True)


def test_switch_pairs_hold_another_clips_audio_then_the_rows_own():
    # Clip "a" is the values in [0, 1), clip "b" those in [1, 2): every sample says which clip it came from.
    a, b = ramp_clip("a", 2.0, 0.0), ramp_clip("b", 3.0, 1.0)
    warmup, segment = 800, 16_000
    dataset = helpers.build_dataset([a, b], segment, 4_000, warmup, with_switches=True, seed=1)
    plain = helpers.build_dataset([a, b], segment, 4_000, warmup)
    assert len(dataset) == 2 * len(plain)
    switched = dataset.select(range(len(plain), len(dataset)))
    owners = []
    for row, own in zip(switched, plain):
        x, own_x = row["input_values"].numpy(), own["input_values"].numpy()
        owner = x >= 1.0
        cut = len(x) - int(np.argmax((owner != owner[-1])[::-1]))  # the first sample of the row's own clip …
        assert warmup // 2 <= cut <= warmup + segment // 2
        np.testing.assert_array_equal(x[cut:], own_x[cut:])  # … from there on, the row's own pair
        assert (owner[:cut] != owner[-1]).all()  # before it, the other clip's
        np.testing.assert_array_equal(row["labels"].numpy(), -x[warmup:])
        owners.append(owner[-1])
    assert 0 < sum(owners) < len(owners)  # both clips are the new noise in some rows
    single = helpers.build_dataset([b], segment, 4_000, warmup, with_switches=True)
    assert len(single) == len(helpers.build_dataset([b], segment, 4_000, warmup))  # one clip: nothing to switch from


def reference_pairs(clips, segment, hop, warmup, scene=None, with_switches=False, seed=0, with_ear_noise=False):
    """The pairs as they were built before they were cut on the fly (commit 24db5da's ``build_dataset``, every pair
    copied into memory), rows in order: the reference the on-the-fly pairs must equal."""
    from wav2vec2_anc.acoustics import noise_at_ear
    from wav2vec2_anc.pairs import balanced_indices

    ears = [None if scene is None else noise_at_ear(clip.train, scene) for clip in clips]
    pairs = [inversion_pairs(clip.train, segment, hop, warmup, ear) for clip, ear in zip(clips, ears)]
    inputs, labels = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
    ear_rows = np.concatenate([inversion_pairs(ear, segment, hop, warmup)[0] for ear in ears]) if with_ear_noise else None
    rows = balanced_indices([len(p[0]) for p in pairs])
    out = [(inputs[r], labels[r], None if ear_rows is None else ear_rows[r]) for r in rows]
    if with_switches:
        rng = np.random.default_rng(seed)
        owner = np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(pairs)])
        for row in rows:
            donors = np.flatnonzero(owner != owner[row])
            cut = rng.integers(warmup // 2, warmup + segment // 2 + 1)
            x = np.concatenate([inputs[rng.choice(donors)][:cut], inputs[row][cut:]])
            at_ear = x if scene is None else noise_at_ear(x, scene).astype(np.float32)
            out.append((x, -at_ear[warmup:], at_ear if with_ear_noise else None))
    return out


def test_pairs_cut_on_the_fly_are_the_pairs_copied_before():
    from wav2vec2_anc.acoustics import Scene

    scene = Scene("hand", np.array([0.0, 0.5, 0.25]), np.array([1.0]))
    clips = [ramp_clip("a", 2.0, 0.0), ramp_clip("b", 3.1, 1.0), ramp_clip("c", 1.3, 2.0)]
    for kwargs in (dict(), dict(scene=scene, with_switches=True, seed=3, with_ear_noise=True)):
        dataset = helpers.build_dataset(clips, 8_000, 2_000, 800, **kwargs)
        expected = reference_pairs(clips, 8_000, 2_000, 800, **kwargs)
        assert len(dataset) == len(expected) > 40
        for row, (x, label, ear) in zip(dataset, expected):
            np.testing.assert_array_equal(row["input_values"].numpy(), x)
            np.testing.assert_allclose(row["labels"].numpy(), label, rtol=1e-6, atol=1e-7)
            if ear is not None:
                np.testing.assert_allclose(row["ear_noise"].numpy(), ear, rtol=1e-6, atol=1e-7)


def test_pairs_hold_the_audio_once_whatever_their_number():
    clip = ramp_clip("long", 60.0, 0.0)
    dataset = helpers.build_dataset([clip], 16_000, 4_000, 800)
    held = sum(array.nbytes for array in dataset.audio) + dataset.starts.nbytes + dataset.rows.nbytes
    assert len(dataset) == 237 and held < 1.1 * clip.train.nbytes  # copied pairs would be 237 × 16 800 × 4 B, 4.2×
