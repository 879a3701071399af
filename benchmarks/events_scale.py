"""How the events queries behind the big screen scale with the size of the events table.

Seeds N synthetic events (default 50,000 then 500,000) into a private PostGIS with the synthetic district,
then times, through the API, the calls the big screen makes on every refresh — KPIs, the H3 heatmap
(7-day window), top grids, open events per grid, the trend — and the dispatcher's "overdue" list. Baseline in
the same run: the same calls on the small table. Used for docs/scaling.md.

    python benchmarks/events_scale.py [--sizes 50000,500000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.lookup import start_api, world  # noqa: E402

CALLS = [("kpis", "/v1/stats/kpis", {}), ("heatmap r9, 7 days", "/v1/stats/heatmap", {"res": 9}),
         ("top grids", "/v1/stats/top-grids", {"n": 10}), ("open by grid", "/v1/stats/open-by-grid", {}),
         ("trend 30 days", "/v1/stats/trend", {"days": 30}),
         ("overdue list", "/v1/events", {"overdue": "true", "limit": 100})]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50000,500000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="geo-bench-events-"))
    tmp.chmod(0o755)
    w = world(a.scale, tmp)
    from sqlalchemy import text

    from geo.api.core.config import get_catalogue
    from geo.db.seed import seed_events

    results = {}
    sizes = [int(x) for x in a.sizes.split(",")]
    try:
        for n in sizes:
            t = time.perf_counter()
            seed_events(w["engine"], [w["plan_id"]], get_catalogue(), n=n, days=30, seed=n)
            with w["engine"].begin() as c:
                c.execute(text("ANALYZE events"))
                rows = c.execute(text("SELECT count(*) FROM events")).scalar()
            t_seed = time.perf_counter() - t
            api, port = start_api(1)
            try:
                import httpx

                base = f"http://127.0.0.1:{port}"
                tok = httpx.post(f"{base}/v1/auth/token", data={"username": "bench", "password": "bench-password"}
                                 ).json()["access_token"]
                h = {"Authorization": f"Bearer {tok}"}
                per = {}
                with httpx.Client(base_url=base, headers=h, timeout=120) as c:
                    for name, path, params in CALLS:
                        c.get(path, params=params).raise_for_status()  # warm
                        ts = []
                        for _ in range(a.repeat):
                            t0 = time.perf_counter()
                            c.get(path, params=params).raise_for_status()
                            ts.append((time.perf_counter() - t0) * 1000)
                        per[name] = statistics.median(ts)
                results[rows] = (per, t_seed)
            finally:
                api.terminate()
                api.wait(15)
        base_rows = min(results)
        print(f"\nbig-screen calls through the API (median of {a.repeat}, ms), events table size in columns")
        print(f"{'call':22}" + "".join(f"{r:>14,}" for r in sorted(results)) + "   ratio largest/smallest")
        for name, *_ in CALLS:
            vals = [results[r][0][name] for r in sorted(results)]
            print(f"{name:22}" + "".join(f"{v:14.1f}" for v in vals) + f"   {vals[-1] / results[base_rows][0][name]:8.1f}")
        print("seeding time (s):", {r: round(results[r][1], 1) for r in sorted(results)})
    finally:
        from geo.db.session import dispose_engines

        dispose_engines()
        w["cluster"].destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
