"""bench/compare_hotloop.py: ObjectCounter's IN/OUT mapped onto counterd's in/out, and the synthetic
stream's ground truth agrees with counterd's own rule."""
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from compare_hotloop import accuracy, object_counter_counts, synthetic_stream, true_counts  # noqa: E402


@pytest.mark.parametrize("start, end, ours_in_is_theirs_in", [
    ((240, 0), (240, 360), True),     # top -> bottom: counterd in = moving right = ObjectCounter IN
    ((240, 360), (240, 0), False),    # bottom -> top: counterd in = moving left
    ((0, 180), (480, 180), False),    # left -> right: counterd in = moving up; ObjectCounter IN = down
    ((480, 180), (0, 180), True),     # right -> left: counterd in = moving down
    ((0, 0), (480, 360), False),      # |dx| > |dy|, 'flat': IN = down; counterd in = (dy, -dx), up-right
    ((300, 0), (0, 360), True),       # |dy| > |dx|, 'steep': IN = right; counterd in = (360, 300), right
])
def test_object_counter_direction_mapping(start, end, ours_in_is_theirs_in):
    counter = SimpleNamespace(in_count=3, out_count=5)
    expected = {"in": 3, "out": 5} if ours_in_is_theirs_in else {"in": 5, "out": 3}
    assert object_counter_counts(counter, start, end) == expected


def test_accuracy_is_one_minus_relative_error():
    truth = {"a": {"in": 3, "out": 1}, "b": {"in": 0, "out": 4}}
    assert accuracy(truth, truth) == 1.0
    assert accuracy({"a": {"in": 2, "out": 1}, "b": {"in": 1, "out": 4}}, truth) == pytest.approx(0.75)


def test_counterd_counts_the_synthetic_truth():
    from compare_hotloop import CounterdLoop
    stream = synthetic_stream(10, 300)
    loop = CounterdLoop(stream)
    for i in range(len(stream)):
        loop.step(i)
    truth = true_counts(stream)
    assert sum(t["in"] + t["out"] for t in truth.values()) > 0
    assert accuracy(loop.counts(), truth) >= 0.9
