"""Grid files in and out: existing grids (现有网格) read from GeoPackage / Shapefile / GeoJSON, and plans
written in the fields a provincial platform expects.

Reading (:func:`read_grid_file`): the attribute encoding of a Shapefile comes from its ``.cpg``; without
one the DBF bytes are tried as UTF-8, then GBK (the two encodings Chinese GIS software writes). The CRS is
the caller's (``wgs84`` / ``cgcs2000`` / ``gcj02`` / EPSG) or the file's; coordinates come back in WGS84.
Nothing is dropped: every row is kept with its problems listed (:class:`GridFile`).

Writing (:func:`write_grid_file`): ``gpkg`` / ``shp`` (zipped, GBK with a ``.cpg``) / ``geojson`` / ``csv``
(WKT geometry) in WGS84, CGCS2000 or GCJ-02. Shapefile field names are limited to 10 bytes, so the
Shapefile uses the short names of :data:`SHP_NAMES`; :func:`read_grid_file` knows both.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import CRSError, from_wgs84, is_gcj02, parse_crs, to_wgs84
from geo.io.readers import InputError

#: export fields (GeoPackage, GeoJSON, CSV) → internal column
FIELDS = {"网格编码": "code", "网格名称": "name", "网格类型": "kind_zh", "所属社区编码": "community_code",
          "所属社区名称": "community_name", "所属街道": "street_name", "人口": "people", "户数": "households",
          "面积m2": "area_m2", "网格长": "chief", "网格员": "workers"}
#: the same fields with Shapefile-safe names (≤ 10 bytes in GBK)
SHP_NAMES = {"网格编码": "网格编码", "网格名称": "网格名称", "网格类型": "网格类型", "所属社区编码": "社区编码",
             "所属社区名称": "社区名称", "所属街道": "所属街道", "人口": "人口", "户数": "户数", "面积m2": "面积m2",
             "网格长": "网格长", "网格员": "网格员"}
KIND_ZH = {"standard": "基础", "exclusive": "专属", "rural": "农村"}
KIND_FROM = {"基础": "standard", "基础网格": "standard", "标准": "standard", "标准网格": "standard",
             "standard": "standard", "专属": "exclusive", "专属网格": "exclusive", "exclusive": "exclusive",
             "农村": "rural", "农村网格": "rural", "rural": "rural"}
FORMATS = ("gpkg", "shp", "geojson", "csv")
EXPORT_CRS = {"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490", "gcj02": "gcj02"}
CODE_RE = re.compile(r"^\d{15}$")

#: column roles → names looked for when the caller names none (lower-cased)
CANDIDATES = {
    "code": ("网格编码", "code", "grid_code", "wgbm", "编码", "网格代码"),
    "name": ("网格名称", "name", "grid_name", "wgmc", "名称"),
    "kind": ("网格类型", "kind", "type", "wglx", "类型"),
    "chief": ("网格长", "chief", "wgz"),
    "workers": ("网格员", "workers", "wgy"),
    "community": ("所属社区编码", "社区编码", "community", "community_code", "sqbm"),
}


@dataclass
class GridColumns:
    """Which file columns hold what (None: found by name, see :data:`CANDIDATES`)."""

    code: str | None = None
    name: str | None = None
    kind: str | None = None
    chief: str | None = None
    workers: str | None = None
    community: str | None = None


@dataclass
class GridFile:
    """A grid file read into WGS84.

    Attributes
    ----------
    frame : GeoDataFrame
        ``row`` (1-based file row), ``code`` (as written, stripped), ``name``, ``kind`` (standard /
        exclusive / rural or None), ``chief``, ``workers``, ``community``, geometry (EPSG:4326, made valid).
    problems : list of dict
        ``{"row", "field", "problem", "value"}`` for what could not be read as expected.
    encoding : str or None
        Attribute encoding used (Shapefiles).
    source_crs : str
        The CRS the coordinates were in.
    columns : dict
        Role → column actually used.
    """

    frame: gpd.GeoDataFrame
    problems: list[dict] = field(default_factory=list)
    encoding: str | None = None
    source_crs: str = ""
    columns: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def _shp_members(path: Path) -> tuple[str | None, bytes | None, bytes | None]:
    """(shp path for GDAL, .cpg bytes, .dbf bytes) of a plain or zipped Shapefile."""
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
                shp = [n for n in names if n.lower().endswith(".shp")]
                if not shp:
                    return None, None, None
                stem = shp[0][:-4]
                get = {n.lower(): n for n in names}
                cpg = z.read(get[(stem + ".cpg").lower()]) if (stem + ".cpg").lower() in get else None
                dbf = z.read(get[(stem + ".dbf").lower()]) if (stem + ".dbf").lower() in get else None
                return f"/vsizip/{path.resolve()}/{shp[0]}", cpg, dbf
        except zipfile.BadZipFile as exc:
            raise InputError(f"{path}: not a readable zip file ({exc})") from None
    cpg_p, dbf_p = path.with_suffix(".cpg"), path.with_suffix(".dbf")
    return (str(path), cpg_p.read_bytes() if cpg_p.exists() else None,
            dbf_p.read_bytes() if dbf_p.exists() else None)


def detect_dbf_encoding(dbf: bytes) -> str:
    """UTF-8 when the DBF's records decode as UTF-8, else GBK (raises InputError when neither does)."""
    if len(dbf) < 32:
        return "UTF-8"
    import codecs

    header_len = int.from_bytes(dbf[8:10], "little")
    names = [dbf[k:k + 11].split(b"\0")[0] for k in range(32, header_len - 1, 32) if dbf[k] != 0x0D]
    body = dbf[header_len:].rstrip(b"\x1a")

    def ok(enc: str) -> bool:
        try:
            body.decode(enc)
            for n in names:  # writers cut long names at 10 bytes, even inside a character: allow a cut tail
                codecs.getincrementaldecoder(enc)().decode(n, final=False)
            return True
        except UnicodeDecodeError:
            return False

    if ok("utf-8"):
        return "UTF-8"
    if ok("gbk"):
        return "GBK"
    raise InputError("the Shapefile has no .cpg and its attributes are neither UTF-8 nor GBK; "
                     "add a .cpg naming the encoding")


def _fix_cut_names(dbf: bytes, enc: str) -> bytes | None:
    """The DBF with field names that were cut inside a character trimmed to whole characters (None: none)."""
    header_len = int.from_bytes(dbf[8:10], "little")
    out = bytearray(dbf)
    changed = False
    for k in range(32, header_len - 1, 32):
        if dbf[k] == 0x0D:
            break
        raw = dbf[k:k + 11].split(b"\0")[0]
        try:
            raw.decode(enc)
        except UnicodeDecodeError:
            good = raw
            while good:
                good = good[:-1]
                try:
                    good.decode(enc)
                    break
                except UnicodeDecodeError:
                    continue
            out[k:k + 11] = good.ljust(11, b"\0")
            changed = True
    return bytes(out) if changed else None


def _readable_copy(path: Path, target: str, dbf: bytes | None, enc: str | None, tmp: Path) -> str:
    """*target*, or a copy in *tmp* whose DBF field names are whole characters (GDAL/pyogrio refuse cut ones)."""
    if dbf is None or enc is None:
        return target
    fixed = _fix_cut_names(dbf, enc)
    if fixed is None:
        return target
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as z:
            z.extractall(tmp)
        shp = next(tmp.rglob("*.shp"))
    else:
        import shutil

        for f in path.parent.glob(path.stem + ".*"):
            shutil.copy(f, tmp / f.name)
        shp = tmp / path.name
    next(shp.parent.glob(shp.stem + ".[dD][bB][fF]")).write_bytes(fixed)
    return str(shp)


def _cpg_encoding(raw: bytes) -> str:
    name = raw.decode("ascii", errors="replace").strip().upper()
    return {"936": "GBK", "CP936": "GBK", "GB2312": "GBK", "65001": "UTF-8", "UTF8": "UTF-8"}.get(name, name)


def _pick(columns, wanted: str | None, role: str, source: str) -> str | None:
    if wanted:
        if wanted not in columns:
            raise InputError(f"{source}: column {wanted!r} (--{role}-col) not found; columns are {list(columns)}")
        return wanted
    lower = {str(c).strip().lower(): c for c in columns}
    for c in CANDIDATES[role]:
        if c.lower() in lower:
            return lower[c.lower()]
    for c in columns:  # a name cut at 10 bytes by a Shapefile writer (网格编码 in UTF-8 → 网格编 + a broken byte)
        cut = "".join(ch for ch in str(c) if ch.isprintable() and ch != "\ufffd").strip()
        if len(cut) >= 3 and any(k.startswith(cut) for k in CANDIDATES[role]):
            return c
    short = {v: k for k, v in SHP_NAMES.items()}
    for c in columns:  # Shapefile short names of our own export
        if short.get(str(c)) in CANDIDATES[role]:
            return c
    return None


def _text(v) -> str | None:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return None
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        v = int(v)
    s = str(v).strip()
    return s or None


def _read_csv(p: Path) -> gpd.GeoDataFrame:
    df = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    wkt = next((c for c in df.columns if str(c).lower() in ("wkt", "geometry", "geom")), None)
    if wkt is None:
        raise InputError(f"{p}: a grid CSV needs a wkt column with the polygons; columns are {list(df.columns)}")
    geoms = np.full(len(df), None, dtype=object)
    for i, v in enumerate(df[wkt]):
        try:
            geoms[i] = shapely.from_wkt(v) if isinstance(v, str) else None
        except shapely.errors.GEOSException:
            raise InputError(f"{p}: row {i + 1}: column {wkt!r} is not WKT ({str(v)[:40]!r})") from None
    return gpd.GeoDataFrame(df.drop(columns=[wkt]), geometry=gpd.GeoSeries(geoms), crs=None)


def read_grid_file(path: str | Path, *, crs: Any = None, layer: str | None = None,
                   columns: GridColumns | None = None) -> GridFile:
    """Read a file of existing grids.

    Parameters
    ----------
    path : str or Path
        ``.gpkg``, ``.shp``, ``.zip`` (zipped Shapefile), ``.geojson``/``.json``.
    crs : optional
        ``wgs84``, ``cgcs2000``, ``gcj02`` or an EPSG code: the CRS the coordinates are really in (GCJ-02
        files are labelled EPSG:4326, so it must be given for them). Default: the file's own.
    layer : str, optional
        GeoPackage layer.
    columns : GridColumns, optional
        Column names; by default found by name (网格编码/code …).

    Returns
    -------
    GridFile

    Raises
    ------
    InputError
        Missing/unreadable file, unknown format, no code column, a named column missing.
    geo.crs.CRSError
        No CRS known or an unknown one.
    """
    import pyogrio

    p = Path(path)
    cols = columns or GridColumns()
    if not p.exists():
        raise InputError(f"{p}: file not found")
    suffix = p.suffix.lower()
    if suffix not in (".gpkg", ".shp", ".zip", ".geojson", ".json", ".csv"):
        raise InputError(f"{p}: unsupported grid file {suffix!r}; expected GeoPackage (.gpkg), zipped Shapefile "
                         f"(.zip), Shapefile (.shp), GeoJSON (.geojson) or CSV with a wkt column")
    import tempfile

    encoding = None
    target: Any = p
    with tempfile.TemporaryDirectory() as tmp:
        if suffix in (".shp", ".zip"):
            target, cpg, dbf = _shp_members(p)
            if target is None:
                raise InputError(f"{p}: the zip holds no .shp file")
            if cpg:
                encoding = _cpg_encoding(cpg)
            elif dbf is not None:
                encoding = detect_dbf_encoding(dbf)
            target = _readable_copy(p, target, dbf, encoding, Path(tmp))
        try:
            frame = _read_csv(p) if suffix == ".csv" else pyogrio.read_dataframe(target, layer=layer,
                                                                                 encoding=encoding)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 — GDAL's message names the problem
            raise InputError(f"{p}: cannot read: {exc}") from None
    if crs is None and frame.crs is None:
        raise CRSError(f"{p}: the file carries no CRS; pass --crs wgs84, cgcs2000 or gcj02")
    real = parse_crs(crs) if crs is not None else frame.crs
    used = {role: _pick(frame.columns.drop(frame.geometry.name), getattr(cols, role), role, str(p))
            for role in CANDIDATES}
    if used["code"] is None:
        raise InputError(f"{p}: no grid code column (looked for {', '.join(CANDIDATES['code'])}); name it with "
                         f"--code-col. Columns are {list(frame.columns.drop(frame.geometry.name))}")
    problems: list[dict] = []
    geoms = np.asarray(frame.geometry.values, dtype=object)
    out_geoms = np.full(len(frame), None, dtype=object)
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            problems.append({"row": i + 1, "field": "geometry", "problem": "empty geometry", "value": None})
            continue
        if not g.is_valid:
            problems.append({"row": i + 1, "field": "geometry", "problem": "invalid geometry (made valid)",
                             "value": shapely.is_valid_reason(g)})
            g = shapely.make_valid(g)
        poly = shapely.union_all([x for x in getattr(g, "geoms", [g]) if x.geom_type in ("Polygon", "MultiPolygon")]
                                 ) if g.geom_type == "GeometryCollection" else g
        if poly.is_empty or poly.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append({"row": i + 1, "field": "geometry", "problem": f"not a polygon ({g.geom_type})",
                             "value": None})
            continue
        out_geoms[i] = poly
    kinds = []
    for i, v in enumerate(frame[used["kind"]] if used["kind"] else [None] * len(frame)):
        s = _text(v)
        k = KIND_FROM.get(s) if s else None
        if s and k is None:
            problems.append({"row": i + 1, "field": used["kind"], "problem": "unknown grid type "
                             "(expected 基础/专属/农村 or standard/exclusive/rural)", "value": s})
        kinds.append(k)

    def col(role):
        return [_text(v) for v in frame[used[role]]] if used[role] else [None] * len(frame)

    out = gpd.GeoDataFrame({"row": np.arange(1, len(frame) + 1), "code": col("code"), "name": col("name"),
                            "kind": kinds, "chief": col("chief"), "workers": col("workers"),
                            "community": col("community")},
                           geometry=gpd.GeoSeries(out_geoms), crs=None)
    ok = out.geometry.notna().to_numpy()
    wgs = out.copy()
    if ok.any():
        conv = to_wgs84(gpd.GeoDataFrame(geometry=out.geometry[ok].reset_index(drop=True),
                                         crs=None if is_gcj02(real) else real),
                        "gcj02" if is_gcj02(real) else None)
        g2 = np.full(len(out), None, dtype=object)
        g2[ok] = np.asarray(conv.geometry.values, dtype=object)
        wgs = wgs.set_geometry(gpd.GeoSeries(g2), crs=4326)
    else:
        wgs = wgs.set_crs(4326)
    src = real if isinstance(real, str) else (real.to_string() if hasattr(real, "to_string") else str(real))
    return GridFile(frame=wgs, problems=problems, encoding=encoding, source_crs=src,
                    columns={k: v for k, v in used.items() if v})


# --------------------------------------------------------------------------- writing


def export_frame(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The export fields (Chinese names, :data:`FIELDS`) of a frame with the internal columns."""
    g = grids.copy()
    g["kind_zh"] = [KIND_ZH.get(k, k) for k in g["kind"]]
    out = gpd.GeoDataFrame({zh: g[col].to_numpy() for zh, col in FIELDS.items()}, geometry=g.geometry.values,
                           crs=grids.crs)
    for c in ("人口", "户数"):
        out[c] = out[c].astype("int64")
    out["面积m2"] = out["面积m2"].astype(float).round(1)
    return out


def write_grid_file(grids: gpd.GeoDataFrame, path: str | Path, fmt: str, crs: str = "wgs84") -> Path:
    """Write a plan's grids (internal columns, EPSG:4326) as *fmt* in *crs*; returns the file written.

    Parameters
    ----------
    grids : GeoDataFrame
        ``code``, ``name``, ``kind``, ``community_code``, ``community_name``, ``street_name``, ``people``,
        ``households``, ``area_m2``, ``chief``, ``workers`` and geometry in EPSG:4326.
    path : str or Path
        Output file; a Shapefile is written as a zip (``.zip``) holding ``.shp/.shx/.dbf/.prj/.cpg``.
    fmt : {"gpkg", "shp", "geojson", "csv"}
    crs : {"wgs84", "cgcs2000", "gcj02"}
        GCJ-02 files are labelled EPSG:4326 (there is no EPSG code for it) — import them with ``--crs gcj02``.
    """
    import tempfile

    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if crs not in EXPORT_CRS:
        raise CRSError(f"unknown export CRS {crs!r}; expected one of {', '.join(EXPORT_CRS)}")
    out = export_frame(grids)
    out = from_wgs84(out, EXPORT_CRS[crs])
    path = Path(path)
    if fmt == "csv":
        df = pd.DataFrame(out.drop(columns=out.geometry.name))
        df["wkt"] = shapely.to_wkt(np.asarray(out.geometry.values), rounding_precision=-1)
        df.to_csv(path, index=False, encoding="utf-8-sig")
        return path
    if fmt == "geojson":
        out.to_file(path, driver="GeoJSON", engine="pyogrio", COORDINATE_PRECISION=15, WRITE_NAME=False)
        return path
    if fmt == "gpkg":
        out.to_file(path, driver="GPKG", engine="pyogrio", layer="grids")
        return path
    shp = out.rename(columns=SHP_NAMES)
    try:
        for c in shp.columns.drop(shp.geometry.name):
            shp[c].astype(str).str.encode("gbk")
    except UnicodeEncodeError as exc:
        raise InputError(f"a value cannot be written in GBK for the Shapefile ({exc}); export GeoPackage instead"
                         ) from None
    with tempfile.TemporaryDirectory() as d:
        stem = path.stem
        shp.to_file(Path(d) / f"{stem}.shp", driver="ESRI Shapefile", engine="pyogrio", encoding="GBK")
        (Path(d) / f"{stem}.cpg").write_text("GBK")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(Path(d).iterdir()):
                z.write(f, f.name)
        path.write_bytes(buf.getvalue())
    return path
