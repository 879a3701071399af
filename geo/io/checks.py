"""Validate a raw table into clean, typed rows in EPSG:4326, with a load report.

Nothing is dropped silently. Each problem names the row (1-based, in file
order), the field and what was expected. Rows with a problem are *rejected*
(listed in the report and written to a rejects file); geometries that are
merely invalid are *repaired* with ``make_valid`` and counted. The caller
decides whether a load with rejects may proceed (``--skip-bad``) — by default
it may not.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import WGS84, check_fits, is_gcj02, to_wgs84
from geo.io.readers import InputError, RawTable

KINDS = ("population", "streets", "special-areas", "boundaries")
EXPECTED_TYPES = {
    "population": ({"Point", "Polygon", "MultiPolygon"}, "Point or Polygon"),
    "streets": ({"LineString", "MultiLineString"}, "LineString"),
    "special-areas": ({"Polygon", "MultiPolygon"}, "Polygon"),
    "boundaries": ({"Polygon", "MultiPolygon"}, "Polygon"),
}
#: Problems that only warn (the row is kept).
WARNINGS = {"repaired_geometry", "rounded_value"}
MAX_EXAMPLES = 5


@dataclass
class Problem:
    code: str
    row: int  # 1-based row in file order
    field: str | None
    message: str

    def as_dict(self) -> dict:
        return {"code": self.code, "row": self.row, "field": self.field, "message": self.message}


@dataclass
class ColumnMap:
    """Which input columns hold which attribute (``None``: absent or default)."""

    id: str | None = None
    people: str | None = None
    households: str | None = None
    name: str | None = None
    code: str | None = None
    building: str | None = None
    address: str | None = None  # 标准地址 text of an address point (population)
    klass: str | None = None
    kind: str | None = None
    level: str | None = None
    urban: str | None = None
    parent: str | None = None


@dataclass
class LoadReport:
    """What validation found. ``problems`` holds every problem; the report shows the first few per code."""

    source: str
    kind: str
    rows_read: int
    crs: str
    problems: list[Problem] = field(default_factory=list)
    #: Added to a row number to get the file's line number (1 for a CSV header), or None.
    line_offset: int | None = None

    def add(self, code: str, rows, field_: str | None, message) -> None:
        """Record *code* for each row index (0-based) in *rows*; *message* may be a callable(i)."""
        for i in np.asarray(rows, dtype=int).ravel():
            msg = message(int(i)) if callable(message) else message
            self.problems.append(Problem(code, int(i) + 1, field_, msg))

    @property
    def rejected_rows(self) -> set[int]:
        """0-based indices of rejected rows."""
        return {p.row - 1 for p in self.problems if p.code not in WARNINGS}

    @property
    def counts(self) -> dict[str, int]:
        c = Counter()
        seen: set[tuple[str, int]] = set()
        for p in self.problems:
            if (p.code, p.row) not in seen:
                seen.add((p.code, p.row))
                c[p.code] += 1
        return dict(sorted(c.items()))

    @property
    def n_rejected(self) -> int:
        return len(self.rejected_rows)

    @property
    def ok(self) -> bool:
        return self.n_rejected == 0

    def examples(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for p in self.problems:
            lst = out.setdefault(p.code, [])
            if len(lst) < MAX_EXAMPLES:
                where = f"row {p.row}" + (f" (line {p.row + self.line_offset})" if self.line_offset else "")
                where += f", field {p.field!r}" if p.field else ""
                lst.append(f"{where}: {p.message}")
        return out

    def summary(self) -> dict:
        return {
            "source": self.source,
            "kind": self.kind,
            "crs": self.crs,
            "rows_read": self.rows_read,
            "rows_rejected": self.n_rejected,
            "rows_valid": self.rows_read - self.n_rejected,
            "problems": self.counts,
            "examples": self.examples(),
        }

    def to_json(self) -> str:
        return json.dumps(self.summary(), ensure_ascii=False, indent=2)

    def message(self) -> str:
        """Multi-line human summary, first examples per problem."""
        lines = [f"{self.source}: {self.rows_read} rows read, {self.n_rejected} rejected"]
        for code, n in self.counts.items():
            kind = "warning" if code in WARNINGS else "rejected"
            lines.append(f"  {code}: {n} rows ({kind})")
            for ex in self.examples()[code]:
                lines.append(f"    {ex}")
        return "\n".join(lines)

    def write_rejects(self, raw: gpd.GeoDataFrame, path: Path) -> Path | None:
        """Write rejected rows (original attributes + WKT + problem) to *path* (CSV)."""
        if self.ok:
            return None
        by_row: dict[int, list[Problem]] = {}
        for p in self.problems:
            if p.code not in WARNINGS:
                by_row.setdefault(p.row, []).append(p)
        rows = sorted(by_row)
        idx = [r - 1 for r in rows]
        sub = pd.DataFrame(raw.drop(columns=raw.geometry.name)).iloc[idx].copy()
        sub.insert(0, "row", rows)
        sub.insert(1, "problem", ["; ".join(p.code for p in by_row[r]) for r in rows])
        sub.insert(2, "detail", ["; ".join(p.message for p in by_row[r]) for r in rows])
        geoms = raw.geometry.iloc[idx]
        sub["wkt"] = [g.wkt if g is not None else "" for g in geoms]
        path.parent.mkdir(parents=True, exist_ok=True)
        sub.to_csv(path, index=False)
        return path


# --------------------------------------------------------------------------- helpers


def _require(frame: pd.DataFrame, col: str | None, what: str, source: str) -> None:
    if col is not None and col not in frame.columns:
        raise InputError(
            f"{source}: column {col!r} for {what} not found; columns are "
            f"{[c for c in frame.columns if c != frame.geometry.name]}"
        )


#: Largest count (people, households) one row may carry: more than any one unit has, well below the database's
#: integer range, so an overflowing value is a rejected row and never a crash.
MAX_COUNT = 10_000_000


def _numbers(report: LoadReport, frame: pd.DataFrame, col: str, *, required: bool) -> np.ndarray:
    """Validate a count column: whole numbers ≥ 0. Returns float array (NaN where missing)."""
    raw = frame[col]
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    present = raw.notna().to_numpy()
    bad_text = present & np.isnan(num)
    report.add("not_a_number", np.flatnonzero(bad_text), col,
               lambda i: f"{raw.iloc[i]!r} is not a number; expected a whole number >= 0")
    if required:
        report.add("missing_value", np.flatnonzero(~present), col, "missing (empty/NaN); expected a whole number >= 0")
    neg = np.isfinite(num) & (num < 0)
    report.add("negative_value", np.flatnonzero(neg), col, lambda i: f"{num[i]:g} is negative; expected >= 0")
    huge = np.isfinite(num) & (num > MAX_COUNT)
    report.add("value_too_large", np.flatnonzero(huge), col,
               lambda i: f"{num[i]:.0f} exceeds {MAX_COUNT:,}; expected the count of one unit")
    frac = np.isfinite(num) & (num >= 0) & (num <= MAX_COUNT) & (np.abs(num - np.round(num)) > 1e-9)
    report.add("rounded_value", np.flatnonzero(frac), col, lambda i: f"{num[i]:g} is not whole; rounded to {round(num[i])}")
    return np.round(num)


def _strings(frame: pd.DataFrame, col: str | None) -> np.ndarray:
    if col is None:
        return np.full(len(frame), None, dtype=object)
    s = frame[col]
    out = s.astype(object).to_numpy()
    # pd.isna per value: with pandas 3 string columns, where(notna, None) gives NaN back, which became 'nan'
    return np.array([None if v is None or (not isinstance(v, str) and pd.isna(v)) else
                     (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)) for v in out], dtype=object)


def _props(frame: pd.DataFrame, used: set[str]) -> list[dict]:
    rest = [c for c in frame.columns if c not in used and c != frame.geometry.name]
    if not rest:
        return [{} for _ in range(len(frame))]
    sub = pd.DataFrame(frame[rest])
    return json.loads(sub.to_json(orient="records", force_ascii=False, date_format="iso"))


def check_geometry(report: LoadReport, raw: RawTable, kind: str) -> np.ndarray:
    """Empty/None, wrong type, coordinates out of range or swapped, invalid (repaired).

    Returns the geometry array (input CRS) with repairs applied; rejected rows keep theirs.
    """
    g = np.asarray(raw.frame.geometry.values, dtype=object)
    missing = np.array([x is None for x in g])
    empty = missing.copy()
    empty[~missing] = shapely.is_empty(g[~missing])
    if raw.xy_columns:
        xc, yc = raw.xy_columns
        cols = raw.frame[[xc, yc]]
        report.add("empty_geometry", np.flatnonzero(empty), f"{xc}/{yc}",
                   lambda i: f"no coordinates: {xc}={cols.iloc[i, 0]!r}, {yc}={cols.iloc[i, 1]!r}; expected two numbers")
    else:
        report.add("empty_geometry", np.flatnonzero(empty), "geometry", "geometry is empty or missing")

    allowed, label = EXPECTED_TYPES[kind]
    types = np.array([x.geom_type if x is not None else "" for x in g])
    wrong = ~empty & ~np.isin(types, list(allowed))
    report.add("wrong_geometry_type", np.flatnonzero(wrong), "geometry",
               lambda i: f"geometry is {types[i]}; expected {label} for {kind}")

    usable = ~empty & ~wrong
    geographic = is_gcj02(raw.crs) or getattr(raw.crs, "is_geographic", False)
    if geographic and usable.any():
        b = shapely.bounds(g[usable])
        idx = np.flatnonzero(usable)
        xs_ok = (b[:, 0] >= -180) & (b[:, 2] <= 180)
        ys_ok = (b[:, 1] >= -90) & (b[:, 3] <= 90)
        swapped_world = ~ys_ok & (b[:, 0] >= -90) & (b[:, 2] <= 90) & (b[:, 1] >= -180) & (b[:, 3] <= 180)
        # Chinese data: lat in [0.8, 55.8] and lon in [72, 137.9] can't be confused with each other.
        china_swapped = (b[:, 0] >= 0.8) & (b[:, 2] <= 55.9) & (b[:, 1] >= 72.0) & (b[:, 3] <= 137.9)
        china_crs = is_gcj02(raw.crs) or getattr(raw.crs, "to_epsg", lambda: None)() == 4490
        swapped = swapped_world | (china_crs & china_swapped)
        report.add("swapped_lat_lon", idx[swapped], "geometry",
                   lambda i: "coordinates look like (lat, lon) instead of (lon, lat): "
                   f"first point {_first_xy(g[i])}; swap the columns (--x-col/--y-col)")
        out = ~(xs_ok & ys_ok) & ~swapped
        report.add("coordinates_out_of_range", idx[out], "geometry",
                   lambda i: f"coordinates {_first_xy(g[i])} outside lon [-180, 180] / lat [-90, 90]")

    valid = np.ones(len(g), dtype=bool)
    valid[usable] = shapely.is_valid(g[usable])
    bad = np.flatnonzero(usable & ~valid)
    if len(bad):
        reasons = shapely.is_valid_reason(g[bad])
        report.add("repaired_geometry", bad, "geometry",
                   lambda i: f"invalid geometry ({reasons[np.searchsorted(bad, i)]}) repaired with make_valid")
        fixed = shapely.make_valid(g[bad], method="structure", keep_collapsed=False)
        if kind != "streets":
            fixed = np.array([_polygonal(f) if types[i] != "Point" else f for f, i in zip(fixed, bad)], dtype=object)
        g = g.copy()
        g[bad] = fixed
        now_empty = shapely.is_empty(fixed)
        report.add("empty_geometry", bad[now_empty], "geometry", "geometry collapsed to nothing when repaired")
    return g


def _polygonal(geom):
    """Keep only the polygonal part of a (repaired) geometry."""
    if geom is None or geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _first_xy(geom) -> str:
    try:
        x, y = shapely.get_coordinates(geom)[0]
        return f"({x:.6f}, {y:.6f})"
    except (IndexError, TypeError):
        return "(?)"


def check_within(report: LoadReport, geoms_wgs84: np.ndarray, usable: np.ndarray, jurisdiction, name: str,
                 raw_geoms: np.ndarray | None = None) -> None:
    """Reject rows that do not touch the jurisdiction; points whose swap falls inside are 'swapped'."""
    if jurisdiction is None:
        return
    shapely.prepare(jurisdiction)
    idx = np.flatnonzero(usable)
    inside = shapely.intersects(jurisdiction, geoms_wgs84[idx])
    outside = idx[~inside]
    if not len(outside):
        return
    # A point outside whose (y, x) lies inside was entered with its coordinates swapped.
    swapped = np.zeros(len(outside), dtype=bool)
    pts = np.array([g is not None and g.geom_type == "Point" for g in geoms_wgs84[outside]])
    if pts.any():
        xy = shapely.get_coordinates(geoms_wgs84[outside][pts])
        swapped[pts] = shapely.intersects(jurisdiction, shapely.points(xy[:, 1], xy[:, 0]))
    report.add("swapped_lat_lon", outside[swapped], "geometry",
               lambda i: f"point {_first_xy(geoms_wgs84[i])} is outside {name} but its (lat, lon) swap is inside; "
               "swap the coordinate columns")
    report.add("outside_jurisdiction", outside[~swapped], "geometry",
               lambda i: f"geometry at {_first_xy(geoms_wgs84[i])} is outside {name}")


def _duplicates(report: LoadReport, values: np.ndarray, col: str) -> None:
    s = pd.Series(values)
    present = s.notna()
    dup = s.duplicated(keep="first") & present
    if dup.any():
        first = {}
        for i, v in s[present].items():
            first.setdefault(v, i)
        report.add("duplicate_id", np.flatnonzero(dup.to_numpy()), col,
                   lambda i: f"{values[i]!r} duplicates row {first[values[i]] + 1}")


# --------------------------------------------------------------------------- entry point


def validate(
    raw: RawTable,
    kind: str,
    columns: ColumnMap | None = None,
    *,
    jurisdiction=None,
    jurisdiction_name: str = "the jurisdiction",
    level: str | None = None,
) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Validate *raw* for a load of *kind* and convert it to EPSG:4326.

    Parameters
    ----------
    raw : RawTable
        From :func:`geo.io.readers.read_table`.
    kind : {"population", "streets", "special-areas", "boundaries"}
    columns : ColumnMap
        Column mapping; defaults are looked up by common names.
    jurisdiction : shapely geometry in EPSG:4326, optional
        Rows that do not intersect it are rejected as ``outside_jurisdiction``.
    level : str, optional
        For boundaries: the level of every row when no level column is mapped.

    Returns
    -------
    clean : GeoDataFrame (EPSG:4326)
        One row per *input* row that was not rejected, with ``row`` (1-based
        input row) and the standard columns of *kind* (see :data:`OUTPUT_COLUMNS`).
    report : LoadReport
    """
    if kind not in KINDS:
        raise ValueError(f"unknown load kind {kind!r}; expected one of {KINDS}")
    cols = columns or ColumnMap()
    frame = raw.frame
    crs_label = "gcj02" if is_gcj02(raw.crs) else raw.crs.to_string()
    report = LoadReport(source=raw.source, kind=kind, rows_read=len(frame), crs=crs_label,
                        line_offset=1 if raw.xy_columns else None)
    _default_columns(cols, frame, kind)
    for attr in ("id", "people", "households", "name", "code", "building", "address", "klass", "kind", "level", "urban",
                 "parent"):
        _require(frame, getattr(cols, attr), attr, raw.source)

    geoms = check_geometry(report, raw, kind)
    usable = np.ones(len(frame), dtype=bool)
    usable[list(report.rejected_rows)] = False

    check_fits(raw.crs, geoms[usable], raw.source)  # the declared CRS must fit the coordinates
    # CRS conversion of the usable rows (GCJ-02 handled by geo.crs)
    wgs = np.full(len(frame), None, dtype=object)
    if usable.any():
        tmp = gpd.GeoDataFrame(geometry=gpd.GeoSeries(geoms[usable]), crs=None)
        conv = to_wgs84(tmp, raw.crs)
        wgs[usable] = conv.geometry.values
    check_within(report, wgs, usable, jurisdiction, jurisdiction_name)

    out = gpd.GeoDataFrame({"row": np.arange(1, len(frame) + 1)}, geometry=gpd.GeoSeries(wgs), crs=WGS84)
    used = {c for c in vars(cols).values() if c}
    ids = _strings(frame, cols.id)
    if cols.id:
        missing_id = np.array([v is None for v in ids])
        report.add("missing_value", np.flatnonzero(missing_id), cols.id, "missing id")
        _duplicates(report, ids, cols.id)
    out["source_id"] = np.where(pd.isna(ids), [str(i) for i in range(1, len(frame) + 1)], ids) if cols.id else \
        [str(i) for i in range(1, len(frame) + 1)]
    out["name"] = _strings(frame, cols.name)

    if kind == "population":
        if not cols.people:
            raise InputError(f"{raw.source}: no population column; name it with --pop COLUMN")
        out["people"] = _numbers(report, frame, cols.people, required=True)
        out["households"] = _numbers(report, frame, cols.households, required=False) if cols.households else np.nan
        out["building"] = _strings(frame, cols.building)
        out["address"] = _strings(frame, cols.address)
    elif kind == "streets":
        out["klass"] = _strings(frame, cols.klass)
    elif kind == "special-areas":
        out["kind"] = _strings(frame, cols.kind)
        missing_name = np.array([v is None for v in out["name"]])
        report.add("missing_value", np.flatnonzero(missing_name), cols.name or "name",
                   "special area without a name; expected the unit's name (--name-col)")
    elif kind == "boundaries":
        _boundary_columns(report, frame, cols, out, level)

    out["props"] = _props(frame, used)
    rejected = sorted(report.rejected_rows)
    clean = out.drop(index=rejected).reset_index(drop=True)
    return clean, report


OUTPUT_COLUMNS = {
    "population": ["row", "source_id", "people", "households", "building", "address", "name", "props", "geometry"],
    "streets": ["row", "source_id", "name", "klass", "props", "geometry"],
    "special-areas": ["row", "source_id", "name", "kind", "props", "geometry"],
    "boundaries": ["row", "code", "name", "level", "urban", "parent_code", "props", "geometry"],
}

_DEFAULTS = {
    "name": ("name", "名称", "NAME"),
    "code": ("code", "adcode", "编码", "区划代码"),
    "building": ("building", "building_id", "楼栋"),
    "address": ("address", "地址", "标准地址"),
    "households": ("households", "hh", "户数"),
    "klass": ("klass", "highway", "class", "fclass", "type"),
    "kind": ("kind", "type", "category"),
    "level": ("level",),
    "urban": ("urban",),
    "parent": ("parent_code", "parent"),
}


def _default_columns(cols: ColumnMap, frame: pd.DataFrame, kind: str) -> None:
    """Fill unmapped columns from common names (only the ones that exist)."""
    present = set(frame.columns)
    for attr, names in _DEFAULTS.items():
        if getattr(cols, attr) is None:
            for n in names:
                if n in present:
                    setattr(cols, attr, n)
                    break
    if kind == "population" and cols.people is None:
        for n in ("people", "population", "pop", "人口"):
            if n in present:
                cols.people = n
                break


LEVELS = ("city", "district", "street", "community")
_LEVEL_ALIASES = {"town": "street", "village": "community", "county": "district",
                  "市": "city", "地级市": "city", "区": "district", "县": "district", "区县": "district",
                  "街道": "street", "镇": "street", "乡": "street", "乡镇": "street",
                  "社区": "community", "村": "community"}


def _boundary_columns(report: LoadReport, frame: pd.DataFrame, cols: ColumnMap, out: gpd.GeoDataFrame,
                      level: str | None) -> None:
    if not cols.code:
        raise InputError(f"{report.source}: boundaries need a 12-digit code column (--code-col)")
    codes = np.array([normalise_code(c) for c in _strings(frame, cols.code)], dtype=object)
    bad = np.array([not (c and len(c) == 12 and c.isdigit()) for c in codes])
    report.add("bad_code", np.flatnonzero(bad), cols.code,
               lambda i: f"{codes[i]!r} is not a 12-digit 统计用区划代码 (6 county + 3 town + 3 community digits)")
    _duplicates(report, codes, cols.code)
    out["code"] = codes
    missing_name = np.array([v is None for v in out["name"]])
    report.add("missing_value", np.flatnonzero(missing_name), cols.name or "name", "missing name")
    if level:  # an explicit --level wins over a level column found by name
        raw_levels = np.full(len(frame), level, dtype=object)
    elif cols.level:
        raw_levels = _strings(frame, cols.level)
    else:
        raw_levels = np.array([_level_from_code(c) for c in codes], dtype=object)
    levels = np.array([_LEVEL_ALIASES.get(v, v) if v else v for v in raw_levels], dtype=object)
    badl = np.array([v not in LEVELS for v in levels])
    report.add("bad_level", np.flatnonzero(badl), cols.level or "level",
               lambda i: f"{raw_levels[i]!r} is not a level; expected one of {LEVELS} (or town/village)")
    out["level"] = levels
    if cols.urban:
        u = frame[cols.urban].astype(str).str.lower().isin(["1", "true", "t", "yes", "y", "urban", "城镇"])
        out["urban"] = u.to_numpy()
    else:
        out["urban"] = [not (str(v).lower() in ("town", "village", "镇", "乡", "乡镇", "村")) for v in raw_levels]
    out["parent_code"] = _strings(frame, cols.parent) if cols.parent else None


def normalise_code(code: str | None) -> str | None:
    """Pad 6-digit county (adcode) and 9-digit town codes to the 12-digit form; strip blanks."""
    if code is None:
        return None
    c = code.strip()
    if c.isdigit() and len(c) in (6, 9):
        return c.ljust(12, "0")
    return c


def _level_from_code(code: str | None) -> str | None:
    """Infer the level from trailing zeros of a 12-digit code."""
    if not code or len(code) != 12 or not code.isdigit():
        return None
    if code[9:] != "000":
        return "community"
    if code[6:9] != "000":
        return "street"
    if code[4:6] != "00":
        return "district"
    return "city"


def parent_code_of(code: str, level: str) -> str | None:
    """The code of the parent level implied by a 12-digit code (None for a city)."""
    if level == "community":
        return code[:9] + "000"
    if level == "street":
        return code[:6] + "000000"
    if level == "district":
        return code[:4] + "00000000"
    return None


def rejects_path(source: Path, data_dir: Path) -> Path:
    """Where to write the rejects file: beside the input, or under the data dir when that is read-only."""
    candidate = source.with_name(source.name + ".rejects.csv")
    parent = candidate.parent
    # A directory without write bits is read-only input (e.g. ../shared/data), even for root.
    if not (parent.stat().st_mode & 0o222) or not os.access(parent, os.W_OK):
        return data_dir / "rejects" / candidate.name
    try:
        probe = candidate.parent / f".geo-write-test-{np.random.randint(1 << 30)}"
        probe.touch()
        probe.unlink()
        return candidate
    except OSError:
        return data_dir / "rejects" / candidate.name


def as_clean_frame(clean: gpd.GeoDataFrame, kind: str) -> gpd.GeoDataFrame:
    """Order columns the standard way for *kind*."""
    return clean[OUTPUT_COLUMNS[kind]]
