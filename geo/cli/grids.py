"""``geo load grids FILE --jurisdiction CODE`` (existing grids → an imported plan, with its validation
report) and ``geo plan export PLAN`` / ``geo plan print PLAN`` (files and the printed 网格图)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from geo.cli._app import console, err, fail as _fail
from geo.cli.load import load_app
from geo.cli.partition import plan_app


@load_app.command("grids")
def load_grids(
    file: Path = typer.Argument(..., help="GeoPackage, zipped Shapefile (.zip), Shapefile or GeoJSON of grids"),
    jurisdiction: str = typer.Option(..., "--jurisdiction", "-j", help="12-digit code of the street/town"),
    crs: Optional[str] = typer.Option(None, help="wgs84, cgcs2000, gcj02 or EPSG:xxxx (default: the file's)"),
    layer: Optional[str] = typer.Option(None, help="GeoPackage layer"),
    code_col: Optional[str] = typer.Option(None, help="column of the 15-digit grid code (default 网格编码/code)"),
    name_col: Optional[str] = typer.Option(None, help="column of the grid name (default 网格名称/name)"),
    kind_col: Optional[str] = typer.Option(None, help="column of the grid type 基础/专属/农村 (default 网格类型)"),
    chief_col: Optional[str] = typer.Option(None, help="column of the chief's name (default 网格长)"),
    workers_col: Optional[str] = typer.Option(None, help="column of the workers' names (default 网格员)"),
    min_pop: int = typer.Option(1000, help="lower end of the population range the report checks"),
    max_pop: int = typer.Option(2000, help="upper end of the population range"),
    repair_tol: float = typer.Option(500.0, "--repair-tol", help="repair gaps/overlaps up to this many m²"),
    no_repair: bool = typer.Option(False, "--no-repair", help="report only; store the grids as drawn"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and report; store nothing"),
    report: Optional[Path] = typer.Option(None, help="write the full report (JSON, with geometries) here"),
) -> None:
    """Import existing grids as a draft plan of kind 'imported' (publish it to make it the baseline)."""
    from geo.crs import CRSError
    from geo.db.grid_import import GridImportError, import_grids
    from geo.db.session import cli_actor, get_engine
    from geo.io.grid_files import GridColumns, read_grid_file
    from geo.io.readers import InputError

    try:
        gf = read_grid_file(file, crs=crs, layer=layer, columns=GridColumns(code_col, name_col, kind_col, chief_col,
                                                                             workers_col))
        res = import_grids(get_engine(), jurisdiction, gf, actor=cli_actor(), min_pop=min_pop, max_pop=max_pop,
                           repair_tol_m2=repair_tol, repair=not no_repair, dry_run=dry_run, source=file.name)
    except GridImportError as exc:
        for p in exc.problems[:50]:
            err.print(f"  row {p.get('row')}: {p.get('field', '')} {p.get('problem', p.get('action', ''))}"
                      f"{' (' + str(p['value']) + ')' if p.get('value') else ''}", highlight=False)
        _fail(f"{file}: {exc}", 2)
    except (InputError, CRSError) as exc:
        _fail(str(exc), 2)
    r = res.report
    if report:
        report.write_text(json.dumps(r, ensure_ascii=False, indent=1, default=str))
    s = r["summary"]
    console.print(f"{s['grids']} grids read from {file.name} ({r['encoding'] or 'utf-8'}, {r['source_crs']}); "
                  f"{s['people']:,} residents")
    for label, key in (("gaps", "gaps"), ("overlaps", "overlaps")):
        for it in r[key]:
            who = ", ".join(g["code"] or f"row {g['row']}" for g in it.get("grids", []))
            console.print(f"  {label[:-1]} {it['m2']:,.1f} m², {it['residents']} residents"
                          f"{' between ' + who if who else ''}: {it.get('repair', 'not repaired (above tolerance)')}")
    for it in r["crossing_community"]:
        console.print(f"  grid {it['code']} (row {it['row']}) crosses communities: "
                      + ", ".join(f"{c['code']} {c['m2']:,.0f} m²" for c in it["communities"]))
    for it in r["out_of_range"]:
        console.print(f"  grid {it['code']} {it['name']}: {it['people']} residents ({it['reason']})")
    for it in r["codes"]:
        console.print(f"  row {it['row']} code {it['code']!r}: {it['problem']}"
                      + (f" → {it['new_code']}" if it.get("new_code") else ""))
    for it in r["outside"]:
        console.print(f"  row {it['row']} code {it['code']!r}: {it['outside_m2']:,.0f} m² outside — {it['action']}")
    for it in r["repairs"]:
        console.print(f"  repair {it['kind']}: {it['m2']:,.1f} m², {it['residents']} residents → {it['to']}")
    console.print(f"after repair: gaps {s['gap_m2_after']:,.1f} m², overlaps {s['overlap_m2_after']:,.1f} m², "
                  f"{s['out_of_range']} grids out of [{min_pop}, {max_pop}]")
    if res.plan_id:
        console.print(f"imported as draft plan {res.plan_id} (kind imported); publish it with "
                      f"`geo plan publish {res.plan_id}` to make it the baseline of the stable re-draw")


@plan_app.command("export")
def plan_export(
    plan_id: int = typer.Argument(...),
    fmt: str = typer.Option("gpkg", "--format", "-f", help="gpkg, shp (zipped, GBK + .cpg), geojson or csv"),
    crs: str = typer.Option("wgs84", help="wgs84, cgcs2000 or gcj02"),
    out: Path = typer.Option(..., "--out", "-o", help="output file"),
) -> None:
    """Write a plan's grids with 网格编码, 网格名称, 网格类型, 所属社区, 人口, 户数, 面积, 网格长, 网格员."""
    from geo.crs import CRSError
    from geo.db.export import ExportError, plan_frame
    from geo.db.session import get_engine
    from geo.io.grid_files import write_grid_file
    from geo.io.readers import InputError

    try:
        frame, _ = plan_frame(get_engine(), plan_id)
        path = write_grid_file(frame, out, fmt, crs)
    except (ExportError, InputError, CRSError) as exc:
        _fail(str(exc), 2)
    console.print(f"plan {plan_id}: {len(frame)} grids written to {path} ({fmt}, {crs})")


@plan_app.command("print")
def plan_print(
    plan_id: int = typer.Argument(...),
    community: str = typer.Option(..., "--community", "-c", help="12-digit community code"),
    out: Path = typer.Option(..., "--out", "-o", help="output PDF"),
) -> None:
    """The printable 网格图 of one community (PDF, A3 landscape)."""
    from geo.db.export import ExportError
    from geo.db.session import get_engine
    from geo.db.wanggetu import community_map_pdf

    try:
        out.write_bytes(community_map_pdf(get_engine(), plan_id, community))
    except (ExportError, ValueError) as exc:
        _fail(str(exc), 2)
    console.print(f"网格图 of {community} (plan {plan_id}) written to {out}")
