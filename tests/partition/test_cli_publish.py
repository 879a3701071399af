"""`geo partition … --publish` takes the staffing override of `geo plan publish`: refused without it (the draft
is kept, nothing published), refused with an override but no reason, published with both and audited."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from geo.cli import app
from tests.api.planner_world import MAX, MIN, STREET, pworld  # noqa: F401


def _run(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _published(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM grid_plans WHERE status = 'published'")).scalars().all()


def test_publish_options_refused_before_any_work(pworld, geo_env, engine):
    for args, msg in ((("--override-unstaffed", "--reason", "x"), "go with --publish"),
                      (("--reason", "x"), "go with --publish"),
                      (("--publish", "--override-unstaffed"), "needs --reason"),
                      (("--publish", "--override-unstaffed", "--reason", "  "), "needs --reason"),
                      (("--publish", "--all-streets"), "works on one jurisdiction")):
        res = _run("partition", *(() if "--all-streets" in args else (STREET,)), *args)
        assert res.exit_code == 2 and msg in res.output, (args, res.output)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grid_plans")).scalar() == 0  # no partition was run


def test_partition_publish_with_override_and_reason(pworld, geo_env, engine, monkeypatch):
    monkeypatch.setenv("GEO_ACTOR", "cli:planner-test")
    monkeypatch.setenv("GEO_PUBLISH_SWITCH_SECONDS", "0")
    rng = ("--min", str(MIN), "--max", str(MAX))
    # nobody is staffed: --publish alone stores the draft and refuses to publish it, naming the way out
    res = _run("partition", STREET, *rng, "--publish")
    assert res.exit_code == 2, res.output
    assert "no chief" in res.output and "--override-unstaffed --reason" in res.output
    assert _published(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grid_plans WHERE status = 'draft'")).scalar() == 1
    # with the override and a reason: published, the reason and the actor in the audit log
    res = _run("partition", STREET, *rng, "--publish", "--override-unstaffed", "--reason", "新网格，网格长待定")
    assert res.exit_code == 0, res.output
    assert "published" in res.output
    pub = _published(engine)
    assert len(pub) == 1
    with engine.connect() as conn:
        a = conn.execute(text("SELECT actor, at, detail FROM audit_log WHERE action = 'plan.publish' "
                              "AND outcome = 'ok' AND entity_id = :p"), {"p": str(pub[0])}).one()
        n_grids = conn.execute(text("SELECT count(*) FROM grids WHERE plan_id = :p"), {"p": pub[0]}).scalar()
    assert a.actor == "cli:planner-test" and a.at is not None
    assert a.detail["override_unstaffed"] is True and a.detail["reason"] == "新网格，网格长待定"
    assert len(a.detail["without_chief"]) == n_grids > 0
