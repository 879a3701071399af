"""Operations: backup/restore with pg_dump/pg_restore, and `geo doctor` checks."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from sqlalchemy import Engine, text

from geo.db.cluster import ClusterError, bindir


def _libpq_env(url: str) -> tuple[list[str], dict]:
    """Connection arguments for pg_dump/pg_restore from a SQLAlchemy URL (password via PGPASSWORD)."""
    u = urlparse(url.replace("postgresql+psycopg://", "postgresql://", 1))
    args = ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432), "-U", unquote(u.username or ""),
            "-d", (u.path or "/").lstrip("/")]
    env = os.environ | {"PGPASSWORD": unquote(u.password or ""), "PGCONNECT_TIMEOUT": "10"}
    return args, env


def _tool(name: str) -> str:
    try:
        return str(bindir() / name)
    except ClusterError:
        from shutil import which

        found = which(name)
        if not found:
            raise ClusterError(f"{name} not found; install the Debian package postgresql-client-15") from None
        return found


def backup(url: str, path: Path) -> Path:
    """Dump the whole database (schema, data, migration state) to *path* in pg_dump's custom format."""
    args, env = _libpq_env(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([_tool("pg_dump"), *args, "-Fc", "--no-owner", "-f", str(path)], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise ClusterError(f"pg_dump failed: {r.stderr.strip()}")
    return path


def database_is_empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        n = conn.execute(text("""
            SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
            AND tablename NOT IN ('spatial_ref_sys')
        """)).scalar_one()
    return n == 0


def restore(url: str, path: Path, *, force: bool = False, engine: Engine | None = None) -> None:
    """Restore a backup into the database in one transaction.

    Refuses a database that already has geo tables unless *force* (then objects are dropped first).
    """
    if not Path(path).exists():
        raise ClusterError(f"{path}: backup file not found")
    if engine is not None and not force and not database_is_empty(engine):
        raise ClusterError("the database is not empty; restore into an empty cluster or pass --force to replace it")
    args, env = _libpq_env(url)
    if force:
        return _restore_over(url, path, args, env)
    cmd = [_tool("pg_restore"), *args, "--no-owner", "--single-transaction", "--exit-on-error"]
    r = subprocess.run([*cmd, str(path)], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise ClusterError(f"pg_restore failed (nothing was changed): {r.stderr.strip()[-2000:]}")


def _restore_over(url: str, path: Path, args: list[str], env: dict) -> None:
    """Replace what the database holds by the backup, in one transaction (psql running pg_restore's script).

    ``pg_restore --clean`` drops a partition's primary key and indexes one by one, which PostgreSQL refuses for
    those a partitioned parent owns (``events``, migration 0009); so the partitioned tables are dropped first,
    with everything hanging on them, in the same transaction, and the script's own DROP … IF EXISTS then finds
    them gone.
    """
    from sqlalchemy import create_engine, pool

    eng = create_engine(url, poolclass=pool.NullPool)
    try:
        with eng.connect() as conn:
            parents = conn.execute(text("SELECT quote_ident(relname) FROM pg_class WHERE relkind = 'p' "
                                        "AND relnamespace = 'public'::regnamespace")).scalars().all()
    finally:
        eng.dispose()
    script = subprocess.Popen([_tool("pg_restore"), "--no-owner", "--clean", "--if-exists", "-f", "-", str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    psql = subprocess.Popen([_tool("psql"), *args, "-X", "-q", "--single-transaction", "-v", "ON_ERROR_STOP=1",
                             "-f", "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)
    try:
        psql.stdin.write("".join(f"DROP TABLE IF EXISTS public.{t} CASCADE;\n" for t in parents).encode())
        shutil.copyfileobj(script.stdout, psql.stdin)
    except BrokenPipeError:  # psql stopped at an error: its stderr says which
        pass
    finally:
        try:
            psql.stdin.close()
        except BrokenPipeError:
            pass
    script.stdout.close()
    script_err = script.stderr.read().decode(errors="replace")
    psql_err = psql.stderr.read().decode(errors="replace")
    script.wait()
    psql.wait()
    if script.returncode != 0 or psql.returncode != 0:
        raise ClusterError(f"pg_restore failed (nothing was changed): {(psql_err or script_err).strip()[-2000:]}")


# --------------------------------------------------------------------------- doctor


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


EXPECTED_INDEXES = ("ix_grids_geom", "ix_jurisdictions_geom", "ix_population_units_geom", "ix_streets_geom",
                    "ix_special_areas_geom", "ix_events_geom", "ix_worker_positions_geom", "uq_grid_plans_one_published",
                    "ix_events_path", "ix_jurisdictions_path")


def doctor(engine: Engine, settings) -> list[Check]:
    """Check the installation and say what to fix."""
    from geo.db import migrate

    out: list[Check] = []
    try:
        with engine.connect() as conn:
            ver = conn.execute(text("SHOW server_version")).scalar_one()
            out.append(Check("PostgreSQL", "ok" if ver.startswith("15") or int(ver.split(".")[0]) >= 15 else "warn",
                             ver, "PostgreSQL 15 or newer is supported"))
            try:
                pg = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
                out.append(Check("PostGIS", "ok" if int(pg.split(".")[0]) >= 3 else "fail", pg,
                                 "apt-get install postgresql-15-postgis-3"))
            except Exception:  # noqa: BLE001
                out.append(Check("PostGIS", "fail", "extension missing", "CREATE EXTENSION postgis (geo db up does it)"))
                return out
    except Exception as exc:  # noqa: BLE001
        out.append(Check("database", "fail", str(exc).splitlines()[0], "geo db up (or check DATABASE_URL)"))
        return out
    cur, head = migrate.current_revision(engine.url.render_as_string(hide_password=False)), migrate.head_revision()
    out.append(Check("migrations", "ok" if cur == head else "fail", f"at {cur}, head {head}",
                     "" if cur == head else "geo db migrate"))
    out.extend(_queue_checks(engine))
    out.extend(_partition_checks(engine))
    with engine.connect() as conn:
        have = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")).scalars())
        missing = [i for i in EXPECTED_INDEXES if i not in have]
        out.append(Check("indexes", "ok" if not missing else "fail",
                         "all present" if not missing else f"missing {missing}", "geo db migrate (or recreate them)"))
        geom_no_gist = conn.execute(text("""
            SELECT f_table_name || '.' || f_geometry_column FROM geometry_columns g WHERE f_table_schema = 'public'
            AND NOT EXISTS (SELECT 1 FROM pg_indexes i WHERE i.tablename = g.f_table_name
                            AND i.indexdef ILIKE '%USING gist%' AND i.indexdef LIKE '%' || g.f_geometry_column || '%')
        """)).scalars().all()
        out.append(Check("spatial indexes", "ok" if not geom_no_gist else "fail",
                         "every geometry column has a GiST index" if not geom_no_gist else f"no GiST on {geom_no_gist}",
                         "CREATE INDEX … USING gist"))
        rows = conn.execute(text("""
            SELECT j.code, j.name, EXISTS (SELECT 1 FROM grid_plans p WHERE p.jurisdiction_id = j.id
                                          AND p.status = 'published') AS published,
                   EXISTS (SELECT 1 FROM grid_plans p JOIN jurisdictions a ON a.id = p.jurisdiction_id
                           WHERE p.status = 'published' AND j.path LIKE a.path || '%') AS covered
            FROM jurisdictions j WHERE j.level = 'street'
            AND EXISTS (SELECT 1 FROM population_units u WHERE ST_Intersects(u.geom, j.geom))
        """)).all()
        uncovered = [f"{r.code} {r.name}" for r in rows if not r.covered]
        out.append(Check("published plans", "ok" if rows and not uncovered else "warn",
                         f"{sum(r.covered for r in rows)} of {len(rows)} streets/towns with population covered by a "
                         f"published plan" + (f"; missing: {uncovered[:5]}" if uncovered else ""),
                         "geo partition CODE --publish" if uncovered or not rows else ""))
        users = conn.execute(text("SELECT count(*) FROM users WHERE active")).scalar_one()
        out.append(Check("users", "ok" if users else "warn", f"{users} active",
                         "" if users else "geo user add NAME --role admin --jurisdiction CODE"))
    if not settings.demo:
        out.append(Check("secret key", "ok" if settings.secret_key else "fail",
                         "GEO_SECRET_KEY set" if settings.secret_key else "GEO_SECRET_KEY not set",
                         "" if settings.secret_key else "export GEO_SECRET_KEY=$(python -c 'import secrets; "
                         "print(secrets.token_urlsafe(48))')"))
    return out


def _partition_checks(engine: Engine) -> list[Check]:
    """The events table's months: next month made ahead, nothing stranded in the DEFAULT partition."""
    from geo.db import event_partitions as ep

    with engine.connect() as conn:
        if not ep.is_partitioned(conn):
            return []
        parts = ep.partitions(conn)
        stranded = ep.default_rows(conn)
        ahead = conn.execute(text("SELECT :until > now() + interval '1 month'"),
                             {"until": parts[-1]["end"] if parts else None}).scalar()
    from zoneinfo import ZoneInfo

    until = parts[-1]["end"].astimezone(ZoneInfo(ep.PARTITION_TZ)).date().isoformat() if parts else "—"
    if not ahead:
        return [Check("events partitions", "fail", f"{len(parts)} monthly partitions, made only up to {until}",
                      "geo db partitions --maintain (a running geo worker does it every hour)")]
    if stranded:
        return [Check("events partitions", "warn", f"{stranded} event(s) in {ep.DEFAULT} (no month of their own)",
                      "geo db partitions --move-default")]
    return [Check("events partitions", "ok", f"{len(parts)} monthly partitions up to {until}, DEFAULT empty")]


def _queue_checks(engine: Engine) -> list[Check]:
    """The job queue: its schema, live workers (heartbeat), jobs waiting or stuck."""
    from geo.jobs.queue import STALLED_S, schema_applied

    if not schema_applied(engine):
        return [Check("job queue", "fail", "procrastinate schema missing", "geo db migrate")]
    with engine.connect() as conn:
        live = conn.execute(text("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - "
                                 "make_interval(secs => :s)"), {"s": STALLED_S}).scalar_one()
        waiting = conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")).scalar_one()
    return [Check("job worker", "ok" if live else "warn", f"{live} live worker(s), {waiting} job(s) waiting",
                  "start one: geo worker (geo demo starts it)")]
