"""Resident memory of one API process's lookup index (the figure docs/scaling.md quotes).

The synthetic district at ``--scale`` (3.7 ≈ 1.1 M people, the lookup benchmark's world) is partitioned
in-process by the engine at district level; its grids go to a temporary GeoParquet. A *fresh* Python process
then reads them, notes its resident set size (VmRSS), builds the same ``GridIndex`` the API serves from
(STRtree, prepared geometries, cell raster) and notes it again. The difference is what each API worker
process pays for the index; it is printed next to the plan's size (grids, vertices, WKB bytes) and, as the
baseline, the plan's geometries as WKB bytes (what PostgreSQL sends to build the index).

Usage::

    python benchmarks/lookup_memory.py [--scale 3.7]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHILD = r"""
import gc, json, sys
import numpy as np
import shapely

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")

import geopandas as gpd
from geo.api.services.lookup_index import GridIndex, GridInfo

g = gpd.read_parquet(sys.argv[1]).to_crs(4326)
wkb = [shapely.to_wkb(x) for x in g.geometry.values]
codes = g["code"].to_numpy(dtype=object)
info_rows = g[["code", "name", "kind", "people"]].to_dict("records")
del g
gc.collect()
r0 = rss()
geoms = np.array([shapely.from_wkb(b) for b in wkb], dtype=object)
info = [GridInfo(r["code"], r["name"], r["kind"], 4, int(r["people"]), 1, 1, "", None, None, None)
        for r in info_rows]
index = GridIndex(codes=codes, geoms=geoms, info=info, plan_ids=(1,))
gc.collect()
r2 = rss()
print(json.dumps({"grids": len(codes), "vertices": int(shapely.get_num_coordinates(geoms).sum()),
                  "wkb_bytes": sum(len(b) for b in wkb), "index_bytes": r2 - r0}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=3.7)
    args = ap.parse_args()

    from geo.demo import generate_district
    from geo.partition import partition

    t0 = time.perf_counter()
    d = generate_district(seed=42, scale=args.scale)
    plan = partition(jurisdiction=d.boundary, population=d.population, streets=d.streets,
                     communities=d.communities, special=d.special_areas, seed=0)
    t_part = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="geo-lookup-mem-") as tmp:
        path = Path(tmp) / "grids.parquet"
        plan.grids[["code", "name", "kind", "people", "geometry"]].to_parquet(path)
        out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True,
                             check=True, cwd=REPO)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    mb = 1024 * 1024
    print(f"# lookup index memory — {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
          f"`python benchmarks/lookup_memory.py --scale {args.scale}`")
    print(f"synthetic district scale {args.scale}: {m['grids']} grids, {m['vertices']:,} vertices, "
          f"{m['wkb_bytes'] / mb:.1f} MB of WKB (partitioned in {t_part:.0f} s)")
    print()
    print("| what | MB | × the plan's WKB |")
    print("|---|---:|---:|")
    print(f"| the plan's geometries as WKB (baseline) | {m['wkb_bytes'] / mb:.2f} | 1.0 |")
    print(f"| resident memory added by GridIndex (geometries, STRtree, prepared, cell raster) in a fresh "
          f"process | {m['index_bytes'] / mb:.1f} | {m['index_bytes'] / m['wkb_bytes']:.1f} |")


if __name__ == "__main__":
    main()
