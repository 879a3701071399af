"""Existing grids (a file read by :mod:`geo.io.grid_files`) into a plan of kind ``imported``.

:func:`import_grids` validates the grids against the jurisdiction, its communities and the loaded
population and returns a report — gaps and overlaps (m², residents, geometry for a map), grids crossing a
community boundary, grids out of the population range, malformed or duplicate codes, grids outside the
jurisdiction — then repairs what is small (slivers under ``repair_tol_m2``: a gap goes to the neighbour it
shares most boundary with, cut first along any street running through it; an overlap stays with the larger
grid) and reports what each repair moved (m², residents). The result is stored as a draft that can be
published as the baseline of the stable re-draw (:func:`geo.db.partitioning.run_partition`).

Every count comes from the final polygons and the population (:func:`geo.db.counting.count_residents`).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import orjson
import shapely
from sqlalchemy import Engine, text

from geo.access import audit
from geo.crs import local_metric_crs
from geo.db import plans as db_plans
from geo.db.counting import count_residents, population_dataset
from geo.io.grid_files import CODE_RE, GridFile

MIN_M2 = 0.01  # smaller differences are floating-point noise, not gaps or overlaps
MIN_WIDTH_M = 0.05  # thinner pieces are projection noise (straight edges in degrees bend slightly in metres)


def _real(piece) -> bool:
    """A gap/overlap piece that is more than noise: some area and a mean width (2·area/perimeter) above 5 cm."""
    return piece.area > MIN_M2 and 2 * piece.area / max(piece.length, 1e-9) > MIN_WIDTH_M


class GridImportError(ValueError):
    """The file cannot be imported as it is (rows listed in ``problems``)."""

    def __init__(self, message: str, problems: list[dict] | None = None):
        super().__init__(message)
        self.problems = problems or []


@dataclass
class ImportResult:
    plan_id: int | None
    report: dict


def valid_polygons(geoms) -> list:
    """Each geometry made valid and kept polygonal (re-projection can leave self-touching slivers)."""
    out = []
    for g in geoms:
        if not g.is_valid:
            g = shapely.make_valid(g)
            if g.geom_type == "GeometryCollection":
                g = shapely.union_all([p for p in g.geoms if p.geom_type in ("Polygon", "MultiPolygon")])
        out.append(g)
    return out


def _geojson(g, crs_from) -> dict:
    w = gpd.GeoSeries([g], crs=crs_from).to_crs(4326).iloc[0]
    return orjson.loads(shapely.to_geojson(shapely.set_precision(w, 1e-7)))


def read_context(engine: Engine, code: str) -> dict:
    """Jurisdiction row, its communities and streets (GeoDataFrames in EPSG:4326)."""
    with engine.connect() as conn:
        j = conn.execute(text("SELECT id, code, name, path, urban, ST_AsBinary(geom) AS g FROM jurisdictions "
                              "WHERE code = :c"), {"c": code}).mappings().first()
        if j is None:
            raise GridImportError(f"jurisdiction {code!r} not found; load its boundary first")
        comm = gpd.read_postgis(text("""
            SELECT code, name, urban, geom FROM jurisdictions WHERE level = 'community' AND path LIKE :p || '%'
            ORDER BY code"""), conn, geom_col="geom", params={"p": j["path"]})
        streets = gpd.read_postgis(text("""
            SELECT s.name, s.geom FROM streets s, jurisdictions j WHERE j.id = :j AND ST_Intersects(s.geom, j.geom)
        """), conn, geom_col="geom", params={"j": j["id"]})
        ds = population_dataset(conn, j["id"])
    return {"id": j["id"], "code": j["code"], "name": j["name"], "path": j["path"], "urban": j["urban"],
            "geom": shapely.from_wkb(bytes(j["g"])), "communities": comm, "streets": streets, "dataset": ds}


def _neighbour_by_boundary(piece, geoms: np.ndarray, tree: shapely.STRtree, exclude=()) -> int:
    """Index of the grid sharing the longest boundary with *piece* (-1 when none touches it)."""
    best, best_len = -1, 0.0
    for k in tree.query(piece.buffer(0.5)):
        if k in exclude:
            continue
        ln = shapely.intersection(piece.boundary.buffer(0.5), geoms[k].boundary).length
        if ln > best_len:
            best, best_len = int(k), ln
    return best


def import_grids(engine: Engine, jurisdiction_code: str, gf: GridFile, *, actor: str, min_pop: int = 1000,
                 max_pop: int = 2000, repair_tol_m2: float = 500.0, repair: bool = True, dry_run: bool = False,
                 source: str = "") -> ImportResult:
    """Validate, repair and store existing grids as an ``imported`` draft plan.

    Parameters
    ----------
    engine : Engine
    jurisdiction_code : str
        12-digit code of the jurisdiction the grids divide (a street / town).
    gf : GridFile
        The file, read by :func:`geo.io.grid_files.read_grid_file`.
    actor : str
        Who imports (stored as the plan's author and in the audit log).
    min_pop, max_pop : int
        Population range the report checks.
    repair_tol_m2 : float
        Gaps and overlaps up to this area are repaired; larger ones are only reported.
    repair : bool
        Repair slivers (False: report only, store the grids as drawn, clipped to the jurisdiction).
    dry_run : bool
        Report only; store nothing.

    Returns
    -------
    ImportResult
        ``plan_id`` (None for a dry run) and the report.

    Raises
    ------
    GridImportError
        Rows without a usable polygon or with an unknown grid type (nothing is stored), an unknown
        jurisdiction, or no grid inside it.
    """
    bad = [p for p in gf.problems if p["field"] == "geometry" and not p["problem"].startswith("invalid")]
    bad += [p for p in gf.problems if p["problem"].startswith("unknown grid type")]
    if bad:
        raise GridImportError(f"{len(bad)} row(s) cannot be imported; nothing was stored", bad)
    ctx = read_context(engine, jurisdiction_code)
    frame = gf.frame.reset_index(drop=True)
    if not len(frame):
        raise GridImportError("the file holds no grids")
    crs = local_metric_crs(frame)
    g = frame.to_crs(crs)
    jur = gpd.GeoSeries([ctx["geom"]], crs=4326).to_crs(crs).iloc[0]
    comm = ctx["communities"].to_crs(crs) if len(ctx["communities"]) else ctx["communities"]
    streets = ctx["streets"].to_crs(crs) if len(ctx["streets"]) else None
    geoms = np.asarray(g.geometry.values, dtype=object)
    rep: dict = {"source": source, "encoding": gf.encoding, "source_crs": gf.source_crs, "columns": gf.columns,
                 "rows_read": int(len(frame)), "file_problems": [p for p in gf.problems if p not in bad],
                 "min_pop": min_pop, "max_pop": max_pop, "repair_tol_m2": repair_tol_m2,
                 "outside": [], "overlaps": [], "gaps": [], "crossing_community": [], "codes": [],
                 "names": [], "repairs": []}

    # 1. outside the jurisdiction: mostly outside → not imported; partly outside → clipped (a repair)
    keep = np.ones(len(g), dtype=bool)
    for i, gi in enumerate(geoms):
        inside = shapely.intersection(gi, jur)
        out_m2 = gi.area - inside.area
        if out_m2 <= 1.0 or not any(_real(p) for p in getattr(shapely.difference(gi, jur), "geoms",
                                                               [shapely.difference(gi, jur)])):
            continue
        item = {"row": int(frame["row"].iat[i]), "code": frame["code"].iat[i], "outside_m2": round(out_m2, 1),
                "inside_share": round(inside.area / gi.area, 4) if gi.area else 0.0,
                "geometry": _geojson(shapely.difference(gi, jur), crs)}
        if inside.area < 0.5 * gi.area:
            item["action"] = "not imported (mostly outside the jurisdiction)"
            keep[i] = False
        else:
            item["action"] = "clipped to the jurisdiction"
            geoms[i] = inside
        rep["outside"].append(item)
    if not keep.any():
        raise GridImportError(f"no grid of the file lies inside {ctx['name']} ({ctx['code']})", rep["outside"])
    g, frame, geoms = g[keep].reset_index(drop=True), frame[keep].reset_index(drop=True), geoms[keep]
    rows = frame["row"].to_numpy()
    codes_in = frame["code"].to_numpy()

    def label(i):
        return {"row": int(rows[i]), "code": codes_in[i]}

    with engine.connect() as conn:
        def residents(pieces):
            w = gpd.GeoSeries(list(pieces), crs=crs).to_crs(4326)
            return count_residents(conn, list(w.values), ctx["dataset"])[0]

        # 2. overlaps
        tree = shapely.STRtree(geoms)
        a, b = tree.query(geoms, predicate="intersects")
        pairs = [(int(x), int(y)) for x, y in zip(a, b) if x < y]
        pieces, who = [], []
        for x, y in pairs:
            inter = shapely.intersection(geoms[x], geoms[y])
            inter = shapely.union_all([p for p in getattr(inter, "geoms", [inter])
                                       if p.geom_type in ("Polygon", "MultiPolygon")]) if not inter.is_empty else inter
            if inter.is_empty:
                continue
            inter = shapely.union_all([p for p in getattr(inter, "geoms", [inter]) if _real(p)])
            if inter.is_empty:
                continue
            pieces.append(inter)
            who.append((x, y))
        ppl = residents(pieces) if pieces else []
        for (x, y), piece, n in zip(who, pieces, ppl):
            item = {"grids": [label(x), label(y)], "m2": round(piece.area, 2), "residents": int(n),
                    "geometry": _geojson(piece, crs)}
            if repair and piece.area <= repair_tol_m2:
                keep_i, lose_i = (x, y) if geoms[x].area >= geoms[y].area else (y, x)
                geoms[lose_i] = shapely.difference(geoms[lose_i], piece)
                item["repair"] = f"kept in {codes_in[keep_i]}, removed from {codes_in[lose_i]}"
                rep["repairs"].append({"kind": "overlap", "m2": item["m2"], "residents": int(n),
                                       "from": codes_in[lose_i], "to": codes_in[keep_i]})
            rep["overlaps"].append(item)

        # 3. gaps
        covered = shapely.union_all(geoms)
        gap = shapely.difference(jur, covered)
        parts = [p for p in getattr(gap, "geoms", [gap]) if not p.is_empty and _real(p)]
        ppl = residents(parts) if parts else []
        for part, n in zip(parts, ppl):
            item = {"m2": round(part.area, 2), "residents": int(n), "geometry": _geojson(part, crs)}
            if repair and part.area <= repair_tol_m2:
                faces = [part]
                if streets is not None:  # snap to a street running through the sliver: cut along it
                    lines = shapely.intersection(np.asarray(streets.geometry.values), part.buffer(1.0))
                    lines = [ln for ln in lines if not ln.is_empty]
                    if lines:
                        cut = shapely.polygonize_full([shapely.union_all([part.boundary, *lines])])[0]
                        fs = [f for f in getattr(cut, "geoms", []) if part.contains(f.representative_point())]
                        if len(fs) > 1:
                            faces = fs
                tree = shapely.STRtree(geoms)
                moved = []
                for f in faces:
                    k = _neighbour_by_boundary(f, geoms, tree)
                    if k >= 0:
                        geoms[k] = shapely.union_all([geoms[k], f])
                        moved.append(codes_in[k])
                if moved:
                    item["repair"] = f"given to {', '.join(sorted(set(moved)))}" + (
                        f" (cut along {len(faces)} street faces)" if len(faces) > 1 else "")
                    rep["repairs"].append({"kind": "gap", "m2": item["m2"], "residents": int(n),
                                           "to": sorted(set(moved))})
            rep["gaps"].append(item)

        # 4. communities: main community, crossings
        main = np.full(len(geoms), None, dtype=object)
        if len(comm):
            cg = np.asarray(comm.geometry.values, dtype=object)
            for i, gi in enumerate(geoms):
                shares = [(comm["code"].iat[k], shapely.intersection(gi, cg[k]).area) for k in range(len(comm))]
                shares = [s for s in shares if s[1] > 1.0]
                if not shares:
                    continue
                shares.sort(key=lambda s: -s[1])
                main[i] = shares[0][0]
                if len(shares) > 1:
                    rep["crossing_community"].append({**label(i), "communities": [
                        {"code": c, "m2": round(m2, 1)} for c, m2 in shares]})
        comm_by = {r.code: r for r in ctx["communities"].itertuples()}

        # 5. codes: 15 digits = 12-digit community code + 3-digit serial, unique
        final = [None] * len(geoms)
        seen: set[str] = set()
        for i, c in enumerate(codes_in):
            ok = bool(c) and bool(CODE_RE.match(c)) and c[12:] != "000"
            if not ok:
                rep["codes"].append({**label(i), "problem": "malformed (expected 15 digits: 12-digit community "
                                                            "code + 3-digit serial 001–999)"})
            elif c in seen:
                rep["codes"].append({**label(i), "problem": "duplicate"})
            else:
                final[i] = c
                seen.add(c)
                if c[:12] not in comm_by:
                    rep["codes"].append({**label(i), "problem": "community part is not a community of "
                                                                "this jurisdiction", "kept": True})
                elif main[i] and c[:12] != main[i]:
                    rep["codes"].append({**label(i), "problem": f"community part differs from the community "
                                                                f"the grid lies in ({main[i]})", "kept": True})
        for i in range(len(geoms)):
            if final[i] is None:
                prefix = main[i] or (ctx["code"] if len(ctx["code"]) == 12 else None)
                serials = [int(c[12:]) for c in seen if c[:12] == prefix]
                final[i] = f"{prefix}{(max(serials) + 1 if serials else 1):03d}"
                seen.add(final[i])
                for item in rep["codes"]:
                    if item["row"] == int(rows[i]) and not item.get("kept"):
                        item["new_code"] = final[i]

        # 6. kinds and names
        kinds, names = [], []
        for i in range(len(geoms)):
            cm = comm_by.get(main[i])
            k = frame["kind"].iat[i] or ("rural" if cm is not None and not cm.urban else "standard")
            kinds.append(k)
            nm = frame["name"].iat[i]
            if not nm:
                nm = f"{cm.name if cm is not None else ctx['name']}第{int(final[i][12:])}网格"
                rep["names"].append({**label(i), "generated": nm})
            names.append(nm)

        # 7. figures from the final polygons
        final_geoms = [shapely.make_valid(x) if not x.is_valid else x for x in geoms]
        w = gpd.GeoSeries(valid_polygons(gpd.GeoSeries(final_geoms, crs=crs).to_crs(4326).values), crs=4326)
        people, hh = count_residents(conn, list(w.values), ctx["dataset"])
    out = gpd.GeoDataFrame({"code": final, "name": names, "kind": kinds, "people": people, "households": hh,
                            "community": main,
                            "flags": [[] for _ in final],
                            "props": [{"source_row": int(rows[i]), "source_code": codes_in[i],
                                       **({"chief": frame["chief"].iat[i]} if frame["chief"].iat[i] else {}),
                                       **({"workers": frame["workers"].iat[i]} if frame["workers"].iat[i] else {})}
                                      for i in range(len(final))]},
                           geometry=w.values, crs=4326)
    rep["out_of_range"] = [{"code": out["code"].iat[i], "name": out["name"].iat[i], "people": int(people[i]),
                            "reason": "too_few" if people[i] < min_pop else "too_many"}
                           for i in range(len(out)) if out["kind"].iat[i] != "exclusive"
                           and not (min_pop <= people[i] <= max_pop)]
    after_union = shapely.union_all(final_geoms)
    overlap_m2 = float(sum(x.area for x in final_geoms) - after_union.area)
    gap_m2 = float(shapely.difference(jur, after_union).area)
    rep["summary"] = {"grids": int(len(out)), "gaps": len(rep["gaps"]), "gap_m2_before": round(sum(x["m2"] for x in rep["gaps"]), 2),
                      "overlaps": len(rep["overlaps"]),
                      "overlap_m2_before": round(sum(x["m2"] for x in rep["overlaps"]), 2),
                      "gap_m2_after": round(gap_m2, 2), "overlap_m2_after": round(max(overlap_m2, 0.0), 2),
                      "covered_share_after": round(1 - gap_m2 / jur.area, 6) if jur.area else None,
                      "out_of_range": len(rep["out_of_range"]), "crossing_community": len(rep["crossing_community"]),
                      "code_problems": len(rep["codes"]), "outside": len(rep["outside"]),
                      "repairs": len(rep["repairs"]), "people": int(people.sum()), "households": int(hh.sum()),
                      "population_dataset": ctx["dataset"]}
    if dry_run:
        return ImportResult(None, rep)
    quality = plan_quality(out, people, min_pop, max_pop, covered=rep["summary"]["covered_share_after"],
                           gap_m2=gap_m2, overlap_m2=max(overlap_m2, 0.0),
                           multipart=sum(1 for x in final_geoms if x.geom_type == "MultiPolygon"))
    quality["import"] = rep["summary"]
    params = {"min_pop": min_pop, "max_pop": max_pop, "by": "people", "source": source, "encoding": gf.encoding,
              "source_crs": gf.source_crs, "repair_tol_m2": repair_tol_m2, "population_dataset": ctx["dataset"]}
    plan_id = db_plans.write_plan(engine, jurisdiction_code, out, actor=actor, params=params, quality=quality,
                                  name=f"导入 {source}"[:120] if source else "导入", kind="imported")
    with engine.begin() as conn:  # detail through orjson first: numpy figures stay numbers
        audit.record(conn, actor, "plan.import", "grid_plans", plan_id, jurisdiction_id=ctx["id"],
                     detail=orjson.loads(orjson.dumps({"source": source, **rep["summary"]}, default=str)))
    return ImportResult(plan_id, rep)


def plan_quality(grids: gpd.GeoDataFrame, people: np.ndarray, min_pop: float, max_pop: float, *, covered,
                 gap_m2: float, overlap_m2: float, multipart: int) -> dict:
    """The headline quality figures (same keys as the engine's report) of a plan not made by the engine."""
    checked = np.array([k != "exclusive" for k in grids["kind"]])
    pc = np.asarray(people)[checked]
    inr = (pc >= min_pop) & (pc <= max_pop)
    return {"n_grids": int(len(grids)), "min_pop": min_pop, "max_pop": max_pop,
            "range": {"in_range_share": float(inr.mean()) if len(pc) else 1.0, "out_of_range": int((~inr).sum()),
                      "reasons": {"too_few": int((pc < min_pop).sum()), "too_many": int((pc > max_pop).sum())}},
            "population": {"min": int(pc.min()) if len(pc) else 0, "max": int(pc.max()) if len(pc) else 0,
                           "median": float(np.median(pc)) if len(pc) else 0,
                           "cv": float(pc.std() / pc.mean()) if len(pc) and pc.mean() else 0.0},
            "coverage": {"covered_share": covered, "gap_m2": gap_m2, "overlap_m2": overlap_m2},
            "contiguity": {"noncontiguous_grids": multipart, "multipart_grids": multipart}}
