"""Assignment solver alone: microseconds per solve on the hot-loop scene's contested matrices.

    python bench/assignment.py [--objects 50 200] [--rounds 8]

Records every (tracks x detections) IoU matrix the tracker hands to `match` in bench/hotloop.py's
scene, keeps those with a row or column holding two candidates (the ones the solver runs on), and
times, in alternating rounds, counterd's `_solve` against lapjv on the rectangle with its own
extend_cost and cost sum (how counterd called it before) and, when scipy is installed,
scipy's linear_sum_assignment. Every variant must find the same number of pairs and total IoU.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"    # before numpy loads: one core, as on a busy edge box

import argparse  # noqa: E402
import time  # noqa: E402

import lap  # noqa: E402
import numpy as np  # noqa: E402

import hotloop  # noqa: E402
from counterd import track  # noqa: E402


def contested_matrices(objects: int, frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(allowed, iou) of every match call of the scene where some row or column competes."""
    seen = []
    real_match = track.match

    def recording(iou, min_iou):
        seen.append((iou >= min_iou, iou.copy()))
        return real_match(iou, min_iou)

    track.match = recording
    try:
        hotloop.run_once(hotloop.synthetic_scene(objects, frames))
    finally:
        track.match = real_match
    return [(a, i) for a, i in seen if (a.sum(0) > 1).any() or (a.sum(1) > 1).any()]


def _cost(allowed: np.ndarray, iou: np.ndarray) -> np.ndarray:
    cost = np.full(iou.shape, track.UNMATCHABLE)
    np.subtract(1.0, iou, out=cost, where=allowed)
    return cost


def lap_rectangle(allowed: np.ndarray, iou: np.ndarray):
    _, row_to_col, _ = lap.lapjv(_cost(allowed, iou), extend_cost=True)
    rows = np.flatnonzero(row_to_col >= 0)
    cols = row_to_col[rows]
    keep = allowed[rows, cols]
    return rows[keep], cols[keep]


def solvers() -> dict:
    out = {"counterd _solve": track._solve, "lapjv extend_cost": lap_rectangle}
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        return out

    def scipy_solve(allowed, iou):
        rows, cols = linear_sum_assignment(_cost(allowed, iou))
        keep = allowed[rows, cols]
        return rows[keep], cols[keep]

    out["scipy"] = scipy_solve
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    for objects in args.objects:
        cases = contested_matrices(objects, args.frames)
        if not cases:
            print(f"{objects} objects: no contested matrix (the solver never runs)")
            continue
        variants = solvers()
        for allowed, iou in cases:
            answers = {name: solve(allowed, iou) for name, solve in variants.items()}
            pairs = {(len(r), round(float(iou[r, c].sum()), 9)) for r, c in answers.values()}
            assert len(pairs) == 1, f"the solvers disagree: {pairs}"
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(args.rounds):                      # alternate: load swings hit each alike
            for name, solve in variants.items():
                start = time.process_time()
                for allowed, iou in cases:
                    solve(allowed, iou)
                best[name] = min(best[name], (time.process_time() - start) / len(cases) * 1e6)
        shown = ", ".join(f"{name} {us:.1f}" for name, us in best.items())
        print(f"{objects} objects, {len(cases)} contested matrices: cpu us/solve (min of {args.rounds}): {shown}")


if __name__ == "__main__":
    main()
