"""Data of the printed 网格图 of one community (grids, streets, estate and special-unit names) from PostGIS;
drawing is :func:`geo.io.wanggetu.render_pdf`."""

from __future__ import annotations

import re

import geopandas as gpd
import shapely
from sqlalchemy import Engine, text

from geo.db.export import ExportError, plan_frame
from geo.io.wanggetu import render_pdf

STATUS_ZH = {"draft": "草案", "published": "已发布", "retired": "已退役"}


def _estate_name(addresses: list[str]) -> str | None:
    """The estate part of addresses like 复兴大道93号银湖豪庭3栋: their common prefix after the house number."""
    if not addresses:
        return None
    pre = addresses[0]
    for a in addresses[1:]:
        while not a.startswith(pre):
            pre = pre[:-1]
    pre = re.sub(r"[\d\-]+$", "", pre)
    pre = pre.split("号")[-1] if "号" in pre else pre
    return pre.strip() or None


def community_map_pdf(engine: Engine, plan_id: int, community_code: str, fmt: str = "pdf") -> bytes:
    """The 网格图 (PDF, A3 landscape) of one community of a plan.

    Raises
    ------
    ExportError
        Unknown plan, or the plan has no grid in that community.
    """
    grids, plan = plan_frame(engine, plan_id)
    g = grids[grids["community_code"] == community_code].reset_index(drop=True)
    if not len(g):
        raise ExportError(f"plan {plan_id} has no grid in community {community_code}")
    with engine.connect() as conn:
        c = conn.execute(text("SELECT name, ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
                         {"c": community_code}).first()
        env = shapely.box(*g.total_bounds).buffer(0.002).wkt
        streets = gpd.read_postgis(text("""
            SELECT name, geom FROM streets WHERE ST_Intersects(geom, ST_GeomFromText(:e, 4326))"""), conn,
                                   geom_col="geom", params={"e": env})
        est = conn.execute(text("""
            SELECT u.props->>'estate' AS estate, array_agg(u.name ORDER BY u.name) AS names,
                   ST_X(ST_Centroid(ST_Collect(u.geom))) AS x, ST_Y(ST_Centroid(ST_Collect(u.geom))) AS y
            FROM population_units u WHERE u.props ? 'estate' AND u.props->>'estate' <> ''
              AND ST_Intersects(u.geom, ST_GeomFromText(:e, 4326)) GROUP BY 1
        """), {"e": env}).all()
        sp = conn.execute(text("""
            SELECT name, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM special_areas
            WHERE ST_Intersects(geom, ST_GeomFromText(:e, 4326))"""), {"e": env}).all()
    boundary = shapely.from_wkb(bytes(c[1])) if c else None
    names, pts = [], []
    for r in est:
        nm = _estate_name([n for n in r.names if n])
        if nm:
            names.append(nm)
            pts.append(shapely.Point(r.x, r.y))
    for nm, x, y in sp:
        names.append(nm)
        pts.append(shapely.Point(x, y))
    if boundary is not None:
        keep = [boundary.buffer(1e-4).contains(p) for p in pts]
        names, pts = [n for n, k in zip(names, keep) if k], [p for p, k in zip(pts, keep) if k]
    places = gpd.GeoDataFrame({"name": names}, geometry=pts, crs=4326) if names else None
    when = (plan["published_at"] or plan["created_at"]).strftime("%Y-%m-%d")
    title = f"{c[0] if c else community_code}网格图"
    subtitle = (f"{plan['jname']} · 方案 #{plan['id']} 第{plan['version']}版 · {STATUS_ZH.get(plan['status'], plan['status'])}"
                f" · {when} · 社区编码 {community_code}")
    return render_pdf(g, title=title, subtitle=subtitle, streets=streets.rename_geometry("geometry"),
                      places=places, boundary=boundary, fmt=fmt)
