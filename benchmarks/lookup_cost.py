"""Where a lookup's microseconds go: CPU time per call, in-process, no sockets.

Builds the synthetic district (``--scale``) in a private embedded PostGIS, starts the real app's lifespan
(index, principal cache, listeners) and calls it as ASGI with a token already cached, measuring
``time.thread_time`` (CPU of this thread — steady even when other work shares the cores) per call of:

* the whole app on ``GET /v1/lookup`` (the fast path in ``GeoAPI.__call__``), points inside grids and
  points outside every grid (404 naming the nearest);
* the compiled step alone (``geo.api._fastlookup.answer``: what answers nearly every request above);
* the Python fast path alone (``fast_answer``: parse, principal cache, index, body — what answers the rest);
* the index lookup alone;
* the bare ASGI callable of the benchmark's ceiling (``benchmarks.lookup_apps.bare``);
* FastAPI's constant route ``/healthz`` through the whole stack.

Usage::

    python benchmarks/lookup_cost.py [--scale 1.0] [--seconds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.lookup import grid_extent, random_points, world  # noqa: E402


def per_call(fn, items, seconds: float) -> float:
    t0, n = time.thread_time(), 0
    while time.thread_time() - t0 < seconds:
        for it in items:
            fn(it)
        n += len(items)
    return (time.thread_time() - t0) / n * 1e6


async def aper_call(fn, items, seconds: float) -> float:
    t0, n = time.thread_time(), 0
    while time.thread_time() - t0 < seconds:
        for it in items:
            await fn(it)
        n += len(items)
    return (time.thread_time() - t0) / n * 1e6


async def measure(w: dict, seconds: float) -> list[tuple[str, float]]:
    from geo.api import _fastlookup
    from geo.api.core.security import create_token
    from geo.api.main import create_app
    from geo.api.routes.lookup import fast_answer
    from benchmarks.lookup_apps import bare

    app = create_app()
    q: asyncio.Queue = asyncio.Queue()
    started = asyncio.Event()
    await q.put({"type": "lifespan.startup"})

    async def lsend(m):
        if m["type"] == "lifespan.startup.complete":
            started.set()

    life = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, q.get, lsend))
    await started.wait()
    st = app.state.geo
    while not st.principals.live:
        await asyncio.sleep(0.05)
    tok = create_token(st.secret, subject="bench", role="dispatcher", jurisdiction_id=0, ttl_minutes=60, version=0)
    idx = st.holder.index
    xs, ys = random_points(grid_extent(w["engine"]), 3000, seed=1)
    inside = [(x, y) for x, y in zip(xs, ys) if idx.lookup(x, y) >= 0]
    outside = [(x, y) for x, y in zip(xs, ys) if idx.lookup(x, y) < 0]

    async def send(m):
        pass

    async def recv():
        return {"type": "http.request", "body": b"", "more_body": False}

    def scope(path, x=None, y=None):
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
                "path": path, "raw_path": path.encode(), "root_path": "", "state": {},
                "query_string": f"lon={x:.7f}&lat={y:.7f}".encode() if x is not None else b"",
                "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {tok}".encode())],
                "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}

    s_in = [scope("/v1/lookup", x, y) for x, y in inside]
    s_out = [scope("/v1/lookup", x, y) for x, y in outside]
    s_h = [scope("/healthz") for _ in range(200)]
    await app(scope("/v1/auth/me"), recv, send)  # resolves and caches the token
    for s in s_in[:20]:
        await app(s, recv, send)
    rows = [("whole app, GET /v1/lookup inside a grid", await aper_call(lambda s: app(s, recv, send), s_in, seconds)),
            ("  compiled step alone (_fastlookup.answer)",
             per_call(lambda s: _fastlookup.answer(s, False, st.principals, st.holder), s_in, seconds)),
            ("  Python fast path alone (fast_answer)", per_call(lambda s: fast_answer(st, s), s_in, seconds)),
            ("  index lookup alone", per_call(lambda p: idx.lookup(*p), inside, seconds)),
            ("whole app, GET /v1/lookup outside (404)", await aper_call(lambda s: app(s, recv, send), s_out, seconds)),
            ("bare ASGI constant (the ceiling's app)", await aper_call(lambda s: bare(s, recv, send), s_in, seconds)),
            ("whole app, FastAPI route /healthz", await aper_call(lambda s: app(s, recv, send), s_h, seconds))]
    # how many of these points the compiled step answers once every answer is cached, and the near cells
    compiled = sum(_fastlookup.answer(s, False, st.principals, st.holder) is not None for s in s_in)
    index = st.holder.index
    single = sum(index.segment(k) is not None for k in range(len(index._own)))
    rows.append(("points inside a grid answered by the compiled step, %", 100 * compiled / len(s_in)))
    rows.append(("near cells crossed by one segment only, %", 100 * single / max(1, len(index._own))))
    await q.put({"type": "lifespan.shutdown"})
    await life
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="geo-bench-cost-"))
    tmp.chmod(0o755)
    w = world(a.scale, tmp)
    os.environ["GEO_LOG_LEVEL"] = "WARNING"
    os.environ["GEO_ACCESS_LOG"] = "off"
    from geo.config import reset_settings

    reset_settings()
    try:
        rows = asyncio.run(measure(w, a.seconds))
    finally:
        from geo.db.session import dispose_engines

        dispose_engines()
        w["cluster"].destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    bare = dict(rows)["bare ASGI constant (the ceiling's app)"]
    print(f"\nCPU time per call (time.thread_time), in-process ASGI calls without sockets, {w['grids']} grids")
    print(f"{'':45} {'CPU us':>8} {'vs bare':>8}")
    for name, us in rows:
        if name.endswith("%"):
            print(f"{name[:-3]}: {us:.1f}%")
        else:
            print(f"{name:45} {us:8.2f} {us / bare:8.2f}")


if __name__ == "__main__":
    main()
