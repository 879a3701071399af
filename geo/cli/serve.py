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


@app.command("dashboard")
def dashboard(port: Optional[int] = typer.Option(None, help="Port (default GEO_DASHBOARD_PORT, 8501).")) -> None:
    """Run the Streamlit dashboard (it talks to the API at GEO_API_URL)."""
    import os
    import subprocess

    from geo.config import get_settings

    s = get_settings()
    app_path = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
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
    app_path = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
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


