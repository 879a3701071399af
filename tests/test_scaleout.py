"""Scale-out: `geo partition --all-streets` over ≥ 10 independent jurisdictions on a local Dask cluster."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from geo.cli import app


@pytest.mark.slow
def test_dask_local_cluster_partitions_every_community(engine, geo_env, tmp_path):
    r = CliRunner().invoke(app, ["demo-data", "--scale", "0.3", "--out", str(tmp_path / "demo")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    with engine.connect() as c:  # communities with residents (an industrial-park community may have none)
        communities = c.execute(text("""
            SELECT count(*) FROM jurisdictions j WHERE level = 'community'
            AND EXISTS (SELECT 1 FROM population_units u WHERE ST_Intersects(u.geom, j.geom))""")).scalar()
    assert communities >= 10
    r = CliRunner().invoke(app, ["partition", "--all-streets", "--level", "community", "--workers", "2",
                                 "--population-dataset", "demo", "--streets-dataset", "demo"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    with engine.connect() as c:
        rows = c.execute(text("""
            SELECT j.code, count(DISTINCT p.id), sum(g.population), count(g.id)
            FROM grid_plans p JOIN jurisdictions j ON j.id = p.jurisdiction_id JOIN grids g ON g.plan_id = p.id
            WHERE j.level = 'community' GROUP BY 1
        """)).all()
        people = dict(c.execute(text("""
            SELECT j.code, sum(u.people) FROM jurisdictions j JOIN population_units u ON ST_Covers(j.geom, u.geom)
            WHERE j.level = 'community' GROUP BY 1
        """)).all())
    assert len(rows) == communities  # one draft plan per community, computed by the Dask workers
    assert all(n_plans == 1 and n_grids >= 1 for _, n_plans, _, n_grids in rows)
    assert {code: int(pop) for code, _, pop, _ in rows} == {k: int(v) for k, v in people.items()}
