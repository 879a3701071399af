"""Load a data file into PostGIS through its load report (all-or-nothing), and the demo district's files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

DEMO_DATASET = "demo"


class LoadRejected(Exception):
    """Rows were rejected and ``skip_bad`` was not given: nothing was written.

    Attributes: ``report`` (the :class:`geo.io.checks.LoadReport`), ``rejects`` (path of the rejects file).
    """

    def __init__(self, report, rejects: Path | None, n_clean: int):
        self.report, self.rejects, self.n_clean = report, rejects, n_clean
        super().__init__(f"{report.n_rejected} of {report.rows_read} rows rejected; nothing was written. Fix the "
                         f"rows listed (or pass --skip-bad to load the {n_clean} valid rows and keep the rejects "
                         f"file).")


@dataclass
class LoadOutcome:
    """What a load did: the stored result, the report, where rejects went, and totals of the loaded rows."""

    result: object  # geo.db.loads.LoadResult
    report: object  # geo.io.checks.LoadReport
    rejects: Path | None
    people: int | None = None
    households: int | None = None


def jurisdiction_geom(engine: Engine, code: str):
    """(shapely geometry, "name (code)") of a loaded jurisdiction; raises LoadError when it is not loaded."""
    import shapely
    from sqlalchemy import text

    from geo.db.loads import LoadError

    with engine.connect() as conn:
        row = conn.execute(text("SELECT name, ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
                           {"c": code}).first()
    if row is None:
        raise LoadError(f"jurisdiction {code!r} not found; load boundaries first (geo load boundaries FILE)")
    return shapely.from_wkb(bytes(row[1])), f"{row[0]} ({code})"


def load_file(kind: str, file: Path, columns, *, crs: str | None = None, layer: str | None = None,
              x_col: str | None = None, y_col: str | None = None, dataset: str | None = None, replace: bool = False,
              skip_bad: bool = False, jurisdiction: str | None = None, level: str | None = None,
              actor: str | None = None, engine: Engine | None = None,
              on_report: Callable[[object], None] | None = None,
              progress: Callable[[int, int], None] | None = None) -> LoadOutcome:
    """Read, check and write one file (one transaction).

    Parameters
    ----------
    kind : ``population``, ``streets``, ``special-areas`` or ``boundaries``.
    file : the data file (GeoJSON, GPKG, SHP, Parquet, CSV, OSM PBF).
    columns : a :class:`geo.io.checks.ColumnMap` naming the file's columns.
    crs, layer, x_col, y_col : how to read it (see ``geo load --help``).
    dataset : dataset name (default: the file name); replace : replace a dataset of that name.
    skip_bad : load the valid rows even if some are rejected (the rejects file is kept).
    jurisdiction : 12-digit code; rows outside it are rejected.
    level : boundaries only — the level of every row.
    on_report : called with the report before anything is written (to show its problems).
    progress : ``progress(done, total)`` while writing.

    Returns
    -------
    LoadOutcome

    Raises
    ------
    LoadRejected, geo.io.readers.InputError, geo.crs.CRSError, geo.db.loads.LoadError
    """
    from geo.config import get_settings
    from geo.db.loads import write_boundaries, write_load
    from geo.db.session import cli_actor, get_engine
    from geo.io.checks import rejects_path, validate
    from geo.io.readers import read_table

    engine = engine or get_engine()
    actor = actor or cli_actor()
    juris_geom, juris_name = None, "the jurisdiction"
    if jurisdiction:
        juris_geom, juris_name = jurisdiction_geom(engine, jurisdiction)
    raw = read_table(file, layer=layer, crs=crs, x_col=x_col, y_col=y_col)
    clean, report = validate(raw, kind, columns, jurisdiction=juris_geom, jurisdiction_name=juris_name, level=level)
    if on_report:
        on_report(report)
    rejects = None
    if not report.ok:
        rejects = report.write_rejects(raw.frame, rejects_path(file, get_settings().data_path))
        if not skip_bad:
            raise LoadRejected(report, rejects, len(clean))
    name = dataset or file.name.split(".")[0]
    if kind == "boundaries":
        res = write_boundaries(engine, clean, report, source=str(file), actor=actor, replace=replace)
    else:
        res = write_load(engine, kind, clean, report, dataset=name, source=str(file), actor=actor, replace=replace,
                         progress=progress)
    out = LoadOutcome(res, report, rejects)
    if kind == "population":
        out.people = int(clean["people"].sum())
        if clean["households"].notna().any():
            out.households = int(clean["households"].sum())
    return out


def load_demo_files(files: dict[str, str], *, actor: str | None = None, engine: Engine | None = None) -> list:
    """Load the synthetic demo's layer files as ``geo load`` would (replacing an earlier demo).

    Parameters
    ----------
    files : layer name → path, as returned in ``geo.demo.write_demo(...)["files"]``.

    Returns
    -------
    list of LoadOutcome, in load order (boundary, subdistricts, communities, population, streets, special areas).
    """
    from geo.io.checks import ColumnMap

    common = dict(replace=True, actor=actor, engine=engine)
    out = []
    for layer in ("boundary", "subdistricts", "communities"):
        out.append(load_file("boundaries", Path(files[layer]), ColumnMap(
            code="code", name="name", level="level", urban="urban", parent="parent_code"), **common))
    out.append(load_file("population", Path(files["population"]), ColumnMap(
        id="id", people="people", households="households", building="building", name="address",
        address="address"),
        dataset=DEMO_DATASET, **common))
    out.append(load_file("streets", Path(files["streets"]), ColumnMap(id="id", name="name", klass="klass"),
                         dataset=DEMO_DATASET, **common))
    out.append(load_file("special-areas", Path(files["special_areas"]), ColumnMap(id="id", name="name", kind="kind"),
                         dataset=DEMO_DATASET, **common))
    return out
