"""The planner's cycle beyond the engine: import existing grids, edit by hand (and undo), staff across
re-draws, publish warnings, roll back, export files and print the 网格图.

Access: reads need ``read`` inside the caller's subtree; writes need ``plan.write`` (planner, admin) inside
it. An object outside the caller's subtree answers 404 (see :func:`_scope`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from geo.api.core.security import Principal
from geo.access import policy
from geo.api.deps import authorize, get_state, require
from geo.api.errors import APIError

router = APIRouter(prefix="/v1", tags=["planner"])
MAX_UPLOAD = 50 * 1024 * 1024


def _scope(st, p: Principal, path: str | None, action: str, kind: str, entity_id, jid) -> None:
    """The policy's rule for *kind* (``plan`` or ``jurisdiction``): outside the caller's subtree the object is
    not found (404), a role that may not change it gets 403; refusals are audited."""
    write = action != "read"
    authorize(st, p, kind, path, entity_id=entity_id, jurisdiction_id=jid, write=write,
              action=action if write else None)


def _plan(st, p: Principal, plan_id: int, action: str) -> dict:
    with st.engine.connect() as conn:
        r = conn.execute(text("""
            SELECT gp.id, gp.status, gp.kind, gp.version, gp.params, gp.jurisdiction_id, j.path, j.code AS jcode
            FROM grid_plans gp JOIN jurisdictions j ON j.id = gp.jurisdiction_id WHERE gp.id = :p
        """), {"p": plan_id}).mappings().first()
    if r is None:
        raise APIError(404, "not_found", f"plan {plan_id} not found")
    _scope(st, p, r["path"], action, "plan", plan_id, r["jurisdiction_id"])
    return dict(r)


def _grid_paths(st, codes, plan_path: str) -> dict[str, str]:
    """Grid code → the jurisdiction path its staff belong to: its community's (the code's first 12 digits),
    else the plan's jurisdiction's."""
    prefixes = sorted({c[:12] for c in codes if c})
    with st.engine.connect() as conn:
        paths = dict(conn.execute(text("SELECT code, path FROM jurisdictions WHERE code = ANY(:c)"),
                                  {"c": prefixes}).all())
    return {c: paths.get((c or "")[:12], plan_path) for c in codes}


def _refresh(st) -> None:
    import threading

    threading.Thread(target=st.holder.refresh, name="geo-refresh", daemon=True).start()


# --------------------------------------------------------------------------- import


@router.post("/jurisdictions/{code}/grid-imports", status_code=201,
             summary="Import existing grids (GeoPackage, zipped Shapefile, GeoJSON, CSV+WKT) as an 'imported' draft")
async def import_grids(request: Request, code: str, file: UploadFile = File(...),
                       crs: str | None = Form(None, description="wgs84, cgcs2000, gcj02 or EPSG:xxxx"),
                       layer: str | None = Form(None), code_col: str | None = Form(None),
                       name_col: str | None = Form(None), kind_col: str | None = Form(None),
                       chief_col: str | None = Form(None), workers_col: str | None = Form(None),
                       min_pop: int = Form(1000, ge=1), max_pop: int = Form(2000, ge=1),
                       repair_tol_m2: float = Form(500.0, ge=0, le=1_000_000), repair: bool = Form(True),
                       dry_run: bool = Form(False), p: Principal = Depends(require("plan.write"))):
    """The validation report lists gaps, overlaps (m², residents, geometry), grids crossing a community
    boundary, out of range, malformed/duplicate codes and grids outside the jurisdiction, and each repair."""
    st = get_state(request)
    with st.engine.connect() as conn:
        j = conn.execute(text("SELECT id, path FROM jurisdictions WHERE code = :c"), {"c": code}).first()
    if j is None:
        raise APIError(404, "not_found", f"jurisdiction {code!r} not found")
    _scope(st, p, j.path, "plan.import", "jurisdiction", code, j.id)
    if min_pop >= max_pop:
        raise APIError(422, "validation_error", "min_pop must be below max_pop",
                       details=[{"field": "min_pop", "message": "must be below max_pop", "input": min_pop}])
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise APIError(413, "too_large", f"{file.filename}: larger than {MAX_UPLOAD // 2**20} MB")
    name = Path(file.filename or "grids").name

    def work():
        from geo.crs import CRSError
        from geo.db.grid_import import GridImportError, import_grids as do_import
        from geo.io.grid_files import GridColumns, read_grid_file
        from geo.io.readers import InputError

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / name
            path.write_bytes(data)
            try:
                gf = read_grid_file(path, crs=crs, layer=layer, columns=GridColumns(code_col, name_col, kind_col,
                                                                                     chief_col, workers_col))
                return do_import(st.engine, code, gf, actor=p.actor, min_pop=min_pop, max_pop=max_pop,
                                 repair_tol_m2=repair_tol_m2, repair=repair, dry_run=dry_run, source=name)
            except GridImportError as exc:
                raise APIError(422, "invalid_file", f"{name}: {exc}",
                               details=[{"row": q.get("row"), "field": q.get("field"),
                                         "message": q.get("problem") or q.get("action"), "input": q.get("value")}
                                        for q in exc.problems[:100]]) from None
            except (InputError, CRSError) as exc:
                raise APIError(422, "invalid_file", str(exc).replace(str(path), name)) from None

    res = await run_in_threadpool(work)
    return {"plan_id": res.plan_id, "report": res.report}


# --------------------------------------------------------------------------- edits


class EditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["move", "merge", "split", "lock", "unlock", "rename"]
    lon: float | None = Field(None, ge=-180, le=180, description="move: a point in the block to move")
    unit: Literal["block", "buildings"] | None = Field(
        None, description="move: the street block at the point, or the group of whole buildings at it; default "
                          "the block, or its building group when the block is the whole grid (see move-options)")
    lat: float | None = Field(None, ge=-90, le=90)
    to: str | None = Field(None, pattern=r"^\d{15}$", description="move: the neighbouring grid that takes it")
    code: str | None = Field(None, pattern=r"^\d{15}$", description="split / rename: the grid")
    codes: list[str] | None = Field(None, max_length=200, description="merge (two) / lock / unlock")
    k: int | None = Field(None, ge=2, le=20, description="split: into how many grids")
    name: str | None = Field(None, min_length=1, max_length=100, description="rename: the new name")
    crs: Literal["wgs84", "gcj02"] = "wgs84"


_NEEDS = {"move": ("lon", "lat", "to"), "merge": ("codes",), "split": ("code", "k"), "lock": ("codes",),
          "unlock": ("codes",), "rename": ("code", "name")}


def _edit_error(exc) -> APIError:
    return APIError(exc.status, "edit_refused" if exc.status == 409 else "not_found" if exc.status == 404
                    else "validation_error", str(exc), extra={"reason": exc.reason})


@router.post("/plans/{plan_id}/edits", status_code=201,
             summary="Edit a plan by hand (move a block, merge, split, lock, rename); makes a new draft")
def edit_plan(request: Request, plan_id: int, body: EditIn, p: Principal = Depends(require("plan.write"))):
    """Answers the new draft's id and the live figures (residents, households, contiguity, in range) of the
    grids touched, and the plan's coverage. A refused edit answers 409 with ``reason``."""
    from geo.crs import gcj02_to_wgs84
    from geo.db.edits import EditRefused, apply_edit

    st = get_state(request)
    _plan(st, p, plan_id, "plan.edit")
    missing = [f for f in _NEEDS[body.op] if getattr(body, f) is None]
    if missing:
        raise APIError(422, "validation_error", f"{body.op} needs {', '.join(missing)}",
                       details=[{"field": f, "message": "required for " + body.op} for f in missing])
    edit = body.model_dump(exclude_none=True)
    if body.op == "move" and body.crs == "gcj02":
        lon, lat = gcj02_to_wgs84([body.lon], [body.lat])
        edit["lon"], edit["lat"] = float(lon[0]), float(lat[0])
    edit.pop("crs", None)
    try:
        return apply_edit(st.engine, plan_id, edit, p.actor)
    except EditRefused as exc:
        from geo.api.services import audit

        audit.record_denied(st.engine, p, "plan.edit", "grid_plans", plan_id, reason=f"{exc.reason}: {exc}")
        raise _edit_error(exc) from None


@router.get("/plans/{plan_id}/move-options",
            summary="What can move out of a grid: its blocks and building groups on each neighbour's boundary")
def move_options(request: Request, plan_id: int, grid: str = Query(..., pattern=r"^\d{15}$",
                                                                   description="the grid to move from"),
                 to: str | None = Query(None, pattern=r"^\d{15}$", description="only this neighbour"),
                 p: Principal = Depends(require("read"))):
    """Every street block and group of whole buildings of *grid* that shares a boundary with a neighbouring
    grid of its community, with whether ``POST …/edits {"op": "move", lon, lat, to, unit}`` would be allowed
    (``ok``; else ``reason``), the residents it holds and both grids' residents after the move. ``lon``/``lat``
    is a point well inside the unit."""
    from geo.db.edits import load_plan
    from geo.db.move_units import move_options as options

    st = get_state(request)
    _plan(st, p, plan_id, "read")
    plan, g = load_plan(st.engine, plan_id)
    for field, code in (("grid", grid), ("to", to)):
        if code is not None and code not in set(g["code"]):
            raise APIError(404, "not_found", f"{field}: grid {code} is not in plan {plan_id}")
    if to == grid:
        raise APIError(422, "validation_error", "to: a grid cannot take a block from itself",
                       details=[{"field": "to", "message": "same as grid", "input": to}])
    out = options(st.engine, plan, g, grid, to)
    return {"plan_id": plan_id, "grid": grid, "options": out, "movable": sum(1 for o in out if o["ok"])}


@router.post("/plans/{plan_id}/undo", status_code=201, summary="Undo the last hand edit (a new draft)")
def undo_edit(request: Request, plan_id: int, p: Principal = Depends(require("plan.write"))):
    from geo.db.edits import EditRefused, undo

    st = get_state(request)
    _plan(st, p, plan_id, "plan.edit")
    try:
        return undo(st.engine, plan_id, p.actor)
    except EditRefused as exc:
        raise _edit_error(exc) from None


@router.get("/plans/{plan_id}/edits", summary="The hand edits of a plan (who, when, what, grids touched)")
def list_edits(request: Request, plan_id: int, p: Principal = Depends(require("read"))):
    st = get_state(request)
    _plan(st, p, plan_id, "read")
    with st.engine.connect() as conn:
        r = conn.execute(text("SELECT kind, parent_id, edits FROM grid_plans WHERE id = :p"), {"p": plan_id}).one()
    return {"plan_id": plan_id, "kind": r.kind, "parent_id": r.parent_id, "edits": r.edits}


# --------------------------------------------------------------------------- staffing, warnings, rollback


@router.get("/plans/{plan_id}/staffing",
            summary="Proposed staff per grid (carried from the published grid sharing most residents)")
def staffing(request: Request, plan_id: int, p: Principal = Depends(require("read"))):
    from geo.db.staffing import proposal

    st = get_state(request)
    r = _plan(st, p, plan_id, "read")
    out = proposal(st.engine, plan_id)
    # a plan above the caller is readable, its staff only inside the caller's subtree (names, phones per role)
    paths = _grid_paths(st, [g["code"] for g in out["grids"]], r["path"])
    hidden = set()
    for g in out["grids"]:
        staff = policy.staff_view(p, paths[g["code"]], g["staff"])
        if staff is None:
            hidden.add(g["code"])
            staff = []
        g["staff"] = staff
        if g["code"] in hidden and "file_chief" in g:
            g["file_chief"] = None
    for g in out["without_chief"]:
        if g["code"] in hidden:
            g["file_chief"] = None
    return out


@router.get("/plans/{plan_id}/publish-check", summary="Warnings before publishing (identical plan, other range, "
                                                      "grids without a chief)")
def publish_check(request: Request, plan_id: int, p: Principal = Depends(require("read"))):
    from geo.db import plans as db_plans
    from geo.db.staffing import proposal

    st = get_state(request)
    r = _plan(st, p, plan_id, "read")
    warnings = []
    with st.engine.connect() as conn:
        pub = conn.execute(text("SELECT id, params FROM grid_plans WHERE jurisdiction_id = :j AND status = "
                                "'published'"), {"j": r["jurisdiction_id"]}).first()
    if pub is not None and pub.id != plan_id:
        d = db_plans.diff(st.engine, pub.id, plan_id)
        if not d.added and not d.removed and not d.changed:
            warnings.append({"code": "identical", "message": f"plan {plan_id} has the same grids as the published "
                                                             f"plan {pub.id}"})
        a, b = pub.params or {}, r["params"] or {}
        if (a.get("min_pop"), a.get("max_pop")) != (b.get("min_pop"), b.get("max_pop")):
            warnings.append({"code": "different_range",
                             "message": f"range {b.get('min_pop')}–{b.get('max_pop')} differs from the published "
                                        f"plan's {a.get('min_pop')}–{a.get('max_pop')}",
                             "published": [a.get("min_pop"), a.get("max_pop")],
                             "draft": [b.get("min_pop"), b.get("max_pop")]})
    missing = proposal(st.engine, plan_id)["without_chief"]
    if missing:
        warnings.append({"code": "unstaffed", "message": f"{len(missing)} grid(s) would have no chief",
                         "grids": [{k: m[k] for k in ("code", "name", "people", "source_code")}
                                   for m in missing]})  # no file_chief: a name, and the plan may be above the caller
    return {"plan_id": plan_id, "published_plan_id": pub.id if pub else None, "warnings": warnings}


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    override_unstaffed: bool = Field(False, description="publish although some grids have no chief")
    reason: str | None = Field(None, max_length=500, description="why (required with override_unstaffed)")


def publish_or_refuse(st, p: Principal, plan_id: int, body: PublishIn | None, rollback: bool) -> dict:
    """Publish (or roll back to) a plan with the staffing rule; 409 with the unstaffed grids otherwise."""
    from geo.api.services import audit
    from geo.db import plans as db_plans
    from geo.db.staffing import StaffingRefused, publish_staffed

    r = _plan(st, p, plan_id, "plan.publish")
    body = body or PublishIn()
    try:
        out = publish_staffed(st.engine, plan_id, p.actor, override_unstaffed=body.override_unstaffed,
                              reason=body.reason, switch_in=st.settings.publish_switch_seconds, rollback=rollback)
    except StaffingRefused as exc:
        audit.record_denied(st.engine, p, "plan.publish", "grid_plans", plan_id, jurisdiction_id=r["jurisdiction_id"],
                            reason=f"unstaffed: {len(exc.without_chief)} grid(s)")
        raise APIError(409, "unstaffed", str(exc), extra={"without_chief": exc.without_chief}) from None
    except db_plans.PlanError as exc:
        raise APIError(409, "conflict", str(exc)) from None
    _refresh(st)
    return out


@router.post("/plans/{plan_id}/rollback", summary="Roll back: re-publish a retired plan (audited)")
def rollback(request: Request, plan_id: int, body: PublishIn | None = None,
             p: Principal = Depends(require("plan.write"))):
    return publish_or_refuse(get_state(request), p, plan_id, body, rollback=True)


# --------------------------------------------------------------------------- export and print


@router.get("/plans/{plan_id}/export", summary="Download a plan: gpkg, shp (zip), geojson or csv in WGS84/CGCS2000/GCJ-02")
def export_plan(request: Request, plan_id: int, format: Literal["gpkg", "shp", "geojson", "csv"] = "gpkg",
                crs: Literal["wgs84", "cgcs2000", "gcj02"] = "wgs84", p: Principal = Depends(require("read"))):
    from geo.db.export import plan_frame
    from geo.io.grid_files import write_grid_file

    st = get_state(request)
    r = _plan(st, p, plan_id, "read")
    frame, _ = plan_frame(st.engine, plan_id)
    # staff names only for the grids inside the caller's subtree (a community exports its street's plan)
    paths = _grid_paths(st, list(frame["code"]), r["path"])
    outside = [not policy.can_read(p, "grid_staff", paths[c]) for c in frame["code"]]
    for col in ("chief", "workers"):
        if col in frame.columns:
            frame.loc[outside, col] = None
    ext = {"shp": "zip"}.get(format, format)
    fname = f"grids_{r['jcode']}_v{r['version']}_{crs}.{ext}"
    with tempfile.TemporaryDirectory() as d:
        data = write_grid_file(frame, Path(d) / fname, format, crs).read_bytes()
    media = {"gpkg": "application/geopackage+sqlite3", "zip": "application/zip", "geojson": "application/geo+json",
             "csv": "text/csv; charset=utf-8"}[ext]
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{fname}"'})


@router.get("/plans/{plan_id}/print/{community}", summary="The printable 网格图 of one community (PDF, A3 landscape)")
def print_map(request: Request, plan_id: int, community: str, fmt: Literal["pdf", "png"] = Query("pdf"),
              p: Principal = Depends(require("read"))):
    from geo.db.export import ExportError
    from geo.db.wanggetu import community_map_pdf

    st = get_state(request)
    _plan(st, p, plan_id, "read")
    with st.engine.connect() as conn:
        c = conn.execute(text("SELECT id, path FROM jurisdictions WHERE code = :c AND level = 'community'"),
                         {"c": community}).first()
    if c is None:
        raise APIError(404, "not_found", f"community {community!r} not found")
    _scope(st, p, c.path, "read", "jurisdiction", community, c.id)
    try:
        data = community_map_pdf(st.engine, plan_id, community, fmt=fmt)
    except ExportError as exc:
        raise APIError(404, "not_found", str(exc)) from None
    return Response(data, media_type="application/pdf" if fmt == "pdf" else "image/png",
                    headers={"Content-Disposition": f'attachment; filename="wanggetu_{community}_{plan_id}.{fmt}"'})
