"""Scale-out of `geo partition --all-streets`: a serial loop vs a Dask LocalCluster with 1 and 2 workers.

Builds the synthetic district (``--scale``) in a private embedded PostGIS with the project's loaders, then
partitions every community (``--level community``) or street three ways on the same data, in one run:

* ``serial``  — one process, one jurisdiction after the other (the baseline);
* ``dask ×1`` — the CLI's path (:func:`geo.services.partition.partition_many`) on a LocalCluster with one worker process;
* ``dask ×N`` — the same with ``--workers`` processes.

Each run writes its own draft plans. The table gives wall time, the ratio to serial, and the sum of the
per-jurisdiction engine times (work done), so the overhead of Dask and the parallel speed-up are separate.
Used for docs/scaling.md.

    python benchmarks/scaleout.py [--scale 1.0] [--level community] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.lookup import private_cluster  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--level", default="community", choices=["community", "street"])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="geo-bench-scaleout-"))
    tmp.chmod(0o755)
    cluster = private_cluster(tmp, GEO_ACTOR="bench:scaleout")
    from geo.db import migrate
    from geo.db.cluster import database_url
    from geo.db.partitioning import jurisdictions_to_partition
    from geo.db.session import get_engine
    from geo.demo import write_demo
    from geo.services.loading import load_demo_files
    from geo.services.partition import partition_many, partition_one

    results = []
    try:
        migrate.upgrade()
        info = write_demo(tmp / "demo", scale=a.scale)
        load_demo_files(info["files"])
        engine = get_engine()
        codes = jurisdictions_to_partition(engine, a.level, None)
        opts = dict(min_pop=1000, max_pop=2000, by="people", seed=0, population_dataset="demo",
                    streets_dataset="demo", use_streets=True, stable=False)
        print(f"{len(codes)} {a.level} jurisdictions, scale {a.scale}", flush=True)

        t0 = time.perf_counter()
        serial = [partition_one(c, dict(opts), actor="bench:scaleout", url=database_url()) for c in codes]
        results.append(("serial (one process)", time.perf_counter() - t0, serial))
        for n in sorted({1, a.workers}):
            t0 = time.perf_counter()
            out = partition_many(codes, dict(opts), workers=n, actor="bench:scaleout")
            results.append((f"dask LocalCluster × {n}", time.perf_counter() - t0, out))
    finally:
        cluster.down()
        shutil.rmtree(tmp, ignore_errors=True)

    base = results[0][1]
    grids = sum(r.get("grids", 0) for r in results[0][2])
    print(f"\n{len(codes)} {a.level} jurisdictions, {grids} grids per run, {os.cpu_count()} cores\n")
    print(f"| {'run':24} | {'wall (s)':>8} | {'serial / run':>12} | {'engine time summed (s)':>22} | errors |")
    print(f"|{'-' * 26}|{'-' * 10}|{'-' * 14}|{'-' * 24}|--------|")
    for name, wall, out in results:
        errs = sum(1 for r in out if r.get("error"))
        work = sum(r.get("seconds", 0) for r in out)
        print(f"| {name:24} | {wall:8.1f} | {base / wall:12.2f} | {work:22.1f} | {errs:6d} |")


if __name__ == "__main__":
    main()
