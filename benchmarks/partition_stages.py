"""Engine speed by stage: tight ranges, many grids and growth, with pymetis and greedy in the same run.

Denver County 2020 census blocks (10,149 blocks, 715,522 people), no streets, no communities:

* **ranges**: ``partition()`` end to end at 1,000–2,000 (the default), 1,000–1,200 and 500–800
  (> 999 grids under one prefix: numbered in overflow sub-prefixes, see ``geo.partition.codes``),
  with the time of each stage (atoms incl. splitting, adjacency, regions, dissolve + codes, report);
  pymetis ``part_graph`` and the greedy region-growing baseline of ``partition_peers.py`` on the
  engine's atoms (same split, same adjacency) at the same range;
* **growth**: Denver tiled 1×, 2×, 4×, 8× (copies side by side, 1 km apart) at 1,000–2,000, end to end,
  with peak RSS; the growth exponent is the slope of log(time) over log(atoms).

Every run is a subprocess with a time limit; ratios are against the default range and the peers
measured in the same run. The machine's cores may be shared with other work: wall times are printed with
the process's CPU time next to them, and the growth exponent is given for both. Quality (in range, non-contiguous grids, Polsby-Popper) comes from
``geo.partition.quality.quality_report`` on the final grids.

Usage::

    python benchmarks/partition_stages.py [--limit 900] [--only ranges,growth] [--tiles 1,2,4,8]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import dissolve_labels, print_table, run_worker, shared, write_result  # noqa: E402
from partition_peers import DENVER, greedy_labels, load_denver_blocks  # noqa: E402

RANGES = [(1000, 2000), (1000, 1200), (500, 800)]
STAGES = ["atoms", "adjacency", "regions", "grids", "verify"]  # keys of report["engine"]["timings_s"]


def tiled_denver(times: int):
    """*times* copies of the Denver blocks side by side (metric CRS, 1 km apart, rows of 2)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    d = load_denver_blocks().to_crs(26913)
    if times == 1:
        return d
    minx, miny, maxx, maxy = d.total_bounds
    w, h = maxx - minx + 1000.0, maxy - miny + 1000.0
    parts = []
    for k in range(times):
        dx, dy = (k % 2) * w, (k // 2) * h
        c = d.copy()
        c["geometry"] = shapely.transform(np.asarray(d.geometry.values), lambda xy: xy + np.array([dx, dy]))
        c["GEOID20"] = c["GEOID20"] + f"-{k}"
        parts.append(c)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=d.crs)


def engine_atoms(lo: int, hi: int):
    """Denver atoms as ``partition()`` makes them at this range (blocks above *hi* split)."""
    from geo.partition.plan import _split, atoms_from_polygons

    atoms = atoms_from_polygons(load_denver_blocks())
    atoms, _, _ = _split(atoms, None, lo, hi, (lo + hi) / 2.0, None)
    return atoms.reset_index(drop=True)


# =========================================================================== worker side


def worker(args) -> None:
    lo, hi = args.lo, args.hi
    extra: dict = {}
    t0 = time.perf_counter()
    if args.method == "engine":
        from geo.partition import partition

        pop = load_denver_blocks() if args.tiles == 1 else tiled_denver(args.tiles)
        t0, c0 = time.perf_counter(), time.process_time()
        plan = partition(population=pop, min_pop=lo, max_pop=hi)
        seconds = time.perf_counter() - t0
        extra["cpu_s"] = time.process_time() - c0
        rep = plan.report
        extra.update({"stages": rep["engine"]["timings_s"], "regions": rep["engine"]["regions_timings_s"],
                 "n_atoms": rep["engine"]["n_atoms"], "refined": len(rep["atoms"].get("refined", [])),
                 "overflow_codes": int((plan.grids["code"].str[9:12].astype(int) >= 901).sum())})
        grids = plan.grids[["people", "geometry"]].copy()
    else:
        atoms = engine_atoms(lo, hi)
        t0, c0 = time.perf_counter(), time.process_time()
        from geo.partition.adjacency import build_adjacency

        adj = build_adjacency(atoms, gap_tol=20.0)
        pop = atoms["people"].to_numpy()
        if args.method == "greedy":
            lab = greedy_labels(atoms, adj, min_pop=lo, max_pop=hi)
        elif args.method == "pymetis":
            import pymetis

            target = (lo + hi) / 2.0
            k = max(1, int(round(pop.sum() / target)))
            csr = adj.csr()
            ew = np.maximum(1, np.rint(np.asarray(csr.data) - 1e-9)).astype(np.int64)
            ufactor = max(1, int(round(1000 * (hi / target - 1))))
            opts = pymetis.Options(ufactor=ufactor, contig=1, seed=0)
            _, parts = pymetis.part_graph(k, xadj=csr.indptr.tolist(), adjncy=csr.indices.tolist(),
                                          vweights=pop.astype(np.int64).tolist(), eweights=ew.tolist(), options=opts)
            lab = np.asarray(parts)
            extra["note"] = f"k={k}, ufactor={ufactor}"
        else:
            raise ValueError(args.method)
        grids = dissolve_labels(atoms, lab)
        seconds = time.perf_counter() - t0
        extra["cpu_s"] = time.process_time() - c0
        extra["n_atoms"] = len(atoms)
    extra["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    write_result(args.out, grids, seconds, extra.pop("note", ""), extra)


# =========================================================================== driver


def _quality(grids, lo, hi, tiles=1) -> dict:
    import geopandas as gpd
    import shapely

    from geo.partition.quality import quality_report

    jur = None
    if tiles == 1:
        d = load_denver_blocks()
        jur = gpd.GeoSeries([shapely.union_all(np.asarray(d.geometry.values))], crs=d.crs)
    rep = quality_report(grids, jur, lo, hi, gap_tol=20.0)
    return {"grids": rep["n_grids"], "in_range": rep["range"]["in_range_share"],
            "noncontig": rep["contiguity"]["noncontiguous_grids"], "pp": rep["compactness"]["polsby_popper_mean"],
            "min": rep["population"]["min"], "max": rep["population"]["max"]}


def _run(script, method, lo, hi, tiles, limit, label, dataset) -> dict:
    print(f"running {label} on {dataset} at {lo}-{hi} (limit {limit:g} s)…", flush=True)
    run = run_worker(script, ["--method", method, "--lo", str(lo), "--hi", str(hi), "--tiles", str(tiles)], limit,
                     label, dataset)
    row = {"dataset": dataset, "method": label, "range": f"{lo}–{hi}", "status": run.status, "note": run.note,
           "seconds": run.seconds if run.status == "ok" else None}
    if run.status == "ok":
        row.update(_quality(run.grids, lo, hi, tiles))
        row.update({k: v for k, v in run.extra.items() if k != "stages"})
        for k, v in run.extra.get("stages", {}).items():
            row[f"t_{k}"] = v
    else:
        row["note"] = f"did not finish: {run.note}"
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=float, default=900.0, help="time limit per run (s)")
    ap.add_argument("--only", default="ranges,growth", help="ranges, growth or both")
    ap.add_argument("--tiles", default="1,2,4,8", help="tilings of Denver for the growth table")
    ap.add_argument("--json", default="", help="also write the rows to this JSON file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", default="engine", help=argparse.SUPPRESS)
    ap.add_argument("--lo", type=int, default=1000, help=argparse.SUPPRESS)
    ap.add_argument("--hi", type=int, default=2000, help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.tiles = int(args.tiles)
        worker(args)
        return 0
    if not shared(*DENVER).exists():
        print(f"Denver data not found at {shared(*DENVER)}; nothing to benchmark.")
        return 1
    script = Path(__file__).resolve()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    out_rows: list[dict] = []

    if "ranges" in only:
        rows = []
        for lo, hi in RANGES:
            for method, label in (("engine", "geo.partition"), ("pymetis", "pymetis part_graph"),
                                  ("greedy", "greedy region growing")):
                rows.append(_run(script, method, lo, hi, 1, args.limit, label, "Denver"))
        base = next((r for r in rows if r["method"] == "geo.partition" and r["range"] == "1000–2000"
                     and r["seconds"]), None)
        for r in rows:
            if not r["seconds"]:
                continue
            if base and r["method"] == "geo.partition":
                r["t_default"] = r["seconds"] / base["seconds"]
                if r.get("cpu_s") and base.get("cpu_s"):  # the comparable figure when the cores are shared
                    r["cpu_default"] = r["cpu_s"] / base["cpu_s"]
            peer = {p["method"]: p for p in rows if p["range"] == r["range"] and p["seconds"]}
            if "greedy region growing" in peer:
                r["t_greedy"] = r["seconds"] / peer["greedy region growing"]["seconds"]
            if "pymetis part_graph" in peer:
                r["t_pymetis"] = r["seconds"] / peer["pymetis part_graph"]["seconds"]
        columns = [("range", "", "range"), ("method", "", "method"), ("seconds", "f2", "wall s"),
                   ("grids", "int", "grids"), ("in_range", "pct", "in range"), ("min", "int", "min"),
                   ("max", "int", "max"), ("noncontig", "int", "non-contig"), ("pp", "f3", "PP mean"),
                   ("t_default", "x", "time / default range"), ("cpu_default", "x", "CPU / default range"),
                   ("t_pymetis", "x", "time / pymetis"),
                   ("t_greedy", "x", "time / greedy"), ("cpu_s", "f2", "CPU s"), ("maxrss_mb", "int", "peak RSS MB"),
                   ("note", "", "note")]
        print_table("Denver by range: engine end to end vs pymetis and greedy on the engine's atoms", columns, rows,
                    ["in range: share of grids inside the range (min to max people) from the final polygons; flagged grids "
                     "(islands) count as out of range here."])
        stage_cols = [("range", "", "range"), ("seconds", "f2", "total s")] + \
            [(f"t_{s}", "f2", s) for s in STAGES] + [("refined", "int", "refine rounds"),
                                                     ("overflow_codes", "int", "codes in ...9xx")]
        print_table("Engine stages (s) by range", stage_cols, [r for r in rows if r["method"] == "geo.partition"])
        out_rows += rows

    if "growth" in only:
        rows = []
        for t in [int(x) for x in args.tiles.split(",") if x.strip()]:
            rows.append(_run(script, "engine", 1000, 2000, t, args.limit, "geo.partition", f"Denver ×{t}"))
        ok = [r for r in rows if r["seconds"]]
        if ok:
            b = ok[0]
            for r in ok:
                r["t_x1"] = r["seconds"] / b["seconds"]
                if r is not b:
                    r["exponent"] = math.log(r["seconds"] / b["seconds"]) / math.log(r["n_atoms"] / b["n_atoms"])
                    r["cpu_exponent"] = math.log(r["cpu_s"] / b["cpu_s"]) / math.log(r["n_atoms"] / b["n_atoms"])
        cols = [("dataset", "", "dataset"), ("n_atoms", "int", "atoms"), ("seconds", "f2", "wall s")] + \
            [(f"t_{s}", "f2", s) for s in STAGES] + \
            [("grids", "int", "grids"), ("in_range", "pct", "in range"), ("noncontig", "int", "non-contig"),
             ("pp", "f3", "PP mean"), ("maxrss_mb", "int", "peak RSS MB"), ("t_x1", "x", "time / ×1"),
             ("exponent", "f2", "wall exponent vs ×1"), ("cpu_s", "f2", "CPU s"),
             ("cpu_exponent", "f2", "CPU exponent vs ×1"), ("note", "", "note")]
        print_table("Growth: Denver tiled, 1,000–2,000, end to end", cols, rows)
        out_rows += rows
    if args.json:
        Path(args.json).write_text(json.dumps(out_rows, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
