"""The two baselines of the lookup benchmark, as ASGI apps served by uvicorn exactly like ``geo serve``.

* ``bare``: a bare ASGI callable answering every request with a constant JSON body (as long as a lookup
  answer) — no framework, no middleware: the ceiling of one uvicorn worker on this machine.
* ``postgis``: a tiny pure-ASGI handler that answers ``GET /?lon=&lat=`` with the equivalent PostGIS query
  (``ST_Covers``, smallest code on shared edges, community/street/district names and staff) on a pool of
  async psycopg connections — the raw database baseline, driven by the same ``wrk`` as the API.

Run one (``python -m benchmarks.lookup_apps bare|postgis PORT [WORKERS]``; ``postgis`` reads DATABASE_URL).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: ``BENCH_CONSTANT_BYTES`` pads the constant to the size of a real answer (the benchmark passes the size of a
#: lookup answer, so the ceiling moves the same bytes through the socket)
_n = int(os.environ.get("BENCH_CONSTANT_BYTES", "0"))
CONSTANT = b'{"code":"000000000000000","name":"' + b"x" * max(0, _n - 45) + b'"}'

#: The answer the API gives, from PostGIS: grid, community/street/district, chief and on-duty workers.
LOOKUP_SQL = """
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
COLUMNS = ("code", "name", "kind", "level", "population", "plan_id", "plan_version", "community_code",
           "community", "street_code", "street", "district_code", "district", "staff")


async def _lifespan(receive, send, startup=None, shutdown=None):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if startup:
                await startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if shutdown:
                await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _answer(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def bare(scope, receive, send):
    """A constant answer: the ceiling."""
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    await _answer(send, 200, CONSTANT)


_pool: asyncio.Queue | None = None


async def _open_pool(n: int = 16) -> None:
    import psycopg

    global _pool
    _pool = asyncio.Queue()
    url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    for _ in range(n):
        _pool.put_nowait(await psycopg.AsyncConnection.connect(url, autocommit=True))


async def postgis(scope, receive, send):
    """One PostGIS query per request, the answer as JSON (404 with an empty body outside every grid)."""
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send, startup=_open_pool)
    q = dict(parse_qsl(scope["query_string"].decode("latin-1")))
    conn = await _pool.get()
    try:
        cur = await conn.execute(LOOKUP_SQL, (float(q["lon"]), float(q["lat"])), prepare=True)
        row = await cur.fetchone()
    finally:
        _pool.put_nowait(conn)
    if row is None:
        return await _answer(send, 404, b"{}")
    await _answer(send, 200, orjson.dumps(dict(zip(COLUMNS, row))))


def main() -> None:
    import uvicorn

    from geo.api.main import UVICORN_OPTIONS

    which, port = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    uvicorn.run(f"benchmarks.lookup_apps:{which}", host="127.0.0.1", port=port, workers=workers, **UVICORN_OPTIONS)


if __name__ == "__main__":
    main()
