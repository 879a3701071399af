"""Import existing grids: the report lists each fault with its figures; repairs; publish as baseline; the
stable re-draw keeps in-range grids exactly and fixes the rest."""

from __future__ import annotations

import shapely
import pytest
from sqlalchemy import text

from tests.api.planner_world import C1, C2, MAX, MIN, STREET, drawn_grids, pworld  # noqa: F401


def _write(gdf, path, fmt):
    if fmt == "geojson":
        gdf.to_file(path, driver="GeoJSON")
    elif fmt == "gpkg":
        gdf.to_file(path, driver="GPKG")
    return path


def test_import_report_repair_and_stable_redraw(pworld, engine, tmp_path):
    from geo.db import plans
    from geo.db.counting import count_residents
    from geo.db.grid_import import import_grids
    from geo.db.partitioning import run_partition
    from geo.io.grid_files import read_grid_file

    f = _write(drawn_grids(), tmp_path / "grids.geojson", "geojson")
    gf = read_grid_file(f)
    res = import_grids(engine, STREET, gf, actor="test:planner", min_pop=MIN, max_pop=MAX, repair_tol_m2=1000,
                       source="grids.geojson")
    rep = res.report
    # each fault, with figures
    gaps = sorted(rep["gaps"], key=lambda g: g["m2"])
    assert len(gaps) == 2
    assert 400 < gaps[0]["m2"] < 700 and "repair" in gaps[0]        # the 1 m sliver, repaired
    assert 15000 < gaps[1]["m2"] < 25000 and "repair" not in gaps[1]  # 40 m × 480 m strip
    assert gaps[1]["residents"] == 128 and gaps[1]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    ovs = sorted(rep["overlaps"], key=lambda o: o["m2"])
    assert len(ovs) == 2
    assert 400 < ovs[0]["m2"] < 700 and "repair" in ovs[0]
    assert 5000 < ovs[1]["m2"] < 9000 and ovs[1]["residents"] == 64 and "repair" not in ovs[1]
    assert {g["code"] for g in ovs[1]["grids"]} == {f"{C1}002", f"{C2}001"}
    assert [c["code"] for c in rep["crossing_community"]] == [f"{C2}001"]
    probs = {(c["code"], c["problem"].split(" ")[0]) for c in rep["codes"]}
    assert ("4299020010020002", "malformed") in probs and (f"{C2}001", "duplicate") in probs
    oor = {o["name"]: o for o in rep["out_of_range"]}
    assert set(oor) == {"梅园一网格", "梅园五网格", "梅园大网格"}
    assert oor["梅园大网格"]["people"] == 1920 and oor["梅园大网格"]["reason"] == "too_many"
    assert oor["梅园五网格"]["people"] == 512
    assert {r["kind"] for r in rep["repairs"]} == {"gap", "overlap"}
    assert rep["summary"]["gap_m2_after"] == pytest.approx(gaps[1]["m2"], rel=0.01)

    # the stored plan: kind imported, figures from the polygons
    with engine.connect() as conn:
        p = conn.execute(text("SELECT kind, status FROM grid_plans WHERE id = :p"), {"p": res.plan_id}).one()
        assert tuple(p) == ("imported", "draft")
        g = plans.plan_grids(engine, res.plan_id)
        people, _ = count_residents(conn, list(g.geometry.values), "pts")
    assert list(people) == list(g["people"])
    assert all(shapely.is_valid(list(g.geometry.values))), [shapely.is_valid_reason(x) for x in g.geometry]
    assert g["code"].is_unique and all(len(c) == 15 for c in g["code"])

    plans.publish(engine, res.plan_id, "test")
    new_id, plan = run_partition(engine, STREET, actor="test", min_pop=MIN, max_pop=MAX, stable=True)
    ng = plans.plan_grids(engine, new_id)
    q = plan.report
    assert q["coverage"]["covered_share"] > 0.99999  # measured in metres by the engine (edges bend a little)
    with engine.connect() as conn:
        people, _ = count_residents(conn, list(ng.geometry.values), "pts")
    assert list(people) == list(ng["people"])
    assert all(MIN <= p <= MAX for p in people), list(zip(ng["code"], people))
    # in-range imported grids are unchanged: same code, same shape
    before = g.set_index("code")
    kept = [c for c, pp, k in zip(g["code"], g["people"], g["kind"]) if MIN <= pp <= MAX]
    after = ng.set_index("code")
    for c in kept:
        assert c in after.index
        assert shapely.symmetric_difference(before.geometry[c], after.geometry[c]).area < 1e-12, c
    assert all(shapely.is_valid(list(ng.geometry.values))), [shapely.is_valid_reason(x) for x in ng.geometry]
    u = shapely.union_all(list(ng.geometry.values))
    assert u.area == pytest.approx(0.01 * 0.01, rel=1e-6)

