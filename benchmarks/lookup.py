"""Lookup benchmark: single /v1/lookup vs the HTTP ceiling and a raw PostGIS loop; batch vs geopandas.sjoin.

Builds its own world in a temporary embedded PostGIS: the synthetic district at
``--scale`` (3.7 ≈ 1.1 M people ≈ 700+ grids) loaded with the project's loaders,
partitioned by the engine at district level and published. Then, in one run:

1. ``wrk`` (16 connections, loopback) against ``/v1/ping`` (a constant from the
   same app: the HTTP ceiling) and ``/v1/lookup`` with random points;
2. a raw psycopg loop (16 threads, one connection each) of the equivalent
   PostGIS query (``ST_Covers``, smallest code on shared edges, with the
   community/street/district names the API returns);
3. ``POST /v1/lookup/batch`` of 1,000,000 random points (JSON, end to end:
   serialise, upload, answer, parse) next to ``geopandas.sjoin`` on the same
   points in-process;
4. agreement of the in-memory STRtree with PostGIS ``ST_Covers`` on 100,000
   random points (a tenth of them exactly on grid vertices/edges).

Usage::

    python benchmarks/lookup.py [--scale 3.7] [--seconds 15] [--workers 1]

Needs Debian's ``wrk`` (``apt-get install wrk``; ``make`` installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_cluster(tmp: Path, **env: str):
    """Start (and return) an embedded cluster of this process under *tmp* on a free port; *env* adds settings."""
    os.environ.update(GEO_DATA_DIR=str(tmp), GEO_PG_PORT=str(free_port()), **env)
    os.environ.pop("DATABASE_URL", None)
    from geo.config import reset_settings

    reset_settings()
    from geo.db.cluster import Cluster

    cluster = Cluster()
    cluster.up()
    return cluster


def world(scale: float, tmp: Path) -> dict:
    """Cluster up, synthetic district loaded and partitioned at district level, plan published, a user."""
    cluster = private_cluster(tmp, GEO_DEMO="1")
    from geo.services.loading import load_demo_files
    from geo.db import migrate
    from geo.db.partitioning import run_partition
    from geo.db.plans import publish
    from geo.db.session import get_engine
    from geo.db.users import add_user
    from geo.demo import write_demo
    from geo.demo.synthetic import DISTRICT_CODE

    migrate.upgrade()
    info = write_demo(tmp / "demo", scale=scale)
    load_demo_files(info["files"])
    engine = get_engine()
    t0 = time.perf_counter()
    plan_id, plan = run_partition(engine, DISTRICT_CODE, actor="bench", population_dataset="demo",
                                  streets_dataset="demo")
    t_part = time.perf_counter() - t0
    publish(engine, plan_id, "bench")
    add_user(engine, "bench", "bench-password", "dispatcher", DISTRICT_CODE, actor="bench")
    from geo.db.seed import seed_workers

    seed_workers(engine, [plan_id], seed=1, with_positions=False)
    return {"cluster": cluster, "engine": engine, "plan_id": plan_id, "grids": plan.report["n_grids"],
            "people": info["totals"]["people"], "partition_s": t_part, "url": cluster.url()}


def start_api(workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = os.environ | {"GEO_API_PORT": str(port)}
    env["GEO_LOG_LEVEL"] = "WARNING"  # no per-request log lines while measuring
    p = subprocess.Popen([sys.executable, "-m", "geo.cli", "serve", "--demo", "--workers", str(workers)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return p, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    p.kill()
    raise RuntimeError("API did not start (run `geo serve --demo` by hand to see why)")


def grid_extent(engine) -> tuple[float, float, float, float]:
    from sqlalchemy import text

    with engine.connect() as c:
        return tuple(c.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                    "(SELECT ST_Extent(geom) AS e FROM grids) t")).one())


def random_points(ext, n, seed=0, edge_share=0.0, engine=None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(ext[0], ext[2], n)
    y = rng.uniform(ext[1], ext[3], n)
    k = int(n * edge_share)
    if k and engine is not None:  # points exactly on grid vertices (shared by 2+ grids: the hard case)
        from sqlalchemy import text

        with engine.connect() as c:
            v = np.array(c.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_DumpPoints(geom)).geom AS p "
                                        "FROM grids) t")).all())
        pick = v[rng.integers(0, len(v), k)]
        x[:k], y[:k] = pick[:, 0], pick[:, 1]
    return x, y


WRK_LUA = """
local pts = {}
local idx = 0
init = function(args)
  for line in io.lines(args[1]) do pts[#pts + 1] = line end
end
request = function()
  idx = idx %% #pts + 1
  return wrk.format("GET", "/v1/lookup?" .. pts[idx], {["Authorization"] = "Bearer %s"})
end
"""


def wrk(url: str, seconds: int, conns: int, script: str | None = None, args: list[str] | None = None) -> dict:
    """Run wrk (2 threads, *conns* connections) and parse throughput, p50/p99, non-2xx and socket errors."""
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", str(script)]
    cmd += [url]
    if args:
        cmd += ["--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else (v * 1000 if unit == "s" else v)

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"conns": conns, "rps": rps, "p50_ms": pct(50), "p99_ms": pct(99),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(map(int, errs.groups())) if errs else 0}


def raw_postgis(url: str, xs, ys, seconds: float, threads: int = 16) -> dict:
    import psycopg

    # The same answer the API gives: grid, its community/street/district, chief and on-duty workers.
    sql = """
        SELECT g.code, g.name, g.kind, g.level, g.population, p.id, p.version, c.code, c.name, s.code, s.name,
               d.code, d.name,
               (SELECT json_agg(json_build_object('id', w.id, 'name', w.name, 'role', w.role, 'on_duty', w.on_duty,
                                                  'phone', w.phone))
                FROM worker_grids wg JOIN workers w ON w.id = wg.worker_id
                WHERE wg.grid_code = g.code AND (w.on_duty OR w.role = 'chief')) AS staff
        FROM grids g
        JOIN grid_plans p ON p.id = g.plan_id AND p.status = 'published'
        LEFT JOIN jurisdictions c ON c.code = g.community_code
        LEFT JOIN jurisdictions s ON s.id = c.parent_id LEFT JOIN jurisdictions d ON d.id = s.parent_id
        WHERE ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY g.code LIMIT 1
    """
    lat: list[list[float]] = [[] for _ in range(threads)]
    stop = time.perf_counter() + seconds

    def loop(k):
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            cur = conn.cursor()
            i = k
            while time.perf_counter() < stop:
                t = time.perf_counter()
                cur.execute(sql, (float(xs[i % len(xs)]), float(ys[i % len(ys)])), prepare=True)
                cur.fetchone()
                lat[k].append(time.perf_counter() - t)
                i += threads

    ts = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    allv = np.concatenate([np.array(v) for v in lat]) * 1000
    return {"rps": len(allv) / wall, "p50_ms": float(np.percentile(allv, 50)), "p99_ms": float(np.percentile(allv, 99)),
            "non2xx": 0}


def batch_api(port: int, token: str, xs, ys) -> tuple[float, list]:
    import httpx
    import orjson

    t0 = time.perf_counter()
    body = orjson.dumps({"points": np.column_stack([xs, ys])}, option=orjson.OPT_SERIALIZE_NUMPY)
    r = httpx.post(f"http://127.0.0.1:{port}/v1/lookup/batch", content=body,
                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, timeout=600)
    r.raise_for_status()
    codes = orjson.loads(r.content)["codes"]
    return time.perf_counter() - t0, codes


def batch_sjoin(engine, plan_id, xs, ys) -> tuple[float, np.ndarray]:
    import geopandas as gpd

    from geo.db.plans import plan_grids

    grids = plan_grids(engine, plan_id)[["code", "geometry"]]
    t0 = time.perf_counter()
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xs, ys), crs=4326)
    j = gpd.sjoin(pts, grids, how="left", predicate="within")
    j = j[~j.index.duplicated(keep="first")]
    return time.perf_counter() - t0, j["code"].to_numpy()


def agreement(engine, plan_id, n=100_000) -> dict:
    from sqlalchemy import text

    from geo.api.services.lookup_index import load_index

    idx = load_index(engine)
    ext = grid_extent(engine)
    xs, ys = random_points(ext, n, seed=3, edge_share=0.1, engine=engine)
    t0 = time.perf_counter()
    mem = idx.lookup_many(xs, ys)
    t_mem = time.perf_counter() - t0
    mem_codes = [idx.codes[i] if i >= 0 else None for i in mem]
    t0 = time.perf_counter()
    with engine.connect() as c:
        sql = c.execute(text("""
            SELECT (SELECT g.code FROM grids g WHERE g.plan_id = :p AND
                    ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(t.x, t.y), 4326)) ORDER BY g.code LIMIT 1)
            FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t(x, y, i) ORDER BY t.i
        """), {"p": plan_id, "xs": xs.tolist(), "ys": ys.tolist()}).scalars().all()
    t_sql = time.perf_counter() - t0
    diff = sum(a != b for a, b in zip(mem_codes, sql))
    return {"points": n, "on_edges_or_vertices": int(n * 0.1), "disagreements": diff, "strtree_s": t_mem,
            "postgis_s": t_sql, "inside": sum(c is not None for c in sql)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=3.7)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--workers", type=int, default=1, help="API worker processes")
    ap.add_argument("--batch", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="Keep the temporary cluster")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="geo-bench-lookup-"))
    tmp.chmod(0o755)
    w = world(a.scale, tmp)
    print(f"world: synthetic district scale {a.scale}: {w['people']:,} people, {w['grids']} grids "
          f"(partition {w['partition_s']:.1f} s)", flush=True)
    api, port = start_api(a.workers)
    try:
        import httpx

        token = httpx.post(f"http://127.0.0.1:{port}/v1/auth/token",
                           data={"username": "bench", "password": "bench-password"}).json()["access_token"]
        ext = grid_extent(w["engine"])
        xs, ys = random_points(ext, 20_000, seed=1)
        pts_file = tmp / "points.txt"
        pts_file.write_text("\n".join(f"lon={x:.7f}&lat={y:.7f}" for x, y in zip(xs, ys)))
        script = tmp / "lookup.lua"
        script.write_text(WRK_LUA % token)
        base = f"http://127.0.0.1:{port}"
        wrk(f"{base}/v1/ping", 3, 16)  # warm-up
        ceiling = wrk(f"{base}/v1/ping", a.seconds, 16)
        single = wrk(f"{base}/v1/lookup", a.seconds, 16, str(script), [str(pts_file)])
        raw = raw_postgis(w["url"], xs, ys, a.seconds, threads=16)
        bx, by = random_points(ext, a.batch, seed=2)
        t_api, codes_api = batch_api(port, token, bx, by)
        t_sj, codes_sj = batch_sjoin(w["engine"], w["plan_id"], bx, by)
        inside = [c for c in codes_api if c]
        same = sum((a_ or None) == (b_ if isinstance(b_, str) else None) for a_, b_ in zip(codes_api, codes_sj))
        agree = agreement(w["engine"], w["plan_id"])
    finally:
        api.terminate()
        api.wait(10)
    rows = [("HTTP ceiling (/v1/ping)", ceiling), ("GET /v1/lookup (STRtree)", single),
            ("raw psycopg loop, PostGIS ST_Covers", raw)]
    print(f"\nsingle lookups: 16 concurrent clients, {a.seconds} s each, loopback, {a.workers} API worker(s), "
          f"{w['grids']} grids")
    print(f"{'':40} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'vs ceiling':>10}")
    for name, r in rows:
        print(f"{name:40} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['non2xx']:8d} "
              f"{r['rps'] / ceiling['rps']:10.2f}")
    print(f"lookup / raw PostGIS throughput: {single['rps'] / raw['rps']:.2f}x")
    print("(non-2xx of the lookups are 404 'not in any grid' bodies naming the nearest grid: the random points "
          "fill the plan's bounding box; the raw loop answers those with an empty result)")
    print(f"\nbatch of {a.batch:,} random points ({len(inside):,} inside a grid)")
    print(f"{'POST /v1/lookup/batch (JSON, end to end)':45} {t_api:7.2f} s")
    print(f"{'geopandas.sjoin (in-process, no I/O)':45} {t_sj:7.2f} s   ratio API/sjoin {t_api / t_sj:.2f}")
    print(f"answers identical to sjoin: {same:,} of {len(codes_api):,} "
          f"(sjoin's 'within' excludes boundary points; the API's rule is ST_Covers)")
    print(f"\nSTRtree vs PostGIS ST_Covers on {agree['points']:,} points ({agree['on_edges_or_vertices']:,} on "
          f"vertices): {agree['disagreements']} disagreements; STRtree {agree['strtree_s']:.2f} s, "
          f"PostGIS {agree['postgis_s']:.2f} s")
    result = {"grids": w["grids"], "ceiling": ceiling, "lookup": single, "raw_postgis": raw, "batch_api_s": t_api,
              "batch_sjoin_s": t_sj, "agreement": agree}
    (tmp / "result.json").write_text(json.dumps(result, indent=2))
    if not a.keep:
        from geo.db.session import dispose_engines

        dispose_engines()
        w["cluster"].destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
