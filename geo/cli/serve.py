"""``geo serve``, ``geo dashboard`` and ``geo demo``: run the services."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from geo.cli._app import app, console, err, fail as _fail
from geo.cli.db import db_up, summary
from geo.cli.load import DEMO_DATASET, demo_data


@app.command("serve")
def serve(
    host: Optional[str] = typer.Option(None, help="Bind address (default GEO_API_HOST, 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (default GEO_API_PORT, 8000)."),
    workers: int = typer.Option(1, help="Worker processes."),
    demo: bool = typer.Option(False, "--demo", help="Allow the demo secret and demo credentials."),
) -> None:
    """Run the API (uvicorn). Refuses to start without GEO_SECRET_KEY unless --demo.

    Demo mode (the public demo secret and passwords) comes only from ``--demo`` on the command line:
    ``GEO_DEMO`` in the environment or ``.env`` is overridden for this process and its workers.
    """
    import os

    import uvicorn

    from geo.api.main import UVICORN_OPTIONS, ConfigError, resolve_secret
    from geo.config import get_settings, reset_settings

    if not demo and get_settings().demo:
        err.print("[yellow]warning:[/] GEO_DEMO is set in the environment but ignored: demo mode (public demo "
                      "secret and passwords) needs --demo on the command line", highlight=False)
    os.environ["GEO_DEMO"] = "1" if demo else "0"  # inherited by the worker processes
    reset_settings()
    s = get_settings()
    try:
        resolve_secret(s)
        if not s.demo:
            _refuse_demo_credentials()
    except ConfigError as exc:
        _fail(str(exc), 2)
    uvicorn.run("geo.api.main:create_app", factory=True, host=host or s.api_host, port=port or s.api_port,
                workers=workers, **UVICORN_OPTIONS)


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


def dashboard_cmd(port: int, host: str) -> list[str]:
    """The Streamlit command line serving ``dashboard/app.py`` (wherever the package is installed)."""
    import importlib.util

    app_path = Path(importlib.util.find_spec("dashboard").origin).parent / "app.py"
    return [sys.executable, "-m", "streamlit", "run", str(app_path), "--server.port", str(port),
            "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--theme.base", "dark"]


@app.command("dashboard")
def dashboard(port: Optional[int] = typer.Option(None, help="Port (default GEO_DASHBOARD_PORT, 8501).")) -> None:
    """Run the Streamlit dashboard (it talks to the API at GEO_API_URL)."""
    import os

    from geo.config import get_settings

    s = get_settings()
    cmd = dashboard_cmd(port or s.dashboard_port, s.api_host)
    os.environ["GEO_API_URL"] = s.resolved_api_url
    os.execv(cmd[0], cmd)  # the dashboard *is* this process: signals reach Streamlit directly


# --------------------------------------------------------------------------- the whole demo

DEMO_USERS = {"admin": "admin", "planner": "planner", "dispatcher": "dispatcher", "worker": "worker",
              "leader": "leader"}


@app.command("demo")
def demo(
    serve_: bool = typer.Option(True, "--serve/--no-serve", help="Serve API and dashboard until Ctrl-C."),
    events: int = typer.Option(5000, help="Synthetic events to seed over the last 30 days."),
    scale: float = typer.Option(1.0, help="Size of the synthetic district (1.0 ≈ 300,000 people)."),
) -> None:
    """PostGIS up, synthetic district loaded, partitioned, published, seeded; API, worker and dashboard served
    under a supervisor (URLs once healthy, restarts, Ctrl-C/SIGTERM stop everything)."""
    import os

    from sqlalchemy import text

    from geo.api.core.config import DEMO_PASSWORD, get_catalogue
    from geo.db.partitioning import jurisdictions_to_partition, run_partition
    from geo.db.plans import publish
    from geo.db.seed import seed_events, seed_workers
    from geo.db.session import cli_actor, get_engine
    from geo.db.users import add_user
    from geo.demo.synthetic import DISTRICT_CODE

    from geo.config import get_settings, reset_settings
    from geo.db.cluster import Cluster, ClusterError

    os.environ["GEO_DEMO"] = "1"
    reset_settings()
    if serve_:
        import importlib.util

        if importlib.util.find_spec("streamlit") is None:
            _fail("the dashboard is not installed: pip install 'geo-grids[dashboard]' (or run geo demo --no-serve)", 2)
    if serve_:  # fail before any slow work when a port is taken (the supervisor checks again when it starts)
        from geo.supervise import port_in_use

        st = get_settings()
        for what, port, var in (("API", st.api_port, "GEO_API_PORT"),
                                ("dashboard", st.dashboard_port, "GEO_DASHBOARD_PORT")):
            if port_in_use(st.api_host, port):
                _fail(f"{what} cannot start: port {port} on {st.api_host} is already in use (another server is "
                      f"running there; stop it or set {var} to a free port)", 1)
    started_cluster = False
    if not get_settings().database_url:
        try:
            info = Cluster(get_settings()).up()
        except ClusterError as exc:
            _fail(str(exc), 2)
        started_cluster = bool(info["created"] or info["started"])
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
        raise typer.Exit(_serve_all(stop_cluster=started_cluster))


def _serve_all(stop_cluster: bool = False) -> int:
    """Run API, worker and dashboard under :class:`geo.supervise.Supervisor`; print the URLs once all are healthy.

    Parameters
    ----------
    stop_cluster : also stop the embedded PostgreSQL at the end (the demo started it).

    Returns
    -------
    int : the exit code (0 after Ctrl-C/SIGTERM, 1 if a service failed to start or kept dying).
    """
    import os

    from geo.api.core.config import DEMO_PASSWORD
    from geo.config import get_settings
    from geo.supervise import Service, Supervisor, http_ok

    s = get_settings()
    host = s.api_host
    api = f"http://{host}:{s.api_port}"
    dash = f"http://{host}:{s.dashboard_port}"
    # the dashboard's map fetches basemap tiles from the API in the browser: allow the dashboard's origin
    origins = s.cors_origins or ",".join(dict.fromkeys(
        [dash, f"http://localhost:{s.dashboard_port}", f"http://127.0.0.1:{s.dashboard_port}"]))
    env = os.environ | {"GEO_DEMO": "1", "GEO_API_URL": s.resolved_api_url, "GEO_CORS_ORIGINS": origins}
    logs = s.data_path / "logs"
    services = [
        Service("API", [sys.executable, "-m", "geo.cli", "serve", "--demo"], http_ok(f"{api}/readyz"),
                port=(host, s.api_port), url=f"{api}/docs", env=env),
        Service("worker", [sys.executable, "-m", "geo.cli", "worker"], _worker_ready(logs / "worker.log"), env=env),
        Service("dashboard", dashboard_cmd(s.dashboard_port, host), http_ok(f"{dash}/_stcore/health"),
                port=(host, s.dashboard_port), url=dash, env=env),
    ]

    def started() -> None:
        print(f"API: {api}/docs", flush=True)
        print(f"Dashboard: {dash}", flush=True)
        print(f"Login: {' / '.join(DEMO_USERS)} with password {DEMO_PASSWORD} (demo only; Ctrl-C stops; logs in "
              f"{logs})", flush=True)

    code = Supervisor(services, logs).run(on_started=started)
    if stop_cluster:
        from geo.db.cluster import Cluster

        Cluster(s).down()
        print("embedded PostgreSQL stopped", flush=True)
    return code


def _worker_ready(log: Path):
    """Health of the worker: it has printed that it waits for jobs (after connecting to the queue)."""
    def check() -> bool:
        try:
            return "waiting for jobs" in log.read_text(errors="replace")[-20000:]
        except OSError:
            return False
    return check
