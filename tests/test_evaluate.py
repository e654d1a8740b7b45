"""The discrimination metrics on hand-made maps whose answers are known."""

import numpy as np
import pytest

from sglrp.evaluate import box_mask, scores, summarize

TARGET, DISTRACTOR = (0, 0, 2, 2), (2, 2, 4, 4)


def one(h):
    return {k: v[0] for k, v in scores(np.asarray(h, float)[None], [TARGET], [DISTRACTOR]).items()}


def test_all_on_the_target():
    h = np.zeros((4, 4))
    h[0, 1] = 2.0
    h[3, 3] = -5.0  # negative relevance does not count
    assert one(h) == {"relevance_mass": 1.0, "contrast": 1.0, "pointing_game": 1.0}


def test_split_between_objects_and_background():
    h = np.zeros((4, 4))
    h[1, 1], h[3, 2], h[0, 3] = 1.0, 3.0, 4.0  # target, distractor, background
    got = one(h)
    assert got["relevance_mass"] == pytest.approx(1 / 8)
    assert got["contrast"] == pytest.approx((1 - 3) / 4)
    assert got["pointing_game"] == 0.0


def test_channels_are_summed_and_empty_maps_score_zero():
    h = np.zeros((2, 4, 4, 3))
    h[0, 0, 0] = [1, 1, -1]
    got = scores(h, [TARGET] * 2, [DISTRACTOR] * 2)
    assert [got[k][0] for k in ("relevance_mass", "contrast", "pointing_game")] == [1, 1, 1]
    assert [got[k][1] for k in ("relevance_mass", "contrast", "pointing_game")] == [0, 0, 0]


def test_box_mask_is_half_open():
    assert box_mask((4, 4), (1, 0, 3, 2)).sum() == 4


def test_summary_interval_contains_the_mean():
    values = np.random.default_rng(0).uniform(size=300)
    s = summarize(values)
    assert s["ci95"][0] < s["mean"] < s["ci95"][1]
    assert s["ci95"][1] - s["ci95"][0] < 0.1
    assert summarize(values) == s  # seeded
