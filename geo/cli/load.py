"""``geo load …`` and ``geo demo-data``: files into PostGIS through the load report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geo.cli._app import app, console, err, fail as _fail, progress as _progress
from geo.services.loading import DEMO_DATASET


load_app = typer.Typer(help="Load data files into PostGIS (one transaction per load).", no_args_is_help=True)
app.add_typer(load_app, name="load")


def _run_load(kind: str, file: Path, *, crs, layer, x_col, y_col, dataset, replace, skip_bad, jurisdiction,
              columns, level=None, report_json: Optional[Path] = None) -> None:
    """Thin wrapper over :func:`geo.services.loading.load_file`: show the report, the rejects, the result."""
    from geo.crs import CRSError
    from geo.db.cluster import ClusterError
    from geo.db.loads import LoadError
    from geo.io.readers import InputError
    from geo.services.loading import LoadRejected, load_file

    def show(report) -> None:
        if report_json:
            report_json.write_text(report.to_json())
        if report.problems:
            err.print(report.message(), highlight=False, soft_wrap=True)

    try:
        with _progress() as prog:
            t = prog.add_task(f"loading {file.name}", total=None)
            out = load_file(kind, file, columns, crs=crs, layer=layer, x_col=x_col, y_col=y_col, dataset=dataset,
                            replace=replace, skip_bad=skip_bad, jurisdiction=jurisdiction, level=level,
                            on_report=show, progress=lambda d, n: prog.update(t, completed=d, total=n))
    except LoadRejected as exc:
        if exc.rejects:
            err.print(f"rejected rows written to {exc.rejects}")
        _fail(str(exc), 1)
    except (InputError, CRSError, LoadError, ClusterError) as exc:
        _fail(str(exc), 2)
    if out.rejects:
        err.print(f"rejected rows written to {out.rejects}")
    res, report = out.result, out.report
    total = ""
    if out.people is not None:
        total = f", {out.people:,} people"
        if out.households is not None:
            total += f", {out.households:,} households"
    console.print(f"loaded {res.rows_loaded} {kind} rows as dataset {res.dataset!r} (load {res.load_id}){total}"
                  + (f"; {report.n_rejected} rejected" if report.n_rejected else ""))


CRS_HELP = "CRS of the coordinates: EPSG code (EPSG:4326, EPSG:4490 = CGCS2000) or gcj02. Overrides the file's label."
_common = dict(
    crs=typer.Option(None, "--crs", help=CRS_HELP),
    layer=typer.Option(None, help="Layer of a multi-layer file (GeoPackage; OSM PBF defaults to lines)."),
    x_col=typer.Option(None, "--x-col", help="CSV longitude/x column."),
    y_col=typer.Option(None, "--y-col", help="CSV latitude/y column."),
    dataset=typer.Option(None, help="Dataset name (default: the file name)."),
    replace=typer.Option(False, help="Replace a dataset of the same name."),
    skip_bad=typer.Option(False, "--skip-bad", help="Load the valid rows even if some are rejected (rejects file kept)."),
    jurisdiction=typer.Option(None, help="12-digit code: reject rows outside this jurisdiction."),
    report_json=typer.Option(None, "--report-json", help="Write the load report as JSON to this file."),
    id_col=typer.Option(None, "--id-col", help="Unique id column (duplicates are rejected)."),
    name_col=typer.Option(None, "--name-col", help="Name column."),
)


@load_app.command("population")
def load_population(
    file: Path,
    pop: Optional[str] = typer.Option(None, "--pop", help="Column with the number of people."),
    households: Optional[str] = typer.Option(None, "--households", help="Column with the number of households."),
    building: Optional[str] = typer.Option(None, "--building", help="Building id column (address points)."),
    address_col: Optional[str] = typer.Option(None, "--address-col",
                                              help="Standard-address text column (社区/小区/路/号/楼栋/单元), kept "
                                                   "for GET /v1/geocode; default: a column named address/地址."),
    crs: Optional[str] = _common["crs"], layer: Optional[str] = _common["layer"],
    x_col: Optional[str] = _common["x_col"], y_col: Optional[str] = _common["y_col"],
    dataset: Optional[str] = _common["dataset"], replace: bool = _common["replace"],
    skip_bad: bool = _common["skip_bad"], jurisdiction: Optional[str] = _common["jurisdiction"],
    report_json: Optional[Path] = _common["report_json"], id_col: Optional[str] = _common["id_col"],
    name_col: Optional[str] = _common["name_col"],
) -> None:
    """Census polygons or address points with people (and households)."""
    from geo.io.checks import ColumnMap

    cols = ColumnMap(id=id_col, people=pop, households=households, building=building, name=name_col,
                     address=address_col)
    _run_load("population", file, crs=crs, layer=layer, x_col=x_col, y_col=y_col, dataset=dataset, replace=replace,
              skip_bad=skip_bad, jurisdiction=jurisdiction, columns=cols, report_json=report_json)


@load_app.command("streets")
def load_streets(
    file: Path,
    class_col: Optional[str] = typer.Option(None, "--class-col", help="Road class column (default: highway/klass)."),
    crs: Optional[str] = _common["crs"], layer: Optional[str] = _common["layer"],
    x_col: Optional[str] = _common["x_col"], y_col: Optional[str] = _common["y_col"],
    dataset: Optional[str] = _common["dataset"], replace: bool = _common["replace"],
    skip_bad: bool = _common["skip_bad"], jurisdiction: Optional[str] = _common["jurisdiction"],
    report_json: Optional[Path] = _common["report_json"], id_col: Optional[str] = _common["id_col"],
    name_col: Optional[str] = _common["name_col"],
) -> None:
    """Street centerlines (GeoJSON/GPKG/SHP/Parquet, or the lines layer of an OSM .pbf)."""
    from geo.io.checks import ColumnMap

    cols = ColumnMap(id=id_col, name=name_col, klass=class_col)
    _run_load("streets", file, crs=crs, layer=layer, x_col=x_col, y_col=y_col, dataset=dataset, replace=replace,
              skip_bad=skip_bad, jurisdiction=jurisdiction, columns=cols, report_json=report_json)


@load_app.command("special-areas")
def load_special(
    file: Path,
    kind_col: Optional[str] = typer.Option(None, "--kind-col", help="Kind column (school, hospital, …)."),
    crs: Optional[str] = _common["crs"], layer: Optional[str] = _common["layer"],
    dataset: Optional[str] = _common["dataset"], replace: bool = _common["replace"],
    skip_bad: bool = _common["skip_bad"], jurisdiction: Optional[str] = _common["jurisdiction"],
    report_json: Optional[Path] = _common["report_json"], id_col: Optional[str] = _common["id_col"],
    name_col: Optional[str] = _common["name_col"],
) -> None:
    """Special units (schools, hospitals, industrial parks, markets) that get exclusive grids."""
    from geo.io.checks import ColumnMap

    cols = ColumnMap(id=id_col, name=name_col, kind=kind_col)
    _run_load("special-areas", file, crs=crs, layer=layer, x_col=None, y_col=None, dataset=dataset, replace=replace,
              skip_bad=skip_bad, jurisdiction=jurisdiction, columns=cols, report_json=report_json)


@load_app.command("boundaries")
def load_boundaries(
    file: Path,
    code_col: Optional[str] = typer.Option(None, "--code-col", help="12-digit code column (default: code/adcode)."),
    level: Optional[str] = typer.Option(None, help="Level of every row: city, district, street (town), community (village)."),
    level_col: Optional[str] = typer.Option(None, "--level-col", help="Column with the level."),
    parent_col: Optional[str] = typer.Option(None, "--parent-col", help="Column with the parent's code."),
    urban_col: Optional[str] = typer.Option(None, "--urban-col", help="Column with an urban (true) / rural flag."),
    crs: Optional[str] = _common["crs"], layer: Optional[str] = _common["layer"],
    replace: bool = _common["replace"], skip_bad: bool = _common["skip_bad"],
    report_json: Optional[Path] = _common["report_json"], name_col: Optional[str] = _common["name_col"],
) -> None:
    """Jurisdiction boundaries (district, street/town, community/village) with 12-digit codes."""
    from geo.io.checks import ColumnMap

    cols = ColumnMap(code=code_col, name=name_col, level=level_col, parent=parent_col, urban=urban_col)
    _run_load("boundaries", file, crs=crs, layer=layer, x_col=None, y_col=None, dataset=None, replace=replace,
              skip_bad=skip_bad, jurisdiction=None, columns=cols, level=level, report_json=report_json)


# --------------------------------------------------------------------------- demo data



@app.command("demo-data")
def demo_data(
    out: Optional[Path] = typer.Option(None, help="Directory for the files (default: <data dir>/demo)."),
    seed: int = typer.Option(42, help="Random seed (the district is deterministic for a seed)."),
    scale: float = typer.Option(1.0, help="1.0 ≈ 300,000 people; 0.1 for a quick look."),
    load: bool = typer.Option(True, help="Load the files into PostGIS with `geo load` (replacing a previous demo)."),
) -> None:
    """Generate the SYNTHETIC demo district (clearly labelled, not real data) and load it."""
    from geo.config import get_settings
    from geo.demo import write_demo

    directory = out or get_settings().data_path / "demo"
    info = write_demo(directory, seed=seed, scale=scale)
    t = info["totals"]
    console.print(f"synthetic demo district (seed {seed}, scale {scale}) written to {directory}: "
                  f"{t.get('people', 0):,} people in {t.get('buildings', 0):,} buildings — SYNTHETIC, not real data")
    if not load:
        return
    from geo.cli.db import summary
    from geo.services.loading import load_demo_files

    for out in load_demo_files(info["files"]):
        r = out.result
        console.print(f"loaded {r.rows_loaded} {r.kind} rows as dataset {r.dataset!r} (load {r.load_id})")

    summary()
