"""调度 Dispatch: find the grid of a caller's address (or of coordinates), who is on duty there, report an event.

Address first: ``GET /v1/geocode`` gives ranked standard-address candidates; picking one looks its point up.
Coordinates second (typed, pasted as "lon, lat", or a map click); they are checked before any lookup — not a
number, out of range, swapped, or outside the service area: refused with a message saying which and why, and the
previous result is cleared (never shown as if it belonged to the new input).

Test hooks: ``[data-testid="lookup-grid-code"]`` holds the grid code; ``[data-testid="lookup-result"]`` has
``data-grid-code``, ``data-plan-id`` and ``data-plan-version``; ``[data-testid="lookup-refused"]`` carries
``data-reason`` (``number``, ``range``, ``swapped``, ``out_of_area``); ``[data-testid="geocode-candidates"]``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import api, maps, ui
from dashboard.i18n import kind_name, state_name, t, worker_role_name
from dashboard.views import dispatch_form

MAP_HEIGHT = 600
K_LON, K_LAT, K_CRS = "disp_lon", "disp_lat", "disp_crs"
#: how far outside the jurisdiction's bbox a point may lie and still be looked up (degrees, ~5 km)
AREA_MARGIN_DEG = 0.05
#: a point in no grid whose nearest grid is farther than this is "outside the service area"
FAR_M = 3000.0


def render() -> None:
    _page()


def _on_map_click() -> None:
    """st_folium callback (runs before the rerun): a click fills the inputs and asks for a lookup."""
    bm = maps.basemap_settings()
    out = st.session_state.get(maps.map_key("disp_map", bm)) or {}
    c = out.get("last_clicked")
    if not c:
        return
    lon, lat = maps.from_display(float(c["lng"]), float(c["lat"]), bm)
    st.session_state[K_CRS] = "wgs84"
    st.session_state[K_LON] = f"{lon:.6f}"
    st.session_state[K_LAT] = f"{lat:.6f}"
    st.session_state["disp_pending"] = True


@ui.guard
def _page() -> None:
    tok = ui.token()
    sc = ui.scope(tok)
    st.subheader(t("dispatch_title"))
    if not sc["published"]:
        st.info(t("no_plan"), icon=":material/map:")
        return
    bbox = sc["bbox"]
    st.session_state.setdefault(K_CRS, "wgs84")
    st.session_state.setdefault(K_LON, "")
    st.session_state.setdefault(K_LAT, "")

    left, right = st.columns([1, 1.45], gap="large")
    with left:
        _address_search(tok, bbox)
        _coordinate_search(tok, bbox)
        _result_panel(tok, st.session_state.get("disp_result"))
    with right:
        _map(tok, sc, st.session_state.get("disp_result"))
    res = st.session_state.get("disp_result")
    if res and res.get("ok"):
        st.divider()
        c_ev, c_new = st.columns([1.45, 1], gap="large")
        with c_ev:
            _recent_events(tok, res["ok"])
        with c_new:
            dispatch_form.create_event(tok, res["ok"], address=res.get("address"))


# --------------------------------------------------------------------------- address first


def _address_search(tok: str, bbox) -> None:
    with st.container(border=True):
        st.markdown(f"**{t('addr_search')}**")
        with st.form("disp_addr_form", border=False, enter_to_submit=True):
            c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
            q = c1.text_input(t("addr_query"), key="disp_addr_q", placeholder=t("addr_placeholder"), max_chars=100)
            go = c2.form_submit_button(t("addr_button"), icon=":material/travel_explore:", width="stretch")
        if go:
            q = (q or "").strip()
            st.session_state.pop("disp_candidates", None)
            if not q:
                st.session_state["disp_candidates"] = {"q": q, "error": t("addr_required")}
            else:
                try:
                    st.session_state["disp_candidates"] = {"q": q, **api.geocode(tok, q, 8)}
                except api.ApiError as exc:
                    if isinstance(exc, api.ApiUnavailable) or exc.status == 401:
                        raise
                    msg = t("addr_unavailable") if exc.status in (404, 405) else ui.api_error_text(exc)
                    st.session_state["disp_candidates"] = {"q": q, "error": msg}
        cand = st.session_state.get("disp_candidates")
        if not cand:
            return
        if cand.get("error"):
            st.warning(cand["error"], icon=":material/search_off:")
            return
        items = cand.get("candidates") or []
        if not items:
            st.warning(t("addr_no_match", q=cand["q"]), icon=":material/search_off:")
            return
        labels = {i: t("addr_candidate", address=c.get("address") or "—",
                        grid=c.get("grid_name") or c.get("grid_code") or "—", score=f'{float(c.get("score") or 0):.2f}')
                  for i, c in enumerate(items)}
        st.html(f'<div data-testid="geocode-candidates" data-n="{len(items)}" '
                f'data-best-grid="{ui.esc(items[0].get("grid_code"))}"></div>')
        st.radio(t("addr_pick"), list(labels), format_func=labels.get, index=None,
                 key=f"disp_addr_pick_{cand['q']}", on_change=_on_pick, args=(f"disp_addr_pick_{cand['q']}", items))
        if st.session_state.pop("disp_pick_pending", None):
            c = st.session_state.get("disp_picked") or {}
            _lookup(tok, float(c["lon"]), float(c["lat"]), "wgs84", recentre=True, address=c.get("address"))


def _on_pick(key: str, items: list[dict]) -> None:
    i = st.session_state.get(key)
    if i is None:
        return
    c = items[i]
    st.session_state["disp_picked"] = c
    st.session_state[K_CRS] = "wgs84"
    st.session_state[K_LON] = f'{float(c["lon"]):.6f}'
    st.session_state[K_LAT] = f'{float(c["lat"]):.6f}'
    st.session_state["disp_pick_pending"] = True


# --------------------------------------------------------------------------- coordinates second


def _coordinate_search(tok: str, bbox) -> None:
    with st.container(border=True):
        st.markdown(f"**{t('coord_search')}**")
        with st.form("disp_coord_form", border=False, enter_to_submit=True):
            crs = st.segmented_control(t("crs"), ["wgs84", "gcj02"], key=K_CRS,
                                       format_func={"wgs84": "WGS84", "gcj02": "GCJ-02"}.get) or "wgs84"
            c1, c2 = st.columns(2)
            lon_s = c1.text_input(t("lon"), key=K_LON, placeholder="114.2871")
            lat_s = c2.text_input(t("lat"), key=K_LAT, placeholder="30.6052")
            clicked = st.form_submit_button(t("lookup_button"), type="primary", icon=":material/search:")
        st.caption(t("click_hint"))
    from_click = st.session_state.pop("disp_pending", False)
    if not (clicked or from_click):
        return
    parsed = parse_point(lon_s, lat_s, bbox)
    if "error" in parsed:
        st.session_state["disp_result"] = {"refused": parsed}
        st.session_state.pop("disp_event", None)
        return
    _lookup(tok, parsed["lon"], parsed["lat"], crs, recentre=not from_click)


def _num(s: str) -> float | None:
    import unicodedata

    s = unicodedata.normalize("NFKC", s or "").strip().replace("°", "")
    if not s:
        return None
    return float(s)  # ValueError for anything that is not a number (including "nan"-free garbage)


def parse_point(lon_s: str, lat_s: str, bbox) -> dict:
    """Typed coordinates → ``{lon, lat}`` or ``{error, reason}`` (Chinese message naming the field).

    Accepts "lon, lat" pasted into the longitude box; full-width digits; refuses NaN/inf, values out of range,
    a pair that only makes sense swapped, and points farther than :data:`AREA_MARGIN_DEG` from the service area.
    """
    import math
    import unicodedata

    lon_s = unicodedata.normalize("NFKC", lon_s or "")
    if ("," in lon_s or " " in lon_s.strip()) and not (lat_s or "").strip():
        parts = [p for p in lon_s.replace(",", " ").split() if p]
        if len(parts) == 2:
            lon_s, lat_s = parts
    vals = {}
    for field, raw in (("lon", lon_s), ("lat", lat_s)):
        try:
            v = _num(raw)
        except ValueError:
            return {"error": t("coord_bad_number", field=t(field), v=(raw or "").strip()[:40]), "reason": "number"}
        if v is None:
            return {"error": t("coord_missing", field=t(field)), "reason": "number"}
        if not math.isfinite(v):
            return {"error": t("coord_bad_number", field=t(field), v=raw.strip()[:40]), "reason": "number"}
        vals[field] = v
    lon, lat = vals["lon"], vals["lat"]

    def inside(x, y):
        return bool(bbox) and bbox[0] - AREA_MARGIN_DEG <= x <= bbox[2] + AREA_MARGIN_DEG and \
            bbox[1] - AREA_MARGIN_DEG <= y <= bbox[3] + AREA_MARGIN_DEG

    if inside(lat, lon) and not inside(lon, lat):
        return {"error": t("coord_swapped", lon=f"{lon:g}", lat=f"{lat:g}"), "reason": "swapped"}
    if not -180 <= lon <= 180:
        return {"error": t("coord_range_lon", v=f"{lon:g}"), "reason": "range"}
    if not -90 <= lat <= 90:
        return {"error": t("coord_range_lat", v=f"{lat:g}"), "reason": "range"}
    if bbox and not inside(lon, lat):
        return {"error": t("out_of_area", lon=f"{lon:.6f}", lat=f"{lat:.6f}", x0=f"{bbox[0]:.4f}",
                           x1=f"{bbox[2]:.4f}", y0=f"{bbox[1]:.4f}", y1=f"{bbox[3]:.4f}"), "reason": "out_of_area"}
    return {"lon": lon, "lat": lat}


# --------------------------------------------------------------------------- lookup and result


def _lookup(tok: str, lon: float, lat: float, crs: str, recentre: bool, address: str | None = None) -> None:
    try:
        body = api.lookup(tok, lon, lat, crs)
        st.session_state["disp_result"] = {"ok": body, "address": address}
        p = body.get("point") or {}
        if recentre and p:  # typed coordinates: bring the point into view (a click is already in view)
            x, y = maps.to_display(p["lon"], p["lat"], maps.basemap_settings())
            key = maps.map_key("disp_map", maps.basemap_settings())
            seen = st.session_state.get(f"{key}__seen") or (0,)
            maps.set_view(key, max(float(seen[0] or 0), 15.0), y, x)
    except api.ApiError as exc:
        if isinstance(exc, api.ApiUnavailable) or exc.status not in (404, 422):
            raise
        body = exc.body or {"error": exc.code, "message": exc.message}
        near = body.get("nearest") or {}
        if exc.status == 404 and near.get("distance_m") is not None and float(near["distance_m"]) > FAR_M:
            st.session_state["disp_result"] = {"refused": {
                "error": t("out_of_area_far", km=f'{float(near["distance_m"]) / 1000:,.0f}'), "reason": "out_of_area"}}
        elif exc.status == 422:
            st.session_state["disp_result"] = {"refused": {"error": ui.api_error_text(exc), "reason": "range"}}
        else:
            st.session_state["disp_result"] = {"err": body}
    st.session_state.pop("disp_event", None)


def _result_panel(tok: str, res: dict | None) -> None:
    if not res:
        st.info(t("lookup_first"), icon=":material/location_on:")
        return
    if "refused" in res:
        r = res["refused"]
        st.html(f'<div data-testid="lookup-refused" data-reason="{ui.esc(r.get("reason"))}"></div>')
        st.error(r["error"], icon=":material/wrong_location:")
        return
    if "err" in res:
        e = res["err"]
        near = e.get("nearest")
        if near:
            st.warning(t("not_in_grid", code=near.get("code"), name=near.get("name"), d=f'{near.get("distance_m", 0):.0f}'),
                       icon=":material/location_on:")
        else:
            st.warning(e.get("message") or t("no_plan"), icon=":material/location_on:")
        return
    g = res["ok"]
    plan = g.get("plan") or {}
    chief = g.get("chief") or {}
    pt = g.get("point") or {}
    rows = [
        (t("grid_name"), ui.esc(g.get("name"))),
        (t("grid_kind"), ui.esc(kind_name(g.get("kind")))),
        (t("population"), ui.esc(ui.fmt_num(g.get("population")))),
        (t("community"), ui.esc(_jname(g.get("community")))),
        (t("street"), ui.esc(_jname(g.get("street")))),
        (t("district"), ui.esc(_jname(g.get("district")))),
        (t("plan"), f'<span data-testid="lookup-plan">#{ui.esc(plan.get("id"))} v{ui.esc(plan.get("version"))}</span>'),
        (t("chief"), ui.esc(" ".join(x for x in (chief.get("name"), chief.get("phone")) if x) or "—")),
        ("WGS84", ui.esc(f'{pt.get("lon", 0):.6f}, {pt.get("lat", 0):.6f}')),
    ]
    if res.get("address"):
        rows.insert(0, (t("address"), ui.esc(res["address"])))
    st.html(f'<div class="geo-card" data-testid="lookup-result" data-grid-code="{ui.esc(g["code"])}" '
            f'data-plan-id="{ui.esc(plan.get("id"))}" data-plan-version="{ui.esc(plan.get("version"))}">'
            f'<div class="geo-muted">{ui.esc(t("grid_code"))}</div>'
            f'<div class="geo-code" data-testid="lookup-grid-code">{ui.esc(g["code"])}</div>'
            f'{ui.kv(rows, raw=True)}</div>')
    ws = [w for w in api.grid_workers(tok, g["code"], pt.get("lon"), pt.get("lat")) if w.get("on_duty")]
    st.markdown(f"**{t('workers_on_duty')}**")
    if not ws:
        st.caption(t("no_workers_on_duty"))
        return
    st.dataframe([{t("name"): w["name"], t("role"): worker_role_name(w["role"]),
                   t("distance"): None if w.get("distance_m") is None else f'{w["distance_m"]:.0f} m',
                   t("phone"): w.get("phone")} for w in ws][:12], hide_index=True, width="stretch",
                 key="disp_workers_table")


def _jname(j: dict | None) -> str:
    if not j:
        return "—"
    return f'{j.get("name") or ""} {j.get("code") or ""}'.strip()


def _map(tok: str, sc: dict, res: dict | None) -> None:
    bm = maps.basemap_settings()
    bbox = sc["bbox"]
    from dashboard.views.bigscreen import own_basemap

    m = maps.base_map(bbox, bm, background="#0c1a30", width_px=830, height_px=MAP_HEIGHT,
                      own_basemap=None if bm.url else own_basemap(tok))
    fc = api.published_grids(tok, None, maps.map_zoom_for(bbox), sc["published"])
    code = res["ok"]["code"] if res and res.get("ok") else None
    layers = [maps.grids_layer(fc, bm, name="grids", base_colour="#4d9be8", fill_opacity=0.06,
                               highlight={code} if code else frozenset(),
                               tooltip_fields=(("code", t("grid_code")), ("name", t("grid_name"))))]
    if res and res.get("ok"):
        p = res["ok"].get("point") or {}
        try:
            evs = api.events(tok, grid=code, limit=30).get("items", [])
        except api.ApiError:
            evs = []
        ev_pts = [(e["lon"], e["lat"], "#ff9f1c" if e.get("overdue") else "#2f9bff",
                   f'#{e["id"]} {state_name(e["state"])}') for e in evs if e.get("lon") is not None]
        layers.append(maps.points_layer(ev_pts, bm, name="events", radius=4))
        layers.append(maps.points_layer([(p["lon"], p["lat"], "#ff3df5", code)] if p else [], bm, name="point",
                                        radius=8))
    maps.render(m, layers, key=maps.map_key("disp_map", bm), height=MAP_HEIGHT,
                returned=("zoom", "center", "last_clicked"), on_change=_on_map_click)


def _recent_events(tok: str, g: dict) -> None:
    st.markdown(f"**{t('recent_events')}** · `{g['code']}`")
    data = api.events(tok, grid=g["code"], limit=20)
    items = data.get("items", [])
    if not items:
        st.caption(t("no_recent_events"))
        return
    cats, subs, _ = ui.catalogue_names(tok)
    names = ui.worker_names(tok, g["code"])
    rows = [{"#": e["id"], t("created_at"): ui.fmt_ts(e["created_at"]), t("state"): state_name(e["state"]),
             t("event"): f'{cats.get(e["category"], e["category"])} / {subs.get((e["category"], e["subtype"]), e["subtype"])}',
             t("assignee"): ui.assignee_name(e, names), t("wo_merged"): e.get("merged_orders") or "",
             t("overdue"): t("overdue") if e.get("overdue") else "", t("description"): e.get("description")}
            for e in items]
    sel = st.dataframe(rows, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                       key="disp_events_table", height=260)
    picked = sel.selection.rows if sel and sel.selection else []
    if picked:
        st.session_state["disp_event"] = items[picked[0]]["id"]
    eid = st.session_state.get("disp_event")
    if eid:
        ui.event_panel(tok, int(eid), key="disp_ev")
