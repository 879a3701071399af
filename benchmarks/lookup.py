"""Lookup benchmark: single GET /v1/lookup against honest baselines; batch vs geopandas.sjoin.

Builds its own world in a temporary embedded PostGIS: the synthetic district at
``--scale`` (3.7 ≈ 1.1 M people ≈ 700+ grids) loaded with the project's loaders,
partitioned by the engine at district level and published. Then, in one run, with
the same load generator (``wrk -t2 -c16``, loopback, the same Lua script and random
points) against servers run by uvicorn with ``geo serve``'s own settings
(:data:`geo.api.main.UVICORN_OPTIONS`) and the same number of workers:

1. the **ceiling**: a bare ASGI callable returning a constant
   (:func:`benchmarks.lookup_apps.bare`) — no framework at all;
2. the **raw PostGIS baseline**: a tiny pure-ASGI handler running the equivalent
   PostGIS query per request on 16 async connections (:func:`benchmarks.lookup_apps.postgis`);
3. the API: ``GET /v1/lookup`` (memory index, authenticated with a Bearer token) and, for
   context, FastAPI's own constant route ``/healthz``;

and the ratios to the ceiling and to PostGIS are printed. Then (unless ``--single-only``):

4. ``POST /v1/lookup/batch`` of 1,000,000 random points (JSON, end to end) next to
   ``geopandas.sjoin`` on the same points in-process;
5. agreement of the in-memory index with PostGIS ``ST_Covers`` on 100,000 random
   points (a tenth of them exactly on grid vertices/edges).

Usage::

    python benchmarks/lookup.py [--scale 3.7] [--seconds 10] [--rounds 3] [--workers 1] [--single-only]

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


def start_api(workers: int, **env_extra: str) -> tuple[subprocess.Popen, int]:
    """``geo serve --demo`` on a free port with *workers* processes, once ``/readyz`` answers; *env_extra*
    adds settings. No per-request log lines while measuring (``GEO_LOG_LEVEL=WARNING``)."""
    port = free_port()
    env = os.environ | {"GEO_API_PORT": str(port), "GEO_LOG_LEVEL": "WARNING"} | env_extra
    p = subprocess.Popen([sys.executable, "-m", "geo.cli", "serve", "--demo", "--workers", str(workers)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return p, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    p.kill()
    raise RuntimeError("API did not start (run `geo serve --demo` by hand to see why)")


def child_pids(pid: int) -> list[int]:
    """*pid* and its children (uvicorn's worker processes)."""
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    return pids


def start_baseline(which: str, workers: int, env_extra: dict | None = None) -> tuple[subprocess.Popen, int]:
    """Serve ``benchmarks.lookup_apps:<which>`` with geo serve's uvicorn settings on a free port."""
    port = free_port()
    env = os.environ | {"PYTHONPATH": str(REPO)} | (env_extra or {})
    p = subprocess.Popen([sys.executable, "-m", "benchmarks.lookup_apps", which, str(port), str(workers)], env=env,
                         cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return p, port
        time.sleep(0.1)
    p.kill()
    raise RuntimeError(f"baseline {which} did not start")


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


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of *pid* and its children (uvicorn's worker processes), in seconds."""
    total = 0
    for q in child_pids(pid):
        try:
            f = Path(f"/proc/{q}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def single_lookups(w: dict, a, tmp: Path, port: int, token: str, api_pid: int) -> tuple[list, dict]:
    """wrk against the ceiling, the raw PostGIS handler and the API, with the same script and points."""
    from geo.api.services.lookup_index import load_index

    ext = grid_extent(w["engine"])
    xs, ys = random_points(ext, 40_000, seed=1)
    inside = load_index(w["engine"]).lookup_many(xs, ys) >= 0
    files = {}
    for name, keep in (("inside", inside), ("bbox", np.ones(len(xs), bool))):
        files[name] = tmp / f"points-{name}.txt"
        files[name].write_text("\n".join(f"lon={x:.7f}&lat={y:.7f}" for x, y in zip(xs[keep][:20_000],
                                                                                    ys[keep][:20_000])))
    outside_share = 1 - inside.mean()
    script = tmp / "lookup.lua"
    script.write_text(WRK_LUA % token)
    inside_args = (str(script), [str(files["inside"])])
    bbox_args = (str(script), [str(files["bbox"])])
    base = f"http://127.0.0.1:{port}"
    import httpx

    first = open(files["inside"]).readline().strip()
    size = len(httpx.get(f"{base}/v1/lookup?{first}", headers={"Authorization": f"Bearer {token}"}).content)
    bare, bport = start_baseline("bare", a.workers, {"BENCH_CONSTANT_BYTES": str(size)})
    pg, pport = start_baseline("postgis", a.workers, {"DATABASE_URL": w["url"]})
    targets = {"ceiling": (f"http://127.0.0.1:{bport}/v1/lookup", inside_args),
               "postgis": (f"http://127.0.0.1:{pport}/v1/lookup", inside_args),
               "lookup": (f"{base}/v1/lookup", inside_args),
               "lookup_bbox": (f"{base}/v1/lookup", bbox_args),
               "healthz": (f"{base}/healthz", (None, None))}
    pids = {"ceiling": bare.pid, "postgis": pg.pid, "lookup": api_pid, "lookup_bbox": api_pid, "healthz": api_pid}
    runs: dict[str, list[dict]] = {k: [] for k in targets}
    try:
        for url, (sc, ar) in targets.values():  # warm-up: tokens resolved, answers serialised, pools open
            wrk(url, 2, 16, sc, ar)
        # interleaved rounds: on a shared machine, load drifts; each round measures every server back to back
        for _ in range(a.rounds):
            for k, (url, (sc, ar)) in targets.items():
                c0 = cpu_seconds(pids[k])
                r = wrk(url, a.seconds, 16, sc, ar)
                r["server_cpu_us"] = (cpu_seconds(pids[k]) - c0) / r["requests"] * 1e6  # CPU per request
                runs[k].append(r)
    finally:
        _stop(bare)
        _stop(pg)

    def median_run(k):
        rs = sorted(runs[k], key=lambda r: r["rps"])
        return rs[len(rs) // 2]

    rows = {k: median_run(k) for k in targets}
    # ratio per round (servers measured back to back), then the median of the rounds
    ratio = {k: float(np.median([r["rps"] / c["rps"] for r, c in zip(runs[k], runs["ceiling"])])) for k in targets}
    ratio_pg = {k: float(np.median([r["rps"] / c["rps"] for r, c in zip(runs[k], runs["postgis"])]))
                for k in targets}
    # the same by the server's CPU time per request (steadier than req/s when other work shares the cores)
    cpu = {k: float(np.median([r["server_cpu_us"] for r in runs[k]])) for k in targets}
    table = [("ceiling: bare ASGI constant", rows["ceiling"]),
             ("raw PostGIS (pure-ASGI handler)", rows["postgis"]),
             ("GET /v1/lookup, points in grids", rows["lookup"]),
             (f"GET /v1/lookup, bbox ({outside_share:.0%} 404)", rows["lookup_bbox"]),
             ("FastAPI constant route /healthz", rows["healthz"])]
    print(f"\nsingle lookups: wrk -t2 -c16, {a.rounds} interleaved rounds of {a.seconds} s, loopback, "
          f"{a.workers} uvicorn worker(s) (geo serve's settings), {w['grids']} grids, {os.cpu_count()} cores; "
          f"median run, median ratio of the rounds; the ceiling's constant is {size} bytes, as a lookup answer")
    print(f"{'':36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'vs ceiling':>10} {'vs PostGIS':>10} "
          f"{'CPU us/req':>10} {'ceiling CPU / CPU':>17}")
    for (name, r), k in zip(table, targets):
        print(f"{name:36} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['non2xx']:8d} "
              f"{ratio[k]:10.2f} {ratio_pg[k]:10.2f} {cpu[k]:10.1f} {cpu['ceiling'] / cpu[k]:17.2f}")
    print("(ceiling, PostGIS and the first lookup row get the same points, all inside a grid; the 'bbox' row "
          "draws them from the plan's bounding box: its non-2xx are 404s naming the nearest grid, which costs a "
          "nearest-boundary search and an access-log line each)")
    print("(CPU us/req: the server process's user+system CPU per answered request — PostGIS's own backends are "
          "not counted in its row)")
    return table, {"constant_bytes": size, "median": rows, "runs": runs, "ratio_to_ceiling": ratio, "ratio_to_postgis": ratio_pg,
                   "server_cpu_us": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=3.7)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (every server)")
    ap.add_argument("--batch", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3, help="Interleaved rounds of the single-lookup runs")
    ap.add_argument("--single-only", action="store_true", help="Only the single-lookup table")
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
    result = {"grids": w["grids"]}
    try:
        import httpx

        token = httpx.post(f"http://127.0.0.1:{port}/v1/auth/token",
                           data={"username": "bench", "password": "bench-password"}).json()["access_token"]
        _, result["single"] = single_lookups(w, a, tmp, port, token, api.pid)
        if not a.single_only:
            ext = grid_extent(w["engine"])
            bx, by = random_points(ext, a.batch, seed=2)
            t_api, codes_api = batch_api(port, token, bx, by)
            t_sj, codes_sj = batch_sjoin(w["engine"], w["plan_id"], bx, by)
            inside = [c for c in codes_api if c]
            same = sum((a_ or None) == (b_ if isinstance(b_, str) else None) for a_, b_ in zip(codes_api, codes_sj))
            agree = agreement(w["engine"], w["plan_id"])
            result.update(batch_api_s=t_api, batch_sjoin_s=t_sj, agreement=agree)
    finally:
        _stop(api)
    if not a.single_only:
        print(f"\nbatch of {a.batch:,} random points ({len(inside):,} inside a grid)")
        print(f"{'POST /v1/lookup/batch (JSON, end to end)':45} {t_api:7.2f} s")
        print(f"{'geopandas.sjoin (in-process, no I/O)':45} {t_sj:7.2f} s   ratio API/sjoin {t_api / t_sj:.2f}")
        print(f"answers identical to sjoin: {same:,} of {len(codes_api):,} "
              f"(sjoin's 'within' excludes boundary points; the API's rule is ST_Covers)")
        print(f"\nSTRtree vs PostGIS ST_Covers on {agree['points']:,} points ({agree['on_edges_or_vertices']:,} on "
              f"vertices): {agree['disagreements']} disagreements; STRtree {agree['strtree_s']:.2f} s, "
              f"PostGIS {agree['postgis_s']:.2f} s")
    (tmp / "result.json").write_text(json.dumps(result, indent=2))
    if not a.keep:
        from geo.db.session import dispose_engines

        dispose_engines()
        w["cluster"].destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
