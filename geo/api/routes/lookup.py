"""Which grid owns a location: single points (memory index) and batches of up to a million.

Edge rule: a point on an edge shared by several grids belongs to the grid with
the smallest code (see :mod:`geo.api.services.lookup_index`).
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from typing import Literal

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import text

from geo.access import policy
from geo.api.core.responses import JSON
from geo.api.core.security import Principal
from geo.api.deps import get_state, require
from geo.api.errors import APIError
from geo.api.services.lookup_index import SQL_LOOKUP, GridIndex, Snapshot
from geo.crs import gcj02_to_wgs84, point_to_wgs84

router = APIRouter(prefix="/v1/lookup", tags=["lookup"])
CRS = Literal["wgs84", "gcj02", "cgcs2000"]


def staff_dict(s) -> dict:
    """One worker of a grid as the lookup shows it (before the policy masks it)."""
    return {"id": s.id, "name": s.name, "role": s.role, "on_duty": s.on_duty, "phone": s.phone}


def staff_payload(staff: list[dict] | None) -> dict:
    """``chief`` and ``workers_on_duty`` from a grid's staff as the caller may see them (None: not at all)."""
    if staff is None:
        return {"chief": None, "workers_on_duty": None}
    return {"chief": next((s for s in staff if s["role"] == "chief"), None),
            "workers_on_duty": [s for s in staff if s["on_duty"]]}


def grid_payload(idx: GridIndex, i: int) -> dict:
    g = idx.info[i]
    return {"code": g.code, "name": g.name, "kind": g.kind, "level": g.level, "population": g.population,
            "community": g.community, "street": g.street, "district": g.district,
            "plan": {"id": g.plan_id, "version": g.plan_version, "jurisdiction": g.jurisdiction_code}}


LOOKUP_PARAMETERS = [
    {"name": "lon", "in": "query", "required": True, "description": "Longitude",
     "schema": {"type": "number", "minimum": -180, "maximum": 180}},
    {"name": "lat", "in": "query", "required": True, "description": "Latitude",
     "schema": {"type": "number", "minimum": -90, "maximum": 90}},
    {"name": "crs", "in": "query", "required": False,
     "description": "Coordinates are WGS84, GCJ-02 (Amap/Tencent) or CGCS2000",
     "schema": {"type": "string", "enum": ["wgs84", "gcj02", "cgcs2000"], "default": "wgs84"}},
    {"name": "at", "in": "query", "required": False,
     "description": "Answer with the plan that was in force at this time (ISO 8601)",
     "schema": {"type": "string", "format": "date-time"}},
]


def _number(q, name: str, lo: float, hi: float) -> float:
    raw = q.get(name)
    if raw is None:
        raise _invalid(name, "field required", raw)
    try:
        v = float(raw)
    except ValueError:
        raise _invalid(name, "input should be a valid number", raw) from None
    if not (lo <= v <= hi):  # also rejects NaN
        raise _invalid(name, f"input should be between {lo:g} and {hi:g}", raw)
    return v


def _invalid(name: str, msg: str, raw) -> APIError:
    d = {"field": name, "in": "query", "message": msg}
    if raw is not None:
        d["input"] = raw[:200]
    return APIError(422, "validation_error", f"invalid request: {name}", details=[d])


@router.get("", summary="The grid that owns a point (published plan, or the plan in force at ?at=)",
            openapi_extra={"parameters": LOOKUP_PARAMETERS})
async def lookup(request: Request, p: Principal = Depends(require("read"))):
    """The hot path of dispatch: parameters are read by hand (declared above for OpenAPI) because
    per-parameter validation cost more than the lookup itself. Usually answered by :func:`fast_answer`
    before routing; this route serves what the fast path passes on (``?at=``, refusals)."""
    return await answer(get_state(request), request.query_params, p)


async def answer(state, q, p: Principal) -> Response:
    """Read the parameters, look the point up, answer (raises :class:`APIError` for a 4xx)."""
    lon, lat = _number(q, "lon", -180, 180), _number(q, "lat", -90, 90)
    crs = q.get("crs", "wgs84")
    if crs not in ("wgs84", "gcj02", "cgcs2000"):
        raise _invalid("crs", "input should be 'wgs84', 'gcj02' or 'cgcs2000'", crs)
    at = None
    if q.get("at") is not None:
        try:
            at = datetime.fromisoformat(q["at"].replace("Z", "+00:00"))
        except ValueError:
            raise _invalid("at", "input should be an ISO 8601 date-time", q["at"]) from None
    x, y = (lon, lat) if crs == "wgs84" else point_to_wgs84(lon, lat, crs)
    if at is not None:
        return JSON(await run_in_threadpool(_lookup_at, state, x, y, at))
    snap = state.holder.snapshot  # one consistent index, staff and answer cache for this request
    i = snap.index.lookup(x, y)
    if i < 0:
        return _not_found(snap.index, x, y)
    return Response(_with_point(grid_prefix(snap, i, p), x, y), media_type="application/json")


def grid_prefix(snap: Snapshot, i: int, p: Principal) -> bytes:
    """The JSON answer for grid *i* as *p* may see it, up to its point: ``{"code":…,"point":{"lon":``.

    The answer depends on the caller only through :func:`geo.access.policy.read_view`, so it is serialised
    once per (grid, view) and snapshot (index and staff, replaced together on every refresh)."""
    key = (i, policy.read_view(p))
    prefix = snap.bodies.get(key)
    if prefix is None:
        idx = snap.index
        d = grid_payload(idx, i)
        d.update(staff_payload(policy.staff_view(p, idx.info[i].path,
                                                 [staff_dict(s) for s in snap.staff.get(idx.codes[i], [])])))
        prefix = snap.bodies[key] = orjson.dumps(d)[:-1] + b',"point":{"lon":'
    return prefix


_POINT_LAT, _POINT_END = b',"lat":', b',"crs":"wgs84"}}'


def _with_point(prefix: bytes, x: float, y: float) -> bytes:
    """The answer: a :func:`grid_prefix` completed with the point (as WGS84)."""
    return b"".join((prefix, orjson.dumps(x), _POINT_LAT, orjson.dumps(y), _POINT_END))


# --------------------------------------------------------------------------- the fast path

_FAST_CRS = {b"wgs84": None, b"gcj02": "gcj02", b"cgcs2000": "cgcs2000"}


def _query(qs: bytes) -> tuple[bytes, bytes, str | None] | None:
    """``lon``, ``lat`` and the CRS to convert from (None for WGS84) of a plain lookup query, else None."""
    parts = qs.split(b"&")
    lon = lat = None
    crs = b"wgs84"
    seen_crs = False
    for part in parts:
        k, _, v = part.partition(b"=")
        if k == b"lon" and lon is None:
            lon = v
        elif k == b"lat" and lat is None:
            lat = v
        elif k == b"crs" and not seen_crs:
            crs, seen_crs = v, True
        else:
            return None
    if lon is None or lat is None or crs not in _FAST_CRS:
        return None
    return lon, lat, _FAST_CRS[crs]


def fast_answer(state, scope, cors: bool = False) -> tuple[bytes | APIError, bytes | None] | None:
    """``(answer, request id)`` of a plain ``GET /v1/lookup``, computed straight from the ASGI scope, or None
    and the request goes through FastAPI to the route, which handles everything else.

    *answer* is the body of a successful lookup, or the :class:`APIError` of a point outside every grid
    (answered as the route would: 404 naming the nearest grid); *request id* is the caller's ``X-Request-ID``
    header (at most 64 bytes) or None.

    Called by :class:`geo.api.main.GeoAPI` before any middleware or routing (those cost three times the
    lookup). It answers only the plain case: ``lon``, ``lat`` and optionally ``crs``, each once and without
    percent-encoding, and a caller whose principal is already in this process's cache
    (:meth:`geo.api.services.principals.PrincipalCache.from_headers`: a dict lookup on the raw header,
    dropped by ``NOTIFY`` on any revocation) and whose role may read. Anything else — ``?at=``, bad input,
    no published plan, an unknown/expired/revoked credential, a first request with a new token — returns
    None, so those errors and their audit stay in one place. Answers are built by the route's own :func:`grid_prefix` and
    :func:`_not_found`. With *cors* on, a request with an ``Origin`` header is left to the CORS middleware.
    The common case — ``lon=…&lat=…`` in plain decimals, a caller already cached, a point whose cell gives
    its grid without the exact test, an answer already cached for the caller's view — is answered before
    this function by the compiled step :func:`geo.api._fastlookup.answer`, from the objects this function
    fills (the principal cache's raw maps, the cell table, the answer cache); it leaves everything else to
    this function (``tests/api/test_fastlookup.py`` checks that both give the same answers).
    """
    qs = scope["query_string"]
    j = qs.find(b"&lat=")
    try:  # what clients send: lon=…&lat=… (anything else in either part makes float() refuse it)
        if j < 0 or qs[:4] != b"lon=":
            raise ValueError
        x, y, crs = float(qs[4:j]), float(qs[j + 5:]), None
    except ValueError:
        q = _query(qs) if b"%" not in qs else None
        if q is None:
            return None
        try:
            x, y, crs = float(q[0]), float(q[1]), q[2]
        except ValueError:
            return None
    if not (-180.0 <= x <= 180.0 and -90.0 <= y <= 90.0):
        return None
    auth = key = rid = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            auth = value
        elif name == b"x-api-key":
            key = value
        elif name == b"x-request-id":
            rid = value[:64]
        elif name == b"origin" and cors:
            return None
    p = state.principals.from_headers(key, auth)
    if p is None or not policy.may(p, "read"):
        return None
    if crs is not None:
        x, y = point_to_wgs84(x, y, crs)
    snap = state.holder.snapshot
    idx = snap.index
    i = idx.lookup(x, y)
    if i < 0:
        if len(idx) == 0:
            return None
        try:
            _not_found(idx, x, y)
        except APIError as exc:
            return exc, rid
    return _with_point(grid_prefix(snap, i, p), x, y), rid


def _not_found(idx: GridIndex, x: float, y: float):
    if len(idx) == 0:
        raise APIError(404, "no_published_plan", "no grid plan is published yet; publish one (POST /v1/plans/{id}/publish)")
    j, dist = idx.nearest(x, y)
    raise APIError(404, "not_in_any_grid", f"({x:.6f}, {y:.6f}) is outside every grid of the published plans",
                   extra={"nearest": {"code": idx.codes[j], "name": idx.info[j].name, "distance_m": round(dist, 1)}})


def plans_at(conn, at: datetime) -> list[int]:
    """Plans in force at *at*: published before it and not retired by then."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    from geo.db.plans import IN_FORCE_SQL

    return list(conn.execute(text(IN_FORCE_SQL.format(t=":at")), {"at": at}).scalars())


def _lookup_at(state, x: float, y: float, at: datetime):
    with state.engine.connect() as conn:
        plans = plans_at(conn, at)
        if not plans:
            raise APIError(404, "no_plan_at_date", f"no grid plan was in force at {at.isoformat()}")
        code = conn.execute(text(SQL_LOOKUP), {"plans": plans, "lon": x, "lat": y}).scalar_one_or_none()
        if code is None:
            raise APIError(404, "not_in_any_grid", f"({x:.6f}, {y:.6f}) was outside every grid at {at.isoformat()}")
        r = conn.execute(text("""
            SELECT g.code, g.name, g.kind, g.level, g.population, p.id AS plan_id, p.version, pj.code AS jcode,
                   c.code AS c_code, c.name AS c_name
            FROM grids g JOIN grid_plans p ON p.id = g.plan_id JOIN jurisdictions pj ON pj.id = p.jurisdiction_id
            LEFT JOIN jurisdictions c ON c.code = g.community_code
            WHERE g.plan_id = ANY(:plans) AND g.code = :code
        """), {"plans": plans, "code": code}).mappings().one()
    return {"code": r["code"], "name": r["name"], "kind": r["kind"], "level": r["level"],
            "population": r["population"],
            "community": {"code": r["c_code"], "name": r["c_name"]} if r["c_code"] else None,
            "plan": {"id": r["plan_id"], "version": r["version"], "jurisdiction": r["jcode"]},
            "at": at.isoformat(), "point": {"lon": x, "lat": y, "crs": "wgs84"}}


# --------------------------------------------------------------------------- batch


def _parse_points(content_type: str, raw: bytes, max_points: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """x, y arrays (NaN for bad rows) and per-row errors from JSON, CSV or GeoParquet."""
    errors: list[dict] = []
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct in ("application/json", ""):
        fast = _fast_points(raw, max_points)
        if fast is not None:
            return fast[0], fast[1], errors
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise APIError(400, "bad_json", f"request body is not valid JSON: {exc}") from None
        pts = doc.get("points") if isinstance(doc, dict) else doc
        if not isinstance(pts, list):
            raise APIError(422, "validation_error", "expected {\"points\": [[lon, lat], ...]} or a list of points",
                           details=[{"field": "points", "message": "must be a list"}])
        n = len(pts)
        _check_size(n, max_points)
        try:  # fast path: a clean list of [lon, lat] pairs
            arr = np.asarray(pts, dtype=float)
            if arr.ndim != 2 or arr.shape[1] < 2:
                raise ValueError
            x, y = arr[:, 0].copy(), arr[:, 1].copy()
        except (ValueError, TypeError):
            x, y = np.full(n, np.nan), np.full(n, np.nan)
            for i, pt in enumerate(pts):
                try:
                    if isinstance(pt, dict):
                        a, b = float(pt["lon"]), float(pt["lat"])
                    else:
                        a, b = float(pt[0]), float(pt[1])
                    x[i], y[i] = a, b
                except (KeyError, IndexError, TypeError, ValueError):
                    errors.append({"row": i, "message": f"expected [lon, lat] or {{lon, lat}}, got {str(pt)[:60]}"})
        return x, y, errors
    if ct in ("text/csv", "application/csv"):
        import pyarrow.csv as pacsv

        try:
            tbl = pacsv.read_csv(io.BytesIO(raw), convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
        except Exception as exc:  # noqa: BLE001 — arrow's errors are descriptive
            raise APIError(400, "bad_csv", f"cannot read the CSV body: {exc}") from None
        return _xy_from_table(tbl.to_pandas(), max_points, errors)
    if ct in ("application/vnd.apache.parquet", "application/x-parquet", "application/octet-stream"):
        import geopandas as gpd

        try:
            g = gpd.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # noqa: BLE001
            raise APIError(400, "bad_parquet", f"cannot read the GeoParquet body: {exc}") from None
        _check_size(len(g), max_points)
        if g.crs is not None and g.crs.to_epsg() != 4326:
            g = g.to_crs(4326)
        geom = g.geometry
        bad = geom.isna() | geom.is_empty | (geom.geom_type != "Point")
        x = np.where(bad, np.nan, geom.x.where(~bad))
        y = np.where(bad, np.nan, geom.y.where(~bad))
        for i in np.flatnonzero(bad.to_numpy()):
            errors.append({"row": int(i), "message": "geometry is missing, empty or not a Point"})
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float), errors
    raise APIError(415, "unsupported_media_type",
                   f"Content-Type {ct!r} not supported; use application/json, text/csv or application/vnd.apache.parquet")


_HEAD, _TAIL = b'{"points":[[', b"]]}"


def _fast_points(raw: bytes, max_points: int):
    """``{"points": [[lon, lat], ...]}`` with nothing but numbers, parsed by Arrow's CSV reader.

    A million pairs take about 0.3 s this way against about 0.9 s through a generic JSON parser. Any body
    that is not exactly that shape (other keys, objects, nulls, strings) returns None and takes the
    general path, which reports bad rows one by one.
    """
    if not raw.lstrip()[:1] == b"{" or len(raw) < 16:
        return None
    body = raw.translate(None, b" \t\r\n")
    if not (body.startswith(_HEAD) and body.endswith(_TAIL)):
        return None
    inner = body[len(_HEAD):-len(_TAIL)]
    if b"{" in inner or b'"' in inner or b"null" in inner:
        return None
    n = inner.count(b"],[") + 1
    _check_size(n, max_points)
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        tbl = pacsv.read_csv(io.BytesIO(inner.replace(b"],[", b"\n")),
                             read_options=pacsv.ReadOptions(column_names=["x", "y"]),
                             convert_options=pacsv.ConvertOptions(column_types={"x": pa.float64(), "y": pa.float64()}))
    except (pa.ArrowInvalid, ValueError):
        return None
    if tbl.num_rows != n or tbl.num_columns != 2 or tbl.column(0).null_count or tbl.column(1).null_count:
        return None
    x, y = tbl.column(0).to_numpy(), tbl.column(1).to_numpy()
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return None
    return x, y


def _check_size(n: int, max_points: int) -> None:
    if n > max_points:
        raise APIError(413, "too_many_points", f"{n} points in one batch; the limit is {max_points}")


def _xy_from_table(df, max_points: int, errors: list[dict]):
    import pandas as pd

    _check_size(len(df), max_points)
    cols = {c.lower(): c for c in df.columns}
    xc = next((cols[c] for c in ("lon", "lng", "longitude", "x") if c in cols), None)
    yc = next((cols[c] for c in ("lat", "latitude", "y") if c in cols), None)
    if xc is None or yc is None:
        raise APIError(422, "validation_error", f"CSV needs lon/lat (or x/y) columns; got {list(df.columns)}",
                       details=[{"field": "lon/lat", "message": "missing column"}])
    x = pd.to_numeric(df[xc], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(df[yc], errors="coerce").to_numpy(dtype=float)
    for i in np.flatnonzero(~(np.isfinite(x) & np.isfinite(y))):
        errors.append({"row": int(i), "message": f"{xc}={str(df[xc].iloc[i])!r}, {yc}={str(df[yc].iloc[i])!r}: "
                                                 f"expected two numbers"})
    return x, y, errors


@router.post("/batch", summary="Grid code per input point, in order (JSON, CSV or GeoParquet body)")
async def lookup_batch(
    request: Request,
    crs: CRS = Query("wgs84"),
    format: Literal["json", "csv"] = Query("json", description="Response format"),
    p: Principal = Depends(require("read")),
):
    """Body: ``{"points": [[lon, lat], ...]}`` (JSON), a CSV with lon/lat columns, or a GeoParquet file of points.

    Response: ``{"codes": [code or null, ...], "errors": [{"row": i, "message": ...}], "plan_ids": [...]}`` with
    one code per input row (0-based rows). Rows outside every grid get null and an error entry.
    """
    state = get_state(request)
    raw = await request.body()
    idx = state.holder.index
    codes, errors = await run_in_threadpool(_batch, idx, request.headers.get("content-type", ""), raw, crs,
                                            state.settings.batch_max_points)
    if format == "csv":
        out = "row,code\n" + "\n".join(f"{i},{c or ''}" for i, c in enumerate(codes))
        return Response(out, media_type="text/csv")
    return Response(orjson.dumps({"count": len(codes), "codes": codes, "errors": errors,
                                  "plan_ids": list(idx.plan_ids)}), media_type="application/json")


def _batch(idx: GridIndex, content_type: str, raw: bytes, crs: str, max_points: int):
    x, y, errors = _parse_points(content_type, raw, max_points)
    # writable copies: Arrow and pandas may hand out read-only views, and the CRS shift writes in place
    x, y = np.array(x, dtype=float), np.array(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (np.abs(x) <= 180) & (np.abs(y) <= 90)
    bad_range = np.flatnonzero(np.isfinite(x) & np.isfinite(y) & ~ok)
    for i in bad_range:
        errors.append({"row": int(i), "message": f"({x[i]}, {y[i]}) outside lon [-180, 180] / lat [-90, 90]"})
    if crs == "gcj02":
        x[ok], y[ok] = gcj02_to_wgs84(x[ok], y[ok])
    elif crs == "cgcs2000":
        pass  # CGCS2000 and WGS84 agree to centimetres; PROJ treats it as a pass-through
    res = np.full(len(x), -1, dtype=np.int64)
    res[ok] = idx.lookup_many(x[ok], y[ok])
    codes_arr = np.where(res >= 0, idx.codes[np.maximum(res, 0)] if len(idx) else None, None)
    outside = np.flatnonzero(ok & (res < 0))
    for i in outside[:10_000]:
        errors.append({"row": int(i), "message": "outside every grid"})
    if len(outside) > 10_000:
        errors.append({"row": None, "message": f"{len(outside) - 10_000} more rows outside every grid"})
    errors.sort(key=lambda e: (e["row"] is None, e["row"] or 0))
    return codes_arr.tolist(), errors
