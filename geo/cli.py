"""The ``geo`` command line.

``geo db up|down|status|url|migrate``, ``geo load boundaries|population|streets|special-areas FILE``,
``geo demo-data``; later stages add partition, plan, serve, dashboard and user commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="geo — grid division (网格化管理): load data, partition grids, serve the API.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="The database: embedded PostGIS cluster and migrations.", no_args_is_help=True)
load_app = typer.Typer(help="Load data files into PostGIS (one transaction per load).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(load_app, name="load")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(msg: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# --------------------------------------------------------------------------- db


@db_app.command("up")
def db_up(migrate: bool = typer.Option(True, help="Apply migrations after starting.")) -> None:
    """Create (first time) and start the embedded PostGIS cluster; with DATABASE_URL, just check it."""
    from geo.config import get_settings
    from geo.db.cluster import Cluster, ClusterError

    s = get_settings()
    try:
        if s.database_url:
            console.print("DATABASE_URL is set: using that database, no embedded cluster")
        else:
            info = Cluster(s).up()
            what = "created and started" if info["created"] else ("started" if info["started"] else "already running")
            console.print(f"embedded PostGIS {what}: {Cluster(s).status().describe()}")
        if migrate:
            _migrate()
    except ClusterError as exc:
        _fail(str(exc), 2)


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster (data is kept)."""
    from geo.db.cluster import Cluster, ClusterError

    try:
        stopped = Cluster().down()
    except ClusterError as exc:
        _fail(str(exc), 2)
    console.print("stopped" if stopped else "not running")


@db_app.command("status")
def db_status() -> None:
    """Show whether the embedded cluster runs, its port and data dir."""
    from geo.config import get_settings
    from geo.db.cluster import Cluster

    s = get_settings()
    if s.database_url:
        console.print("DATABASE_URL is set: external database in use")
        return
    st = Cluster(s).status()
    console.print(st.describe())
    raise typer.Exit(0 if st.running else 3)


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in effect (contains the generated password)."""
    from geo.db.cluster import ClusterError, database_url

    try:
        print(database_url())
    except ClusterError as exc:
        _fail(str(exc), 2)


def _migrate(revision: str = "head") -> None:
    from geo.db import migrate

    migrate.upgrade(revision=revision)
    console.print(f"schema at revision {migrate.current_revision()}")


@db_app.command("migrate")
def db_migrate(revision: str = typer.Argument("head"), down: bool = typer.Option(False, help="Downgrade to REVISION.")) -> None:
    """Apply (or with --down revert) Alembic migrations."""
    from geo.db import migrate

    if down:
        migrate.downgrade(revision=revision)
        console.print(f"schema at revision {migrate.current_revision()}")
    else:
        _migrate(revision)


@db_app.command("backup")
def db_backup(file: Path) -> None:
    """Dump the whole database (plans, events, audit, everything) with pg_dump."""
    from geo.db.cluster import ClusterError, database_url
    from geo.db.ops import backup

    try:
        backup(database_url(), file)
    except ClusterError as exc:
        _fail(str(exc), 2)
    console.print(f"backup written to {file} ({file.stat().st_size:,} bytes)")


@db_app.command("restore")
def db_restore(file: Path, force: bool = typer.Option(False, help="Replace a database that is not empty.")) -> None:
    """Restore a backup into an empty database, in one transaction."""
    from geo.db.cluster import ClusterError, database_url
    from geo.db.ops import restore
    from geo.db.session import get_engine

    try:
        restore(database_url(), file, force=force, engine=get_engine())
    except ClusterError as exc:
        _fail(str(exc), 2)
    console.print(f"restored {file}")


@app.command("doctor")
def doctor_cmd() -> None:
    """Check PostgreSQL/PostGIS, migrations, indexes, published plans, users, secrets; say what to fix."""
    from geo.config import get_settings
    from geo.db.cluster import ClusterError
    from geo.db.ops import doctor
    from geo.db.session import get_engine

    try:
        checks = doctor(get_engine(), get_settings())
    except ClusterError as exc:
        _fail(str(exc), 2)
    t = Table(title="geo doctor")
    for c in ("check", "status", "detail", "fix"):
        t.add_column(c)
    colour = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c in checks:
        t.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", c.detail, c.fix if c.status != "ok" else "")
    console.print(t)
    raise typer.Exit(1 if any(c.status == "fail" for c in checks) else 0)


# --------------------------------------------------------------------------- load


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True, disable=not err.is_terminal)


def _run_load(kind: str, file: Path, *, crs, layer, x_col, y_col, dataset, replace, skip_bad, jurisdiction,
              columns, level=None, report_json: Optional[Path] = None) -> None:
    from geo.config import get_settings
    from geo.crs import CRSError
    from geo.db.cluster import ClusterError
    from geo.db.loads import LoadError, write_boundaries, write_load
    from geo.db.session import cli_actor, get_engine
    from geo.io.checks import rejects_path, validate
    from geo.io.readers import InputError, read_table

    settings = get_settings()
    try:
        engine = get_engine()
        juris_geom, juris_name = None, "the jurisdiction"
        if jurisdiction:
            juris_geom, juris_name = _jurisdiction_geom(engine, jurisdiction)
        with _progress() as prog:
            t = prog.add_task(f"reading {file.name}", total=None)
            raw = read_table(file, layer=layer, crs=crs, x_col=x_col, y_col=y_col)
            prog.update(t, description=f"checking {len(raw.frame)} rows", total=len(raw.frame), completed=0)
            clean, report = validate(raw, kind, columns, jurisdiction=juris_geom, jurisdiction_name=juris_name,
                                     level=level)
            prog.update(t, completed=len(raw.frame))
        if report_json:
            report_json.write_text(report.to_json())
        if report.problems:
            err.print(report.message(), highlight=False, soft_wrap=True)
        if not report.ok:
            path = report.write_rejects(raw.frame, rejects_path(file, settings.data_path))
            err.print(f"rejected rows written to {path}")
            if not skip_bad:
                _fail(f"{report.n_rejected} of {report.rows_read} rows rejected; nothing was written. Fix the rows "
                      f"listed above (or pass --skip-bad to load the {len(clean)} valid rows and keep the rejects "
                      f"file).", 1)
        name = dataset or file.name.split(".")[0]
        with _progress() as prog:
            t = prog.add_task(f"writing {len(clean)} rows", total=len(clean))
            if kind == "boundaries":
                res = write_boundaries(engine, clean, report, source=str(file), actor=cli_actor(), replace=replace)
            else:
                res = write_load(engine, kind, clean, report, dataset=name, source=str(file), actor=cli_actor(),
                                 replace=replace, progress=lambda d, n: prog.update(t, completed=d))
    except (InputError, CRSError, LoadError, ClusterError) as exc:
        _fail(str(exc), 2)
    total = ""
    if kind == "population":
        total = f", {int(clean['people'].sum()):,} people"
        if clean["households"].notna().any():
            total += f", {int(clean['households'].sum()):,} households"
    console.print(f"loaded {res.rows_loaded} {kind} rows as dataset {res.dataset!r} (load {res.load_id}){total}"
                  + (f"; {report.n_rejected} rejected" if report.n_rejected else ""))


def _jurisdiction_geom(engine, code: str):
    import shapely
    from sqlalchemy import text

    with engine.connect() as conn:
        row = conn.execute(text("SELECT name, ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
                           {"c": code}).first()
    if row is None:
        _fail(f"jurisdiction {code!r} not found; load boundaries first (geo load boundaries FILE)", 2)
    return shapely.from_wkb(bytes(row[1])), f"{row[0]} ({code})"


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
    crs: Optional[str] = _common["crs"], layer: Optional[str] = _common["layer"],
    x_col: Optional[str] = _common["x_col"], y_col: Optional[str] = _common["y_col"],
    dataset: Optional[str] = _common["dataset"], replace: bool = _common["replace"],
    skip_bad: bool = _common["skip_bad"], jurisdiction: Optional[str] = _common["jurisdiction"],
    report_json: Optional[Path] = _common["report_json"], id_col: Optional[str] = _common["id_col"],
    name_col: Optional[str] = _common["name_col"],
) -> None:
    """Census polygons or address points with people (and households)."""
    from geo.io.checks import ColumnMap

    cols = ColumnMap(id=id_col, people=pop, households=households, building=building, name=name_col)
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

DEMO_DATASET = "demo"


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
    load_demo_files(info["files"])
    summary()


def load_demo_files(files: dict[str, str]) -> None:
    """Load the demo's layer files exactly as a user would with `geo load` (replacing an earlier demo)."""
    from geo.io.checks import ColumnMap

    common = dict(crs=None, layer=None, x_col=None, y_col=None, skip_bad=False, jurisdiction=None,
                  report_json=None)
    for layer in ("boundary", "subdistricts", "communities"):
        _run_load("boundaries", Path(files[layer]), dataset=None, replace=True,
                  columns=ColumnMap(code="code", name="name", level="level", urban="urban", parent="parent_code"),
                  **common)
    _run_load("population", Path(files["population"]), dataset=DEMO_DATASET, replace=True,
              columns=ColumnMap(id="building", people="people", households="households", building="building",
                                name="address"), **common)
    _run_load("streets", Path(files["streets"]), dataset=DEMO_DATASET, replace=True,
              columns=ColumnMap(id="id", name="name", klass="klass"), **common)
    _run_load("special-areas", Path(files["special_areas"]), dataset=DEMO_DATASET, replace=True,
              columns=ColumnMap(id="id", name="name", kind="kind"), **common)


# --------------------------------------------------------------------------- partition and plans

plan_app = typer.Typer(help="Grid plans: list, diff, publish.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")


def _partition_one(code: str, opts: dict, url: str | None = None) -> dict:
    """Partition one jurisdiction (also runs inside Dask workers); returns a summary dict."""
    from geo.db.partitioning import run_partition
    from geo.db.session import cli_actor, get_engine

    plan_id, plan = run_partition(get_engine(url), code, actor=opts.pop("actor", None) or cli_actor(), **opts)
    r = plan.report
    return {"jurisdiction": code, "plan_id": plan_id, "grids": r["n_grids"],
            "in_range": round(r["range"]["in_range_share"], 4), "pp_mean": round(r["compactness"]["polsby_popper_mean"], 3),
            "seconds": round(r["runtime_s"], 2)}


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
    all_streets: bool = typer.Option(False, "--all-streets", help="Every street/town with population, in parallel."),
    level: str = typer.Option("street", help="With --all-streets: the level to divide (street or community)."),
    under: Optional[str] = typer.Option(None, help="With --all-streets: only those under this code."),
    workers: int = typer.Option(2, help="With --all-streets: Dask worker processes (local cluster)."),
    scheduler: Optional[str] = typer.Option(None, help="With --all-streets: address of a Dask scheduler."),
) -> None:
    """Divide a jurisdiction into grids and store the result as a draft plan."""
    from geo.db.partitioning import PartitionInputError, jurisdictions_to_partition
    from geo.db.session import get_engine

    opts = dict(min_pop=min_pop, max_pop=max_pop, by=by, seed=seed, population_dataset=population_dataset,
                streets_dataset=streets_dataset, use_streets=not no_streets, stable=not from_scratch)
    if all_streets:
        if level not in ("street", "community", "district"):
            _fail("--level must be district, street or community", 2)
        codes = jurisdictions_to_partition(get_engine(), level, under)
        if not codes:
            _fail(f"no {level} with population loaded", 2)
        results = _partition_many(codes, opts, workers, scheduler)
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
    if report:
        report.write_text(json.dumps(r, ensure_ascii=False, indent=2, default=str))
    if out:
        plan.grids.to_file(out, driver="GPKG", layer="grids")
        console.print(f"grids written to {out}")
    if publish:
        _publish(plan_id)


def _partition_many(codes: list[str], opts: dict, workers: int, scheduler: str | None) -> list[dict]:
    from dask.distributed import Client, LocalCluster

    from geo.db.cluster import database_url
    from geo.db.session import cli_actor

    url = database_url()
    opts = dict(opts, actor=cli_actor())
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        futures = {c: client.submit(_partition_one, c, dict(opts), url, pure=False, key=f"partition-{c}")
                   for c in codes}
        out = []
        for c, f in futures.items():
            try:
                out.append(f.result())
            except Exception as exc:  # noqa: BLE001 — report per jurisdiction, keep the others
                out.append({"jurisdiction": c, "error": str(exc)})
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _publish(plan_id: int) -> None:
    from geo.db import plans
    from geo.db.session import cli_actor, get_engine

    from geo.config import get_settings

    try:
        res = plans.publish(get_engine(), plan_id, cli_actor(), switch_in=get_settings().publish_switch_seconds)
    except plans.PlanError as exc:
        _fail(str(exc), 2)
    console.print(f"plan {plan_id} published, in force from {res['effective_at']}"
                  + (f"; retires {res['retired']}" if res["retired"] else ""))


@plan_app.command("publish")
def plan_publish(plan_id: int) -> None:
    """Publish a draft plan (the jurisdiction's published plan is retired, never deleted)."""
    _publish(plan_id)


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


# --------------------------------------------------------------------------- users, serve

user_app = typer.Typer(help="Users and API keys.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    username: str,
    role: str = typer.Option(..., help="admin, planner, dispatcher, worker or leader."),
    jurisdiction: str = typer.Option(..., help="12-digit code of the subtree the user may see and change."),
    password: Optional[str] = typer.Option(None, help="Password (default: prompt; or GEO_NEW_PASSWORD)."),
    full_name: Optional[str] = typer.Option(None),
    replace: bool = typer.Option(False, help="Reset an existing user."),
) -> None:
    """Create a login scoped to a jurisdiction subtree."""
    import os

    from geo.db.session import cli_actor, get_engine
    from geo.db.users import UserError, add_user

    pw = password or os.environ.get("GEO_NEW_PASSWORD") or typer.prompt("password", hide_input=True,
                                                                         confirmation_prompt=True)
    try:
        uid = add_user(get_engine(), username, pw, role, jurisdiction, actor=cli_actor(), full_name=full_name,
                       replace=replace)
    except UserError as exc:
        _fail(str(exc), 2)
    console.print(f"user {username!r} ({role}, {jurisdiction}) saved as id {uid}")


@user_app.command("apikey")
def user_apikey(
    name: str,
    role: str = typer.Option(..., help="Role of the device/integration (e.g. dispatcher for the 12345 hotline)."),
    jurisdiction: str = typer.Option(..., help="12-digit code of its subtree."),
) -> None:
    """Create an API key for a device or integration; the key is printed once."""
    from geo.db.session import cli_actor, get_engine
    from geo.db.users import UserError, add_api_key

    try:
        key = add_api_key(get_engine(), name, role, jurisdiction, actor=cli_actor())
    except UserError as exc:
        _fail(str(exc), 2)
    console.print(f"API key for {name!r} (store it now, it is not shown again):")
    print(key)


@app.command("serve")
def serve(
    host: Optional[str] = typer.Option(None, help="Bind address (default GEO_API_HOST, 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (default GEO_API_PORT, 8000)."),
    workers: int = typer.Option(1, help="Worker processes."),
    demo: bool = typer.Option(False, "--demo", help="Allow the demo secret and demo credentials."),
) -> None:
    """Run the API (uvicorn). Refuses to start without GEO_SECRET_KEY unless --demo."""
    import os

    import uvicorn

    from geo.api.main import ConfigError, resolve_secret
    from geo.config import get_settings, reset_settings

    if demo:
        os.environ["GEO_DEMO"] = "1"
        reset_settings()
    s = get_settings()
    try:
        resolve_secret(s)
        if not s.demo:
            _refuse_demo_credentials()
    except ConfigError as exc:
        _fail(str(exc), 2)
    uvicorn.run("geo.api.main:create_app", factory=True, host=host or s.api_host, port=port or s.api_port,
                workers=workers, log_level="info", access_log=False, log_config=None)


def _refuse_demo_credentials() -> None:
    """Outside --demo, no account may still have the published demo password."""
    from sqlalchemy import text

    from geo.api.core.config import DEMO_PASSWORD
    from geo.api.main import ConfigError
    from geo.db.session import get_engine
    from geo.db.users import verify_password

    with get_engine().connect() as conn:
        rows = conn.execute(text("SELECT username, password_hash FROM users WHERE active")).all()
    weak = [u for u, h in rows if verify_password(DEMO_PASSWORD, h)]
    if weak:
        raise ConfigError(f"users {weak[:5]} still have the demo password; reset them (geo user add NAME --replace) "
                          f"or run with --demo")


@app.command("dashboard")
def dashboard(port: Optional[int] = typer.Option(None, help="Port (default GEO_DASHBOARD_PORT, 8501).")) -> None:
    """Run the Streamlit dashboard (it talks to the API at GEO_API_URL)."""
    import os
    import subprocess

    from geo.config import get_settings

    s = get_settings()
    app_path = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_path), "--server.port", str(port or s.dashboard_port),
           "--server.address", s.api_host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--theme.base", "dark"]
    raise typer.Exit(subprocess.call(cmd, env=os.environ | {"GEO_API_URL": s.resolved_api_url}))


# --------------------------------------------------------------------------- the whole demo

DEMO_USERS = {"admin": "admin", "planner": "planner", "dispatcher": "dispatcher", "worker": "worker",
              "leader": "leader"}


@app.command("demo")
def demo(
    serve_: bool = typer.Option(True, "--serve/--no-serve", help="Serve API and dashboard until Ctrl-C."),
    events: int = typer.Option(5000, help="Synthetic events to seed over the last 30 days."),
    scale: float = typer.Option(1.0, help="Size of the synthetic district (1.0 ≈ 300,000 people)."),
) -> None:
    """PostGIS up, synthetic district loaded, partitioned, published, seeded; API and dashboard served."""
    import os

    from sqlalchemy import text

    from geo.api.core.config import DEMO_PASSWORD, get_catalogue
    from geo.db.partitioning import jurisdictions_to_partition, run_partition
    from geo.db.plans import publish
    from geo.db.seed import seed_events, seed_workers
    from geo.db.session import cli_actor, get_engine
    from geo.db.users import add_user
    from geo.demo.synthetic import DISTRICT_CODE

    os.environ["GEO_DEMO"] = "1"
    db_up(migrate=True)
    engine = get_engine()
    with engine.connect() as conn:
        loaded = conn.execute(text("SELECT count(*) FROM loads WHERE dataset = :d"), {"d": DEMO_DATASET}).scalar()
    if not loaded:
        demo_data(out=None, seed=42, scale=scale, load=True)
    actor = cli_actor()
    with engine.connect() as conn:
        published = dict(conn.execute(text("""
            SELECT j.code, p.id FROM grid_plans p JOIN jurisdictions j ON j.id = p.jurisdiction_id
            WHERE p.status = 'published'""")).all())
    plan_ids = []
    for code in jurisdictions_to_partition(engine, "street", DISTRICT_CODE):
        if code in published:
            plan_ids.append(published[code])
            continue
        plan_id, plan = run_partition(engine, code, actor=actor, population_dataset=DEMO_DATASET,
                                      streets_dataset=DEMO_DATASET)
        publish(engine, plan_id, actor)
        r = plan.report
        console.print(f"{code}: plan {plan_id} published, {r['n_grids']} grids, "
                      f"{100 * r['range']['in_range_share']:.1f}% in range")
        plan_ids.append(plan_id)
    for username, role in DEMO_USERS.items():
        add_user(engine, username, DEMO_PASSWORD, role, DISTRICT_CODE, actor=actor, replace=True,
                 full_name=f"演示{role}")
    nw = seed_workers(engine, plan_ids, seed=1)
    ne = seed_events(engine, plan_ids, get_catalogue(), n=events, seed=1)
    console.print(f"seeded {nw} synthetic workers and {ne} synthetic events (labelled synthetic)")
    summary()
    if serve_:
        _serve_all()


def _serve_all() -> None:
    """Run API and dashboard as child processes; print their URLs; stop both on Ctrl-C."""
    import os
    import signal
    import subprocess

    from geo.api.core.config import DEMO_PASSWORD
    from geo.config import get_settings
    from geo.db.cluster import wait_for_port

    s = get_settings()
    env = os.environ | {"GEO_DEMO": "1", "GEO_API_URL": s.resolved_api_url}
    procs = [subprocess.Popen([sys.executable, "-m", "geo.cli", "serve", "--demo"], env=env)]
    app_path = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
    if app_path.exists():
        procs.append(subprocess.Popen([sys.executable, "-m", "geo.cli", "dashboard"], env=env))
    try:
        wait_for_port("127.0.0.1", s.api_port, 60)
        print(f"API: http://127.0.0.1:{s.api_port}/docs", flush=True)
        if len(procs) > 1:
            wait_for_port("127.0.0.1", s.dashboard_port, 60)
            print(f"Dashboard: http://127.0.0.1:{s.dashboard_port}", flush=True)
        print(f"Login: {' / '.join(DEMO_USERS)} with password {DEMO_PASSWORD} (demo only; Ctrl-C stops)", flush=True)
        while all(p.poll() is None for p in procs):
            try:
                procs[0].wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


# --------------------------------------------------------------------------- summary


@app.command("summary")
def summary() -> None:
    """Rows per table."""
    from geo.db.loads import table_counts
    from geo.db.session import get_engine

    _print_counts(table_counts(get_engine()))


def _print_counts(counts: dict) -> None:
    t = Table(title="rows per table")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for k, v in counts.items():
        t.add_row(k, f"{v:,}")
    console.print(t)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
