"""调度 Dispatch: which grid owns a location, who is on duty there, report an event, move events along.

Type lon/lat (WGS84 or GCJ-02) or click the map. Test hooks: ``[data-testid="lookup-grid-code"]`` holds the
grid code; ``[data-testid="lookup-result"]`` has ``data-grid-code``, ``data-plan-id`` and ``data-plan-version``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import api, maps, ui
from dashboard.i18n import kind_name, state_name, t, worker_role_name

MAP_HEIGHT = 600
K_LON, K_LAT, K_CRS = "disp_lon", "disp_lat", "disp_crs"


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
    st.session_state[K_LON] = round(lon, 6)
    st.session_state[K_LAT] = round(lat, 6)
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
    if K_LON not in st.session_state:
        lat0, lon0 = maps.bbox_center(bbox)
        st.session_state[K_LON], st.session_state[K_LAT] = round(lon0, 6), round(lat0, 6)
    if K_CRS not in st.session_state:
        st.session_state[K_CRS] = "wgs84"

    left, right = st.columns([1, 1.45], gap="large")
    with left:
        with st.container(border=True):
            crs = st.segmented_control(t("crs"), ["wgs84", "gcj02"], key=K_CRS,
                                       format_func={"wgs84": "WGS84", "gcj02": "GCJ-02"}.get) or "wgs84"
            c1, c2 = st.columns(2)
            lon = c1.number_input(t("lon"), min_value=-180.0, max_value=180.0, step=0.0005, format="%.6f", key=K_LON)
            lat = c2.number_input(t("lat"), min_value=-90.0, max_value=90.0, step=0.0005, format="%.6f", key=K_LAT)
            clicked = st.button(t("lookup_button"), type="primary", key="disp_lookup", icon=":material/search:")
            st.caption(t("click_hint"))
        from_click = st.session_state.pop("disp_pending", False)
        if clicked or from_click:
            _lookup(tok, float(lon), float(lat), crs, recentre=not from_click)
        res = st.session_state.get("disp_result")
        _result_panel(tok, res)
    with right:
        _map(tok, sc, st.session_state.get("disp_result"))
    res = st.session_state.get("disp_result")
    if res and res.get("ok"):
        st.divider()
        c_ev, c_new = st.columns([1.45, 1], gap="large")
        with c_ev:
            _recent_events(tok, res["ok"])
        with c_new:
            _create_event(tok, res["ok"])


def _lookup(tok: str, lon: float, lat: float, crs: str, recentre: bool) -> None:
    try:
        body = api.lookup(tok, lon, lat, crs)
        st.session_state["disp_result"] = {"ok": body}
        p = body.get("point") or {}
        if recentre and p:  # typed coordinates: bring the point into view (a click is already in view)
            x, y = maps.to_display(p["lon"], p["lat"], maps.basemap_settings())
            key = maps.map_key("disp_map", maps.basemap_settings())
            seen = st.session_state.get(f"{key}__seen") or (0,)
            maps.set_view(key, max(float(seen[0] or 0), 15.0), y, x)
    except api.ApiError as exc:
        if exc.status == 404 and not isinstance(exc, api.ApiUnavailable):
            st.session_state["disp_result"] = {"err": exc.body or {"error": exc.code, "message": exc.message}}
        else:
            raise
    st.session_state.pop("disp_event", None)


def _result_panel(tok: str, res: dict | None) -> None:
    if not res:
        st.info(t("lookup_first"), icon=":material/location_on:")
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
    comm = g.get("community") or {}
    street = g.get("street") or {}
    district = g.get("district") or {}
    chief = g.get("chief") or {}
    pt = g.get("point") or {}
    rows = [
        (t("grid_name"), ui.esc(g.get("name"))),
        (t("grid_kind"), ui.esc(kind_name(g.get("kind")))),
        (t("population"), ui.esc(ui.fmt_num(g.get("population")))),
        (t("community"), ui.esc(_jname(comm))),
        (t("street"), ui.esc(_jname(street))),
        (t("district"), ui.esc(_jname(district))),
        (t("plan"), f'<span data-testid="lookup-plan">#{ui.esc(plan.get("id"))} v{ui.esc(plan.get("version"))}</span>'),
        (t("chief"), ui.esc(" ".join(x for x in (chief.get("name"), chief.get("phone")) if x) or "—")),
        ("WGS84", ui.esc(f'{pt.get("lon", 0):.6f}, {pt.get("lat", 0):.6f}')),
    ]
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
                   t("phone"): w.get("phone")} for w in ws][:12], hide_index=True, width="stretch")


def _jname(j: dict | None) -> str:
    if not j:
        return "—"
    return f'{j.get("name") or ""} {j.get("code") or ""}'.strip()


def _map(tok: str, sc: dict, res: dict | None) -> None:
    bm = maps.basemap_settings()
    bbox = sc["bbox"]
    m = maps.base_map(bbox, bm, background="#0d1a2e", width_px=830, height_px=MAP_HEIGHT)
    fc = api.published_grids(tok, None, maps.map_zoom_for(bbox), sc["published"])
    code = res["ok"]["code"] if res and res.get("ok") else None
    layers = [maps.grids_layer(fc, bm, name="grids", base_colour="#4d7fb8", fill_opacity=0.06,
                               highlight={code} if code else frozenset(),
                               tooltip_fields=(("code", t("grid_code")), ("name", t("grid_name"))))]
    pts = []
    if res and res.get("ok"):
        p = res["ok"].get("point") or {}
        if p:
            pts.append((p["lon"], p["lat"], "#ff3df5", res["ok"]["code"]))
        try:
            evs = api.events(tok, grid=code, limit=30).get("items", [])
        except api.ApiError:
            evs = []
        ev_pts = [(e["lon"], e["lat"], "#ff9f1c" if e.get("overdue") else "#2f9bff",
                   f'#{e["id"]} {state_name(e["state"])}') for e in evs if e.get("lon") is not None]
        layers.append(maps.points_layer(ev_pts, bm, name="events", radius=4))
        layers.append(maps.points_layer(pts, bm, name="point", radius=8))
    maps.render(m, layers, key=maps.map_key("disp_map", bm), height=MAP_HEIGHT,
                returned=("zoom", "center", "last_clicked"),
                on_change=_on_map_click)


def _recent_events(tok: str, g: dict) -> None:
    st.markdown(f"**{t('recent_events')}** · `{g['code']}`")
    data = api.events(tok, grid=g["code"], limit=20)
    items = data.get("items", [])
    if not items:
        st.caption(t("no_recent_events"))
        return
    cats, subs, _ = ui.catalogue_names(tok)
    rows = [{"#": e["id"], t("created_at"): ui.fmt_ts(e["created_at"]), t("state"): state_name(e["state"]),
             t("event"): f'{cats.get(e["category"], e["category"])} / {subs.get((e["category"], e["subtype"]), e["subtype"])}',
             t("overdue"): t("overdue") if e.get("overdue") else "", t("description"): e.get("description")} for e in items]
    sel = st.dataframe(rows, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                       key="disp_events_table", height=260)
    picked = sel.selection.rows if sel and sel.selection else []
    if picked:
        st.session_state["disp_event"] = items[picked[0]]["id"]
    eid = st.session_state.get("disp_event")
    if eid:
        ui.event_panel(tok, int(eid), key="disp_ev")


def _create_event(tok: str, g: dict) -> None:
    st.markdown(f"**{t('create_event')}**")
    if ui.role() not in ui.CAN_CREATE_EVENTS:
        st.caption(t("cannot_create"))
        return
    ui.show_flash("disp_create")
    c = api.catalogue(tok)
    options = [(cat["code"], s["code"]) for cat in c.get("categories", []) for s in cat.get("subtypes", [])]
    names = {(cat["code"], s["code"]): f'{cat["name"]} / {s["name"]}' for cat in c.get("categories", [])
             for s in cat.get("subtypes", [])}
    sources = c.get("sources", {})
    pt = g.get("point") or {}
    with st.form("disp_new_event", clear_on_submit=False, border=True):
        sub = st.selectbox(t("subtype"), options, format_func=lambda o: names.get(o, str(o)), key="disp_new_sub")
        src = st.selectbox(t("source"), list(sources), format_func=lambda s: sources.get(s, s),
                           index=list(sources).index("hotline_12345") if "hotline_12345" in sources else 0,
                           key="disp_new_src")
        desc = st.text_area(t("description"), key="disp_new_desc", height=80)
        addr = st.text_input(t("address"), key="disp_new_addr")
        c1, c2 = st.columns(2)
        rname = c1.text_input(t("reporter_name"), key="disp_new_rname")
        rphone = c2.text_input(t("reporter_phone"), key="disp_new_rphone")
        anon = st.checkbox(t("anonymous"), key="disp_new_anon")
        st.caption(f'WGS84 {pt.get("lon", 0):.6f}, {pt.get("lat", 0):.6f} → {g["code"]}')
        go = st.form_submit_button(t("submit_event"), type="primary", icon=":material/add_alert:")
    if not go:
        return
    body = {"category": sub[0], "subtype": sub[1], "source": src, "lon": pt.get("lon"), "lat": pt.get("lat"),
            "crs": "wgs84", "description": desc or "", "address": addr or None,
            "reporter_name": rname or None, "reporter_phone": rphone or None, "anonymous": bool(anon)}
    try:
        ev, created = api.create_event(tok, body, ui.new_idempotency_key("disp_new_event"))
    except api.ApiError as exc:
        if isinstance(exc, api.ApiUnavailable) or exc.status not in (403, 422):
            raise
        ui.show_api_error(exc)
        return
    ui.reset_idempotency_key("disp_new_event")
    msg = t("event_created", id=ev["id"], grid=ev.get("grid_code")) if created else t("event_replayed", id=ev["id"])
    ui.flash("disp_create", msg)
    st.session_state["disp_event"] = ev["id"]
    st.rerun()
