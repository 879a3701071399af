"""Engine correctness measured by ``geo.partition.verify`` on real and synthetic inputs.

Every figure is recomputed from the published grid polygons and the raw input
(not the engine's bookkeeping): residents counted in a grid other than the one
whose polygon holds them, buildings split between grids, grids in pieces, the
share of grids in range, the street share (against the classes that made
blocks) and the runtime. Rows:

* ``denver``: Denver County 2020 census blocks as units, no streets;
* ``poa``: Porto Alegre H3 r9 cells with *every* OSM highway line (the engine
  keeps the vehicle classes as block edges, the rest guide cuts);
* ``synthetic-<seed>``: the synthetic district (address points with
  multi-entrance buildings, estates, communities, special units) at a small scale.

Baselines in the same run: ``claimed_in_range_%`` is the share the engine's own
bookkeeping gives (its unrounded atom sums per grid, before verify's counts
replace them), ``max_diff`` the largest gap between the two per grid, and
``verify/run`` the share of the run spent verifying.

Usage::

    python benchmarks/verify_plans.py [--only denver,poa,synthetic] [--seeds 42,7,2024] [--scale 0.1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import shared  # noqa: E402


def denver():
    import geopandas as gpd

    d = gpd.read_parquet(shared("denver", "denver_blocks_2020.parquet"))
    pop = d.rename(columns={"TOTPOP20": "people"})[["GEOID20", "people", "geometry"]]
    return {"population": pop}


def poa():
    import geopandas as gpd
    import h3
    import pandas as pd
    import shapely

    df = pd.read_csv(shared("porto_alegre", "poa_hexgrid.csv"))
    polys = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in df["id"]]
    hexes = gpd.GeoDataFrame({"id": df["id"], "people": df["population"].fillna(0).astype(int)}, geometry=polys,
                             crs="EPSG:4326")
    lines = gpd.read_file(shared("porto_alegre", "poa_osm.pbf"), layer="lines", engine="pyogrio")
    lines = lines[lines["highway"].notna()][["highway", "geometry"]]  # every highway line, as `geo load` keeps
    return {"population": hexes, "streets": lines, "jurisdiction": shapely.union_all(np.asarray(hexes.geometry.values))}


def synthetic(seed: int, scale: float):
    from geo.demo.synthetic import generate_district

    d = generate_district(seed=seed, scale=scale)
    return {"population": d.population, "streets": d.streets, "jurisdiction": d.boundary,
            "communities": d.communities, "special": d.special_areas}


def row(name: str, inputs: dict) -> dict:
    from geo.partition import partition

    t0 = time.perf_counter()
    plan = partition(**inputs)
    dt = time.perf_counter() - t0
    r = plan.report
    c, b, p, rg = r["counts"], r["buildings"], r["pieces"], r["range"]
    claimed = r.get("engine", {}).get("claimed_in_range_share")
    split = [x for x in r.get("atoms", {}).get("split", {}).get("split", []) if x.get("pieces", 1) > 1]
    cut = sum(x["cut_m"] for x in split)
    on_roads = sum(x["cut_on_roads_m"] for x in split)
    clear = [x["min_clearance_m"] for x in split if x.get("min_clearance_m") is not None]
    return {
        "dataset": name, "grids": r["n_grids"], "people": int(c["measured_total"]),
        "counted_elsewhere": int(c["residents_counted_elsewhere"]), "max_diff": round(c["max_abs_difference"], 3),
        "buildings_split": b["split_between_grids"], "in_pieces": p["grids_in_pieces"], "islands": p["n_islands"],
        "in_range_%": round(100 * rg["in_range_share"], 2),
        "claimed_in_range_%": None if claimed is None else round(100 * claimed, 2),
        "out_unexplained": rg["out_of_range_unexplained"],
        "reasons": "; ".join(f"{k} {v}" for k, v in sorted(rg["reasons"].items())),
        "street_share_%": None if "streets" not in r else round(100 * r["streets"]["boundary_on_streets_share"], 1),
        "pp_mean": round(r["compactness"]["polsby_popper_mean"], 3),
        "split_blocks": len(split), "cut_on_roads_%": round(100 * on_roads / cut, 1) if cut else None,
        "min_clearance_m": min(clear) if clear else None,
        "invariants_ok": r["invariants"]["ok"], "runtime_s": round(dt, 1), "verify_s": round(r["verify_s"], 2),
        "verify/run": round(r["verify_s"] / dt, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="denver,poa,synthetic")
    ap.add_argument("--seeds", default="42,7,2024")
    ap.add_argument("--scale", type=float, default=0.1)
    args = ap.parse_args()
    only = set(args.only.split(","))
    rows = []
    if "synthetic" in only:
        for seed in [int(s) for s in args.seeds.split(",")]:
            rows.append(row(f"synthetic-{seed}", synthetic(seed, args.scale)))
            print(rows[-1], flush=True)
    if "denver" in only and shared("denver", "denver_blocks_2020.parquet").exists():
        rows.append(row("denver", denver()))
        print(rows[-1], flush=True)
    if "poa" in only and shared("porto_alegre", "poa_osm.pbf").exists():
        rows.append(row("poa", poa()))
        print(rows[-1], flush=True)
    cols = list(rows[0].keys()) if rows else []
    print()
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("" if r[c] is None else str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
