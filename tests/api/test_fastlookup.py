"""The compiled step of the lookup fast path (``geo.api._fastlookup``) answers only what the Python fast path
(:func:`geo.api.routes.lookup.fast_answer`) answers, with the same bytes, and leaves everything else to it.

No database: a real :class:`GridIndex` over irregular grids, a real :class:`PrincipalCache`, and queries
written the many ways clients write numbers (several seeds)."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import orjson
import pytest
import shapely

from geo.access import policy
from geo.api import _fastlookup
from geo.api.core.security import Principal
from geo.api.routes.lookup import fast_answer
from geo.api.services.lookup_index import Snapshot
from geo.api.services.principals import PrincipalCache
from tests.api.test_lookup_index import voronoi_index

USERS = {
    b"Bearer disp": Principal("user", 1, "disp", "dispatcher", 1, "/1/"),
    b"Bearer lead": Principal("user", 2, "lead", "leader", 2, "/1/2/"),
    b"Bearer work": Principal("user", 3, "work", "worker", 3, "/1/2/3/", worker_id=7),
}
KEY = Principal("api_key", 9, "hotline", "hotline", 1, "/1/")


def world(seed: int):
    idx = voronoi_index(seed)
    cache = PrincipalCache(view=policy.lookup_view)
    cache.live = True
    for auth, p in USERS.items():
        cache.put_token(cache.generation, auth[7:].decode(), p, time.time() + 3600)
    cache.put_token(cache.generation, "old", USERS[b"Bearer disp"], time.time() - 1)  # expired
    from geo.api.core.security import hash_api_key

    cache.put_key(cache.generation, hash_api_key("geo_key"), KEY)
    snap = Snapshot(idx, {}, {})
    holder = SimpleNamespace(snapshot=snap, _snap=snap, _pending=None)  # IndexHolder's fields the C step reads
    return SimpleNamespace(principals=cache, holder=holder), holder


def number_text(rng, v: float) -> str:
    """*v* the ways clients write it: fixed digits, shortest repr, padded, exponent, sign, too many digits."""
    k = rng.integers(0, 9)
    if k == 0:
        return repr(v)
    if k == 1:
        return f"{v:.{rng.integers(0, 8)}f}"
    if k == 2:
        return f"{v:.{rng.integers(8, 20)}f}"  # more than 15 significant digits: strtod, not the fast parse
    if k == 3:
        return "00" + f"{v:.5f}" + "000"
    if k == 4:
        return f"{v:e}"
    if k == 5:
        return "+" + f"{v:.6f}"
    if k == 6:
        return f"{v:.7f}".rstrip("0")  # "114." when it ends in zeros
    if k == 7:
        return f"{int(v)}"  # an integer: the body must still say 114.0
    return f"{v:.7f}"


def scope(qs: bytes, headers: list) -> dict:
    return {"type": "http", "method": "GET", "path": "/v1/lookup", "query_string": qs, "headers": headers}


@pytest.mark.parametrize("seed", [1, 7, 2026])
def test_compiled_step_answers_as_the_python_path(seed):
    state, holder = world(seed)
    rng = np.random.default_rng(seed)
    creds = [[(b"authorization", a)] for a in USERS] + [[(b"x-api-key", b"geo_key")]]
    odd = [[(b"authorization", b"Bearer old")], [(b"authorization", b"Bearer nobody")], [],
           [(b"x-api-key", b"geo_nokey"), (b"authorization", b"Bearer disp")],  # a key wins, even unknown
           [(b"authorization", b"bearer disp")], [(b"authorization", b"Bearer disp"), (b"origin", b"http://x")]]
    hits = same = ok = 0
    for n in range(6000):
        x, y = rng.uniform(114.10, 114.40), rng.uniform(30.40, 30.60)
        xs, ys = number_text(rng, x), number_text(rng, y)
        qs = (f"lon={xs}&lat={ys}" if n % 50 else f"lat={ys}&lon={xs}").encode()
        if n % 97 == 0:
            qs += b"&crs=wgs84"
        hs = list(creds[n % len(creds)] if n % 13 else odd[(n // 13) % len(odd)])
        if n % 3 == 0:
            hs = [(b"host", b"x")] + hs + [(b"x-request-id", b"r" * (n % 90))]
        if n % 5 == 0:
            hs = [list(h) for h in hs]  # Starlette's test client sends lists
        cors = n % 26 == 0
        sc = scope(qs, hs)
        fast_answer(state, sc, cors)  # fills the caches the compiled step reads
        c = _fastlookup.answer(sc, cors, state.principals, holder)
        py = fast_answer(state, sc, cors)
        ok += py is not None and type(py[0]) is bytes
        if c is None:
            continue
        hits += 1
        headers, body = c
        assert py is not None and type(py[0]) is bytes, (qs, hs)
        assert body == py[0], (qs, body, py[0])
        assert dict(headers)[b"content-length"] == str(len(body)).encode()
        assert dict(headers)[b"content-type"] == b"application/json"
        rid = dict(headers)[b"x-request-id"]
        assert rid == py[1] if py[1] else (len(rid) == 16 and int(rid, 16) >= 0)
        d = orjson.loads(body)
        assert d["point"] == {"lon": float(xs), "lat": float(ys), "crs": "wgs84"}
        same += 1
    # most answers are compiled; the rest (odd credentials, CORS, other query shapes, cells a boundary
    # touches) were left to Python; every compiled one was compared with Python's
    assert hits == same and hits > 0.75 * ok > 1500, (hits, ok)


def test_compiled_step_leaves_the_unusual_to_python():
    state, holder = world(1)
    idx = holder.snapshot.index
    x, y = 114.25, 30.5
    sc = scope(f"lon={x}&lat={y}".encode(), [(b"authorization", b"Bearer disp")])
    assert _fastlookup.answer(sc, False, state.principals, holder) is None  # nothing cached yet
    fast_answer(state, sc, False)
    assert _fastlookup.answer(sc, False, state.principals, holder) is not None
    for qs in (b"lon=1e2&lat=30.5", b"lon=114.25&lat=30.5&at=2020", b"lon=%31&lat=30.5", b"lon=nan&lat=30.5",
               b"lon=181&lat=30.5", b"lon= 114.25&lat=30.5", b"lon=114.25&lat=30.5&lat=1", b"lon=0.00001&lat=0"):
        assert _fastlookup.answer(scope(qs, sc["headers"]), False, state.principals, holder) is None, qs
    # cells a boundary touches: a grid vertex (several segments) and a point on the one segment of a cell
    # go to Python's exact test; a point clearly off that segment is answered compiled, as Python answers it
    x0, y0, inv = idx.cells[:3]
    hs = sc["headers"]

    def cell_of(px, py):
        return int(math.floor((px - x0) * inv)), int(math.floor((py - y0) * inv))

    def ask(px, py):
        q = scope(f"lon={float(px)!r}&lat={float(py)!r}".encode(), hs)
        py_ = fast_answer(state, q, False)
        return _fastlookup.answer(q, False, state.principals, holder), py_

    vx, vy = shapely.get_coordinates(idx.geoms[3])[1]
    assert idx.cells[5][cell_of(vx, vy)[::-1]] <= -2 and ask(vx, vy)[0] is None
    k = next(k for k in range(len(idx._own)) if (sg := idx.segment(k)) is not None and sg[4] >= 0 and sg[5] >= 0)
    j, i = np.argwhere(idx.cells[5] == -(k + 2))[0]
    size = 1 / inv
    box = (x0 + i * size, y0 + j * size, x0 + (i + 1) * size, y0 + (j + 1) * size)
    on = shapely.clip_by_rect(shapely.LineString([idx.segment(k)[:2], idx.segment(k)[2:4]]), *box).centroid
    assert cell_of(on.x, on.y) == (i, j) and ask(on.x, on.y)[0] is None
    c, p = ask(box[0] + size * 1e-3, box[1] + size * 1e-3)  # a corner: clearly on one side
    c2, p2 = ask(box[2] - size * 1e-3, box[3] - size * 1e-3)
    assert (c is not None or c2 is not None) and (c is None or c[1] == p[0]) and (c2 is None or c2[1] == p2[0])
    assert _fastlookup.answer(scope(b"lon=114.0&lat=30.0", hs), False, state.principals, holder) is None  # outside
    # a caller who may not read: the view is None
    state.principals.raw_tokens[b"Bearer x"] = (USERS[b"Bearer disp"], time.time() + 60, None)
    assert _fastlookup.answer(scope(sc["query_string"], [(b"authorization", b"Bearer x")]), False,
                              state.principals, holder) is None
    # a plan switch that is due is left to Python (IndexHolder.snapshot makes it); one to come is not
    holder._pending = (time.time() - 1, idx)
    assert _fastlookup.answer(sc, False, state.principals, holder) is None
    holder._pending = (time.time() + 60, idx)
    assert _fastlookup.answer(sc, False, state.principals, holder) is not None
    holder._pending = None
    # not a lookup
    for k, v in (("path", "/v1/lookup/batch"), ("method", "POST"), ("type", "websocket")):
        assert _fastlookup.answer({**sc, k: v}, False, state.principals, holder) is None
    # revocation: the maps are replaced, so nothing is answered until Python has resolved the caller again
    state.principals.invalidate()
    assert _fastlookup.answer(sc, False, state.principals, holder) is None


def test_request_ids_are_one_sequence():
    from geo.api.main import new_request_id

    a, b, c = _fastlookup.request_id(), new_request_id().encode(), _fastlookup.request_id()
    assert a[:8] == b[:8] == c[:8] and int(b[8:], 16) == int(a[8:], 16) + 1 == int(c[8:], 16) - 1
