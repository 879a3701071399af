"""A plan that fails verify() is refused with the reason and not stored; a good one stores verify's report."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from geo.cli import app


@pytest.fixture
def demo(engine, geo_env, tmp_path):
    res = CliRunner().invoke(app, ["demo-data", "--scale", "0.1", "--out", str(tmp_path / "demo")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return engine


def _street_with_two_communities(engine):
    """A street-level code and a point on the boundary between two of its communities (lon, lat)."""
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT s.code, ST_X(p) AS x, ST_Y(p) AS y, a.code AS a, b.code AS b
            FROM jurisdictions s
            JOIN jurisdictions a ON a.level = 'community' AND a.path LIKE s.path || '%'
            JOIN jurisdictions b ON b.level = 'community' AND b.path LIKE s.path || '%' AND b.code > a.code
            CROSS JOIN LATERAL (SELECT ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(
                ST_Boundary(a.geom), ST_Boundary(b.geom))), 0.5) AS p) q
            WHERE s.level = 'street' AND ST_Length(ST_LineMerge(ST_Intersection(ST_Boundary(a.geom),
                  ST_Boundary(b.geom)))::geography) > 200
              AND GeometryType(ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))))
                  = 'LINESTRING'
            ORDER BY s.code, a.code, b.code LIMIT 1""")).first()
    assert row is not None, "the demo has a street with two neighbouring communities"
    return row


def test_plan_with_a_building_across_a_community_line_is_refused(demo):
    engine = demo
    from geo.db.partitioning import PlanRefusedError, run_partition

    row = _street_with_two_communities(engine)
    # one building whose two entrances (12 m apart) lie in the two communities: grids never cross a
    # community line, so the engine cannot keep the building whole; verify must say so
    with engine.begin() as conn:
        load_id = conn.execute(text("SELECT max(load_id) FROM population_units WHERE dataset = 'demo'")).scalar()
        pts = conn.execute(text("""
            WITH c AS (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 32650) AS p)
            SELECT ST_Transform(ST_Translate(p, dx, dy), 4326) AS g, j.code
            FROM c, (VALUES (-6.0, 0.0), (6.0, 0.0), (0.0, -6.0), (0.0, 6.0)) AS d(dx, dy)
            JOIN jurisdictions j ON j.level = 'community'
            WHERE ST_Contains(j.geom, ST_Transform(ST_Translate(p, dx, dy), 4326))
        """), {"x": row.x, "y": row.y}).all()
        by_comm = {}
        for g, code in pts:
            by_comm.setdefault(code, g)
        assert len(by_comm) == 2, by_comm
        for k, g in enumerate(by_comm.values()):
            conn.execute(text("""
                INSERT INTO population_units (dataset, source_id, people, households, building, name, props, geom,
                                              load_id)
                VALUES ('demo', :sid, 60, 20, 'ACROSS-1', 'test building', '{}'::jsonb, :g, :l)"""),
                         {"sid": f"ACROSS-1-{k}", "g": g, "l": load_id})
        before = conn.execute(text("SELECT count(*) FROM grid_plans")).scalar()
    with pytest.raises(PlanRefusedError, match="buildings have address points in more than one grid") as exc:
        run_partition(engine, row.code, actor="test", population_dataset="demo", streets_dataset="demo")
    assert exc.value.report["buildings"]["examples"] == ["ACROSS-1"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grid_plans")).scalar() == before  # nothing stored


def test_stored_plan_carries_verify_report(demo):
    engine = demo
    from geo.db.partitioning import run_partition

    row = _street_with_two_communities(engine)
    plan_id, plan = run_partition(engine, row.code, actor="test", population_dataset="demo", streets_dataset="demo")
    with engine.connect() as conn:
        q, params = conn.execute(text("SELECT quality, params FROM grid_plans WHERE id = :i"), {"i": plan_id}).first()
    assert q["invariants"]["ok"] is True
    assert q["counts"]["residents_counted_elsewhere"] == 0 and q["buildings"]["split_between_grids"] == 0
    assert "service" not in q["streets"]["classes"]  # estate roads (OSM service) only guide cuts
    assert params["street_classes"] == q["streets"]["classes"]
    assert sum(plan.grids["people"]) == q["counts"]["measured_total"]
