"""``geo partition`` and ``geo plan …``: divide jurisdictions, compare and publish plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from geo.cli._app import app, console, fail as _fail, progress as _progress


plan_app = typer.Typer(help="Grid plans: list, diff, publish.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")


@app.command("partition")
def partition_cmd(
    jurisdiction: Optional[str] = typer.Argument(None, help="12-digit code of the jurisdiction to divide."),
    min_pop: int = typer.Option(1000, "--min", help="Fewest residents (or households) per grid."),
    max_pop: int = typer.Option(2000, "--max", help="Most residents (or households) per grid."),
    by: str = typer.Option("people", help="Size rule on 'people' or 'households'."),
    seed: int = typer.Option(0, help="Seed (the result is deterministic for a seed)."),
    population_dataset: Optional[str] = typer.Option(None, help="Population dataset when several are loaded."),
    streets_dataset: Optional[str] = typer.Option(None, help="Streets dataset when several are loaded."),
    no_streets: bool = typer.Option(False, "--no-streets", help="Ignore streets: population polygons are the blocks."),
    from_scratch: bool = typer.Option(False, "--from-scratch", help="Ignore the published plan (no stable re-draw)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the grids to this GeoPackage."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the quality report (JSON) here."),
    publish: bool = typer.Option(False, help="Publish the new plan at once."),
    override_unstaffed: bool = typer.Option(False, "--override-unstaffed",
                                            help="With --publish: publish although some grids have no chief."),
    reason: Optional[str] = typer.Option(None, help="With --override-unstaffed: why (required, audited)."),
    all_streets: bool = typer.Option(False, "--all-streets", help="Every street/town with population, in parallel."),
    level: str = typer.Option("street", help="With --all-streets: the level to divide (street or community)."),
    under: Optional[str] = typer.Option(None, help="With --all-streets: only those under this code."),
    workers: int = typer.Option(2, help="With --all-streets: Dask worker processes (local cluster)."),
    scheduler: Optional[str] = typer.Option(None, help="With --all-streets: address of a Dask scheduler."),
    street_classes: Optional[str] = typer.Option(
        None, "--street-classes",
        help="Comma-separated street classes (OSM highway) that bound blocks; default the vehicle classes "
             "motorway..living_street/unclassified and _link ramps. Other lines only guide cuts."),
    buildings: Optional[Path] = typer.Option(
        None, "--buildings", help="Building footprints (any vector file): no grid edge may cross one."),
) -> None:
    """Divide a jurisdiction into grids and store the result as a draft plan.

    The plan's report is an independent check of its polygons against the input (counts by location,
    buildings whole, grids in one piece); a plan that fails it is refused with the reason.
    """
    from geo.db.partitioning import PartitionInputError, jurisdictions_to_partition
    from geo.db.session import get_engine

    _check_publish_options(publish, override_unstaffed, reason, all_streets)
    opts = dict(min_pop=min_pop, max_pop=max_pop, by=by, seed=seed, population_dataset=population_dataset,
                streets_dataset=streets_dataset, use_streets=not no_streets, stable=not from_scratch)
    if street_classes is not None:
        classes = [c.strip() for c in street_classes.split(",") if c.strip()]
        if not classes:
            _fail("--street-classes needs at least one class, e.g. primary,secondary,residential", 2)
        opts["street_classes"] = classes
    if buildings is not None:
        opts["buildings"] = _read_buildings(buildings)
    if all_streets:
        if level not in ("street", "community", "district"):
            _fail("--level must be district, street or community", 2)
        codes = jurisdictions_to_partition(get_engine(), level, under)
        if not codes:
            _fail(f"no {level} with population loaded", 2)
        from geo.services.partition import partition_many

        results = partition_many(codes, opts, workers=workers, scheduler=scheduler)
        t = Table(title=f"{len(results)} jurisdictions")
        for col in ("jurisdiction", "plan_id", "grids", "in_range", "pp_mean", "seconds", "error"):
            t.add_column(col)
        for r in results:
            t.add_row(*[str(r.get(c, "")) for c in ("jurisdiction", "plan_id", "grids", "in_range", "pp_mean",
                                                      "seconds", "error")])
        console.print(t)
        if any(r.get("error") for r in results):
            raise typer.Exit(1)
        return
    if not jurisdiction:
        _fail("give a jurisdiction code, or --all-streets", 2)
    from geo.db.partitioning import run_partition
    from geo.db.session import cli_actor

    try:
        with _progress() as prog:
            task = prog.add_task("partition", total=100)

            def step(stage: str, frac: float) -> None:
                prog.update(task, description=stage, completed=int(frac * 100))

            plan_id, plan = run_partition(get_engine(), jurisdiction, actor=cli_actor(), progress=step, **opts)
    except PartitionInputError as exc:
        _fail(str(exc), 2)
    r = plan.report
    rng = r["range"]
    console.print(f"draft plan {plan_id}: {r['n_grids']} grids, {100 * rng['in_range_share']:.1f}% in "
                  f"[{min_pop}, {max_pop}] ({rng['out_of_range_unexplained']} out of range without a reason), "
                  f"Polsby-Popper mean {r['compactness']['polsby_popper_mean']:.3f}, coverage "
                  f"{100 * r['coverage']['covered_share']:.4f}%")
    console.print(f"verified from the polygons: {r['counts']['residents_counted_elsewhere']:.0f} residents counted "
                  f"elsewhere, {r['buildings']['split_between_grids']} buildings split, "
                  f"{r['pieces']['grids_in_pieces']} grids in pieces ({r['pieces']['n_islands']} islands)"
                  + (f", boundary on streets {100 * r['streets']['boundary_on_streets_share']:.1f}% "
                     f"(classes: {', '.join(r['streets'].get('classes') or ['all'])})" if "streets" in r else ""))
    if report:
        report.write_text(json.dumps(r, ensure_ascii=False, indent=2, default=str))
    if out:
        plan.grids.to_file(out, driver="GPKG", layer="grids")
        console.print(f"grids written to {out}")
    if publish:
        _publish(plan_id, override_unstaffed, reason)


def _check_publish_options(publish: bool, override_unstaffed: bool, reason: str | None, all_streets: bool) -> None:
    """The publish options of ``geo partition`` are those of ``geo plan publish``; refuse them before any work
    when they cannot apply."""
    if (override_unstaffed or reason is not None) and not publish:
        _fail("--override-unstaffed and --reason go with --publish", 2)
    if override_unstaffed and not (reason or "").strip():
        _fail("--override-unstaffed needs --reason '…' (why the grids without a chief may be published; audited)", 2)
    if publish and all_streets:
        _fail("--publish works on one jurisdiction; with --all-streets publish each draft with "
              "`geo plan publish PLAN`", 2)


def _read_buildings(path: Path):
    """Footprints from a vector file (polygons, with a CRS), or exit with the reason."""
    import geopandas as gpd

    if not path.exists():
        _fail(f"--buildings: {path} not found", 2)
    try:
        fp = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 — any reader error is the user's file
        _fail(f"--buildings: cannot read {path}: {exc}", 2)
    if fp.crs is None:
        _fail(f"--buildings: {path} has no CRS; expected a file with one (e.g. EPSG:4326)", 2)
    kinds = set(fp.geometry.geom_type.dropna())
    if not kinds or not kinds <= {"Polygon", "MultiPolygon"}:
        _fail(f"--buildings: {path} has {sorted(kinds) or 'no'} geometries; expected building polygons", 2)
    return fp


def _publish(plan_id: int, override_unstaffed: bool = False, reason: str | None = None) -> None:
    from geo.db.plans import PlanError
    from geo.db.staffing import StaffingRefused
    from geo.services.partition import publish

    try:
        res = publish(plan_id, override_unstaffed=override_unstaffed, reason=reason)
    except StaffingRefused as exc:
        _fail(f"{exc} (geo plan publish {plan_id} --override-unstaffed --reason '…')", 2)
    except PlanError as exc:
        _fail(str(exc), 2)
    console.print(f"plan {plan_id} published, in force from {res['effective_at']}"
                  + (f"; retires {res['retired']}" if res["retired"] else ""))


@plan_app.command("publish")
def plan_publish(plan_id: int,
                 override_unstaffed: bool = typer.Option(False, "--override-unstaffed",
                                                         help="publish although some grids have no chief"),
                 reason: Optional[str] = typer.Option(None, help="why (required with --override-unstaffed)")) -> None:
    """Publish a draft plan with its staff carried (the jurisdiction's published plan is retired, never deleted)."""
    _publish(plan_id, override_unstaffed, reason)


@plan_app.command("list")
def plan_list(jurisdiction: Optional[str] = typer.Argument(None)) -> None:
    """Plans (optionally of one jurisdiction) with status and quality."""
    from sqlalchemy import text

    from geo.db.session import get_engine

    with get_engine().connect() as conn:
        rows = conn.execute(text("""
            SELECT p.id, j.code, j.name, p.version, p.status, p.created_by, p.created_at,
                   (SELECT count(*) FROM grids g WHERE g.plan_id = p.id) AS grids,
                   p.quality->'range'->>'in_range_share' AS in_range
            FROM grid_plans p JOIN jurisdictions j ON j.id = p.jurisdiction_id
            WHERE CAST(:c AS text) IS NULL OR j.code = :c ORDER BY j.code, p.version
        """), {"c": jurisdiction}).all()
    t = Table(title="grid plans")
    for col in ("id", "jurisdiction", "version", "status", "grids", "in range", "by", "created"):
        t.add_column(col)
    for r in rows:
        t.add_row(str(r.id), f"{r.code} {r.name}", str(r.version), r.status, str(r.grids),
                  f"{float(r.in_range) * 100:.1f}%" if r.in_range else "", r.created_by, r.created_at.isoformat()[:19])
    console.print(t)


@plan_app.command("diff")
def plan_diff(a: int, b: int) -> None:
    """Compare two plans: grids added/removed/changed and residents whose grid changes."""
    from geo.db import plans
    from geo.db.session import get_engine

    try:
        d = plans.diff(get_engine(), a, b).as_dict()
    except plans.PlanError as exc:
        _fail(str(exc), 2)
    console.print(f"plan {a} → {b}: {len(d['added'])} added, {len(d['removed'])} removed, {len(d['changed'])} "
                  f"changed, {d['unchanged']} unchanged; residents moved {d['residents_moved']:,} of "
                  f"{d['residents_total']:,} ({100 * d['residents_moved_share']:.1f}%)")


