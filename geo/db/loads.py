"""Write validated tables into PostGIS: one transaction per load, all or nothing.

Rows go in with ``COPY`` (EWKB hex geometries), so a million address points
load in seconds. Every load records a ``loads`` row (who, when, source, CRS,
report) and an ``audit_log`` entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Engine, text

from geo.access import audit

from geo.io.checks import LoadReport, parent_code_of

TABLES = {"population": "population_units", "streets": "streets", "special-areas": "special_areas"}
COPY_COLUMNS = {
    "population": ["dataset", "source_id", "people", "households", "building", "address", "name", "props", "geom",
                   "load_id"],
    "streets": ["dataset", "source_id", "name", "klass", "props", "geom", "load_id"],
    "special-areas": ["dataset", "source_id", "name", "kind", "props", "geom", "load_id"],
}
CHUNK = 20_000


class LoadError(RuntimeError):
    """The load was refused (nothing was written)."""


@dataclass
class LoadResult:
    load_id: int
    kind: str
    dataset: str
    rows_loaded: int
    report: LoadReport


def _multi(geoms: np.ndarray, kind: str) -> np.ndarray:
    """Polygons → MultiPolygon, lines → MultiLineString (the column types); points stay."""
    out = geoms.copy()
    types = shapely.get_type_id(out)
    if kind in ("special-areas", "boundaries"):
        m = types == 3
        out[m] = [shapely.MultiPolygon([g]) for g in out[m]]
    elif kind == "streets":
        m = types == 1
        out[m] = [shapely.MultiLineString([g]) for g in out[m]]
    return out


def _ewkb_hex(geoms: np.ndarray) -> np.ndarray:
    return shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)


def _int_or_none(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else int(v)


def write_load(
    engine: Engine,
    kind: str,
    clean: gpd.GeoDataFrame,
    report: LoadReport,
    *,
    dataset: str,
    source: str,
    actor: str,
    replace: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """Write *clean* rows of *kind* in one transaction.

    Parameters
    ----------
    engine : sqlalchemy Engine
    kind : {"population", "streets", "special-areas"}
    clean : GeoDataFrame
        Output of :func:`geo.io.checks.validate` (EPSG:4326).
    dataset : str
        Name of the dataset; a second load of the same name needs ``replace``.
    actor : str
        Who loads (recorded in ``loads.created_by`` and the audit log).
    replace : bool
        Delete the dataset's previous rows in the same transaction.
    progress : callable(done, total), optional

    Raises
    ------
    LoadError
        The dataset exists and *replace* is false.
    """
    if kind == "boundaries":
        raise ValueError("use write_boundaries for boundaries")
    table = TABLES[kind]
    if clean.crs is None or clean.crs.to_epsg() != 4326:
        raise ValueError("clean frames must be in EPSG:4326")
    geoms = _ewkb_hex(_multi(np.asarray(clean.geometry.values, dtype=object), kind))
    with engine.begin() as conn:
        existing = conn.execute(text("SELECT id FROM loads WHERE kind = :k AND dataset = :d"),
                                {"k": kind, "d": dataset}).scalars().all()
        if existing and not replace:
            raise LoadError(
                f"dataset {dataset!r} ({kind}) is already loaded (load ids {existing}); pass --replace to "
                f"replace it or --dataset NAME to load it under another name"
            )
        if existing:
            conn.execute(text(f"DELETE FROM {table} WHERE dataset = :d"), {"d": dataset})
            conn.execute(text("DELETE FROM loads WHERE id = ANY(:ids)"), {"ids": existing})
        load_id = conn.execute(
            text("INSERT INTO loads (kind, dataset, source, source_crs, rows_read, rows_loaded, report, created_by) "
                 "VALUES (:k, :d, :s, :c, :r, :n, CAST(:rep AS jsonb), :a) RETURNING id"),
            {"k": kind, "d": dataset, "s": source, "c": report.crs, "r": report.rows_read, "n": len(clean),
             "rep": json.dumps(report.summary(), ensure_ascii=False), "a": actor},
        ).scalar_one()
        raw = conn.connection.driver_connection
        cols = COPY_COLUMNS[kind]
        with raw.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                rows = _rows(kind, clean, geoms, dataset, load_id)
                n = len(clean)
                for i, row in enumerate(rows, 1):
                    copy.write_row(row)
                    if progress and (i % CHUNK == 0 or i == n):
                        progress(i, n)
        audit.record(conn, actor, "load", table, load_id,
                     detail={"dataset": dataset, "rows": len(clean), "source": source, "replace": replace})
    return LoadResult(load_id=load_id, kind=kind, dataset=dataset, rows_loaded=len(clean), report=report)


def _text(values) -> list:
    """Text cells with missing values as None (pandas 3 stores None in a string column as NaN, which COPY would
    write as the text 'nan')."""
    return [None if v is None or (not isinstance(v, str) and pd.isna(v)) else v for v in values]


def _rows(kind: str, clean: gpd.GeoDataFrame, geoms: np.ndarray, dataset: str, load_id: int):
    """Yield COPY tuples column-wise (no per-row pandas access)."""
    n = len(clean)
    props = [json.dumps(p, ensure_ascii=False) for p in clean["props"]]
    sid, name = list(clean["source_id"]), _text(clean["name"])
    ds, lid = [dataset] * n, [load_id] * n
    if kind == "population":
        people = [int(v) for v in clean["people"]]
        hh = [_int_or_none(v) for v in clean["households"]]
        address = _text(clean["address"]) if "address" in clean else [None] * n
        return zip(ds, sid, people, hh, _text(clean["building"]), address, name, props, geoms, lid)
    extra = _text(clean["klass"] if kind == "streets" else clean["kind"])
    return zip(ds, sid, name, extra, props, geoms, lid)


def write_boundaries(
    engine: Engine,
    clean: gpd.GeoDataFrame,
    report: LoadReport,
    *,
    source: str,
    actor: str,
    replace: bool = False,
    dataset: str = "boundaries",
) -> LoadResult:
    """Insert (or with *replace*, update) jurisdictions, link parents by code and rebuild paths.

    Parents are taken from the ``parent_code`` column when present, else derived
    from the 12-digit code (community → its street/town, street → its district,
    district → its city) when that jurisdiction exists in the database or the file.
    """
    geoms = _ewkb_hex(_multi(np.asarray(clean.geometry.values, dtype=object), "boundaries"))
    with engine.begin() as conn:
        codes = list(clean["code"])
        existing = set(conn.execute(text("SELECT code FROM jurisdictions WHERE code = ANY(:c)"),
                                    {"c": codes}).scalars())
        if existing and not replace:
            raise LoadError(
                f"{len(existing)} jurisdiction codes already exist (e.g. {sorted(existing)[:3]}); pass --replace "
                f"to update their names and boundaries"
            )
        load_id = conn.execute(
            text("INSERT INTO loads (kind, dataset, source, source_crs, rows_read, rows_loaded, report, created_by) "
                 "VALUES ('boundaries', :d, :s, :c, :r, :n, CAST(:rep AS jsonb), :a) RETURNING id"),
            {"d": dataset, "s": source, "c": report.crs, "r": report.rows_read, "n": len(clean),
             "rep": json.dumps(report.summary(), ensure_ascii=False), "a": actor},
        ).scalar_one()
        for i in range(len(clean)):
            r = clean.iloc[i]
            conn.execute(
                text("INSERT INTO jurisdictions (code, name, level, urban, props, geom, load_id, created_by) "
                     "VALUES (:code, :name, :level, :urban, CAST(:props AS jsonb), "
                     "ST_GeomFromEWKB(decode(:g, 'hex')), :load, :a) "
                     "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level, "
                     "urban = EXCLUDED.urban, props = EXCLUDED.props, geom = EXCLUDED.geom, load_id = EXCLUDED.load_id"),
                {"code": r["code"], "name": r["name"], "level": r["level"], "urban": bool(r["urban"]),
                 "props": json.dumps(r["props"], ensure_ascii=False), "g": geoms[i], "load": load_id, "a": actor},
            )
        # parents: explicit column first, else implied by the code
        for i in range(len(clean)):
            r = clean.iloc[i]
            parent = r["parent_code"] or parent_code_of(r["code"], r["level"])
            if parent and parent != r["code"]:
                conn.execute(
                    text("UPDATE jurisdictions c SET parent_id = p.id FROM jurisdictions p "
                         "WHERE c.code = :c AND p.code = :p"),
                    {"c": r["code"], "p": parent},
                )
        # children loaded earlier whose parent arrives now
        conn.execute(text("""
            UPDATE jurisdictions c SET parent_id = p.id FROM jurisdictions p
            WHERE c.parent_id IS NULL AND p.code = ANY(:codes) AND p.code <> c.code AND (
                (c.level = 'community' AND p.code = substr(c.code, 1, 9) || '000') OR
                (c.level = 'street' AND p.code = substr(c.code, 1, 6) || '000000') OR
                (c.level = 'district' AND p.code = substr(c.code, 1, 4) || '00000000'))
        """), {"codes": codes})
        rebuild_paths(conn)
        audit.record(conn, actor, "load", "jurisdictions", load_id,
                     detail={"codes": codes[:50], "rows": len(clean), "source": source, "replace": replace})
    return LoadResult(load_id=load_id, kind="boundaries", dataset=dataset, rows_loaded=len(clean), report=report)


def rebuild_paths(conn) -> None:
    """Recompute every jurisdiction's ``path`` ('/root/…/self/') from parent links."""
    conn.execute(text("""
        WITH RECURSIVE t(id, path) AS (
            SELECT id, '/' || id || '/' FROM jurisdictions WHERE parent_id IS NULL
            UNION ALL
            SELECT j.id, t.path || j.id || '/' FROM jurisdictions j JOIN t ON j.parent_id = t.id
        )
        UPDATE jurisdictions j SET path = t.path FROM t WHERE j.id = t.id AND j.path IS DISTINCT FROM t.path
    """))


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows per table of the schema (for summaries)."""
    names = ["jurisdictions", "population_units", "streets", "special_areas", "grid_plans", "grids", "loads",
             "audit_log"]
    with engine.connect() as conn:
        have = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
        return {n: conn.execute(text(f"SELECT count(*) FROM {n}")).scalar_one() for n in names if n in have}
