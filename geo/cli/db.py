"""``geo db …``, ``geo doctor`` and ``geo summary``: the database and its health."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from geo.cli._app import app, console, fail as _fail


db_app = typer.Typer(help="The database: embedded PostGIS cluster and migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")



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


@db_app.command("partitions")
def db_partitions(
    maintain: bool = typer.Option(False, "--maintain", help="Run the hourly maintenance now (months ahead, "
                                  "GEO_EVENTS_RETENTION_MONTHS) before listing."),
    move_default: bool = typer.Option(False, "--move-default", help="Give the events stranded in the DEFAULT "
                                      "partition months of their own (takes an exclusive lock on events)."),
) -> None:
    """The events table's monthly partitions: range, rows (estimate), and what sits in DEFAULT."""
    from zoneinfo import ZoneInfo

    from geo.config import get_settings
    from geo.db import event_partitions as ep
    from geo.db.cluster import ClusterError
    from geo.db.session import get_engine

    try:
        engine = get_engine()
        with engine.connect() as conn:
            if not ep.is_partitioned(conn):
                _fail("events is not partitioned (schema before migration 0009): geo db migrate", 2)
        if move_default:
            console.print(f"moved {ep.move_default(engine)} event(s) out of {ep.DEFAULT}")
        if maintain:
            s = get_settings()
            rep = ep.maintain(engine, premake=s.events_premake_months, retention_months=s.events_retention_months)
            console.print(f"maintenance: made {rep.created or 'nothing'}, dropped {rep.dropped or 'nothing'}")
        with engine.connect() as conn:
            parts, stranded = ep.partitions(conn), ep.default_rows(conn)
    except ClusterError as exc:
        _fail(str(exc), 2)
    tz = ZoneInfo(ep.PARTITION_TZ)
    t = Table(title=f"events partitions (months in {ep.PARTITION_TZ})")
    for c in ("partition", "from", "to", "rows (estimate)"):
        t.add_column(c, justify="right" if c.startswith("rows") else "left")
    for p in parts:
        t.add_row(p["name"], p["start"].astimezone(tz).date().isoformat(), p["end"].astimezone(tz).date().isoformat(),
                  f"{max(p['rows'], 0):,}")
    t.add_row(ep.DEFAULT, "—", "—", f"{stranded:,} (exact)")
    console.print(t)
    if stranded:
        console.print(f"[yellow]{stranded} event(s) in {ep.DEFAULT}[/]: geo db partitions --move-default")


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


