"""A plan's grids with the fields a provincial platform expects, for export (:mod:`geo.io.grid_files`) and
for the printed 网格图 (:mod:`geo.io.wanggetu`).

Population and households are counted again from the polygons (:func:`geo.db.counting.count_residents`);
网格长 / 网格员 are the workers assigned to the grid's code, or — for an imported plan nobody has staffed
yet — the names the imported file gave.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from sqlalchemy import Engine, text

from geo.crs import local_metric_crs
from geo.db.counting import count_residents, population_dataset


class ExportError(LookupError):
    """The plan does not exist."""


def plan_frame(engine: Engine, plan_id: int) -> tuple[gpd.GeoDataFrame, dict]:
    """(grids with export columns in EPSG:4326, plan info dict).

    Columns: ``code``, ``name``, ``kind``, ``community_code``, ``community_name``, ``street_name``,
    ``people``, ``households``, ``area_m2``, ``chief``, ``workers``, ``flags``, geometry.
    """
    with engine.connect() as conn:
        plan = conn.execute(text("""
            SELECT gp.id, gp.version, gp.status, gp.kind, gp.name, gp.params, gp.created_at, gp.published_at,
                   gp.jurisdiction_id, j.code AS jcode, j.name AS jname, j.path
            FROM grid_plans gp JOIN jurisdictions j ON j.id = gp.jurisdiction_id WHERE gp.id = :p
        """), {"p": plan_id}).mappings().first()
        if plan is None:
            raise ExportError(f"plan {plan_id} not found")
        g = gpd.read_postgis(text("""
            SELECT g.code, g.name, g.kind, g.community_code, c.name AS community_name, g.flags, g.props, g.geom,
                   (SELECT string_agg(w.name, '、' ORDER BY w.id) FROM worker_grids wg JOIN workers w
                        ON w.id = wg.worker_id WHERE wg.grid_code = g.code AND w.role = 'chief') AS chief,
                   (SELECT string_agg(w.name, '、' ORDER BY w.id) FROM worker_grids wg JOIN workers w
                        ON w.id = wg.worker_id WHERE wg.grid_code = g.code AND w.role <> 'chief') AS workers
            FROM grids g LEFT JOIN jurisdictions c ON c.code = g.community_code
            WHERE g.plan_id = :p ORDER BY g.code
        """), conn, geom_col="geom", params={"p": plan_id})
        ds = population_dataset(conn, plan["jurisdiction_id"], (plan["params"] or {}).get("population_dataset"))
        people, hh = count_residents(conn, list(g.geometry.values), ds)
    g = g.rename_geometry("geometry")
    g["people"], g["households"] = people, hh
    g["street_name"] = plan["jname"]
    for col in ("chief", "workers"):
        g[col] = [v if isinstance(v, str) and v else (pr or {}).get(col) for v, pr in zip(g[col], g["props"])]
        g[col] = g[col].fillna("")
    g["community_code"] = g["community_code"].fillna("")
    g["community_name"] = g["community_name"].fillna("")
    g["area_m2"] = g.to_crs(local_metric_crs(g)).area.to_numpy() if len(g) else np.zeros(0)
    return g.drop(columns=["props"]), dict(plan)
