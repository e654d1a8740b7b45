"""The README's table of keras.applications families x methods (``benchmarks/applications_matrix``).

Fast: the README's table is the one written from the recorded rows. Slow, Keras 3 engine: each
family's row computed again equals the recorded one, and every method except guided backprop,
guided Grad-CAM and multi-input Grad-CAM works on every family.
"""

from __future__ import annotations

import json
import os

import pytest

import sglrp
from benchmarks import applications_matrix as matrix

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDED = os.path.join(ROOT, "benchmarks", "applications-matrix-keras3.json")


def _recorded() -> dict:
    with open(RECORDED, encoding="utf-8") as f:
        return json.load(f)["results"]


def test_readme_table_is_the_recorded_one():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read().split(matrix.MARK)
    assert len(readme) == 3
    expected = matrix.table(_recorded(), sglrp.available_methods())
    assert readme[1].strip() == expected.strip()


def test_every_recorded_family_meets_the_goal():
    """Every method but the three excluded works on every family recorded (a finite, non-zero
    map; CLRP's and SGLRP's may cancel on random weights, and say so)."""
    recorded = _recorded()
    assert set(recorded) <= set(matrix.FAMILIES)
    for name, cells in recorded.items():
        assert sorted(cells) == sglrp.available_methods(), name
        for method, value in cells.items():
            if method not in matrix.EXCLUDED:
                assert value in (matrix.WORKS, matrix.CANCELS), (name, method, value)


def test_cancelled_cells_are_those_below_the_threshold():
    """A ✓ᶜ cell is a CLRP/SGLRP map below ``CANCELLED`` of its target map, as recorded."""
    with open(RECORDED, encoding="utf-8") as f:
        recorded = json.load(f)
    for name, shares in recorded["contrast_left"].items():
        for method, share in shares.items():
            cancels = recorded["results"][name][method] == matrix.CANCELS
            assert cancels == (share < sglrp.analyzer.CANCELLED), (name, method, share)


@pytest.mark.slow
@pytest.mark.engine("keras3")
@pytest.mark.parametrize("family", list(matrix.FAMILIES))
def test_family_row(family):
    """The row computed again: as recorded, or (a family not recorded yet) meeting the goal."""
    got = matrix.row(family)
    recorded = _recorded().get(family)
    if recorded is not None:
        assert got == recorded
    for method, value in got.items():
        if method not in matrix.EXCLUDED:
            assert value in (matrix.WORKS, matrix.CANCELS), (method, value)
