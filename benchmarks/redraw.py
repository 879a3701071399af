"""Stable re-draw vs a from-scratch partition after growth (the re-draw figures of benchmarks/RESULTS.md).

Denver 2020 census blocks (``../shared/data/denver``), grids of 1,000–2,000 people. A plan is made; then the
people of a random ``--share`` of the blocks grow by ``--growth`` (seed ``--seed``, the case of
``tests/partition/test_redraw.py::test_denver_redraw_moves_few_residents``). The stable re-draw
(``geo.partition.redraw``) is compared with a from-scratch partition of the grown population: residents whose
grid changes, grids changed, grids out of range afterwards, seconds. Several growth seeds are run.

Usage::

    python benchmarks/redraw.py [--seeds 2024,7,11] [--share 0.05] [--growth 1.25]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import shared  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="2024,7,11")
    ap.add_argument("--share", type=float, default=0.05)
    ap.add_argument("--growth", type=float, default=1.25)
    args = ap.parse_args()

    import geopandas as gpd

    from geo.partition import partition, redraw

    path = shared("denver", "denver_blocks_2020.parquet")
    if not path.exists():
        sys.exit(f"needs {path} (../shared/data beside the checkout)")
    blocks = gpd.read_parquet(path).rename(columns={"TOTPOP20": "people"})
    t0 = time.perf_counter()
    plan = partition(population=blocks, seed=0)
    t_plan = time.perf_counter() - t0
    print(f"# stable re-draw vs from scratch — {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
          f"`python benchmarks/redraw.py --seeds {args.seeds} --share {args.share} --growth {args.growth}`")
    print(f"Denver: {len(blocks):,} blocks, {int(blocks['people'].sum()):,} people; first plan "
          f"{len(plan.grids)} grids in {t_plan:.1f} s")
    print()
    print("| growth seed | grids out of range before | method | residents moved | share of residents | "
          "grids changed | out of range after | flagged, not repaired | s | moved ÷ from scratch |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    by_col = "people"
    for seed in [int(s) for s in args.seeds.split(",")]:
        atoms = plan.atoms.drop(columns="grid").copy()
        rng = np.random.default_rng(seed)
        blk = rng.choice(len(blocks), size=int(args.share * len(blocks)), replace=False)
        hit = atoms["block"].isin(blk).to_numpy()
        atoms.loc[hit, "people"] = np.rint(atoms.loc[hit, "people"] * args.growth).astype(np.int64)
        t = time.perf_counter()
        res = redraw(plan.grids, atoms, seed=0, compare_scratch=False)
        t_stable = time.perf_counter() - t
        t = time.perf_counter()
        scratch = redraw(plan.grids, atoms, seed=0, compare_scratch=True)
        t_both = time.perf_counter() - t
        r, s = res.report, scratch.report
        total = int(atoms["people"].sum())
        moved, moved_scratch = int(r["residents_moved"]), int(s["scratch_residents_moved"])
        ratio = moved / moved_scratch if moved_scratch else float("nan")
        # grids left out of range with a flag (e.g. one census block above max after growth: the re-draw keeps
        # the previous atoms and cannot split it) are not counted in "out of range after"; show them
        g = res.grids
        bad = (g["kind"] != "exclusive") & ~g[by_col].between(1000, 2000)
        flagged = ", ".join(f"{int(p):,} ({f})" for p, f in zip(g.loc[bad, by_col], g.loc[bad, "flags"])) or "0"
        print(f"| {seed} | {r['out_of_range_before']} | stable re-draw | {moved:,} | {moved / total:.3%} | "
              f"{r['grids_changed']} | {r['out_of_range_after']} | {flagged} | {t_stable:.1f} | {ratio:.4f} |")
        print(f"| {seed} | {r['out_of_range_before']} | from scratch | {moved_scratch:,} | "
              f"{moved_scratch / total:.3%} | — | — | — | {max(t_both - t_stable, 0):.1f}* | 1.0000 |")
    print()
    print("\* from-scratch seconds: the re-draw run with the from-scratch comparison minus the run without it.")


if __name__ == "__main__":
    main()
