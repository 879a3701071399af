"""大屏 Big screen: the leaders' wall — fills 16:9 from 1366×768 to 3840×2160.

Sizes are in units of ``--u`` (1 px at 1920 wide, 2 px at 3840, never below 0.8 px), so the screen scales as a
whole; the map's iframe is as tall as the viewport leaves (CSS), and the map fits the jurisdiction to its real
size once mounted. The filters (今日/近7天/近30天, category) drive the KPIs, the ranking, the trend and the heatmap.

Everything live sits in one ``st.fragment(run_every=GEO_DASHBOARD_REFRESH_S)``. A refresh waits for the KPIs and
the map's data, and at most ``PANEL_WAIT_S`` more for the side panels: a slow panel (patrol coverage on a cold
API) never holds the whole screen back. The map is mounted once;
refreshes swap its layers in place, so zoom and position survive. When the API cannot be reached the last data
stays on screen under a "数据更新于 … (stale since)" badge (``[data-testid="stale-badge"]``, ``data-since``).

Test hooks: every KPI tile is ``[data-testid="kpi-<name>"]`` with the API's raw value in ``data-value``;
``[data-testid="last-refreshed"]`` carries when the refresh started (``data-ts``, epoch seconds); in the map's
iframe ``window.__geo_layers`` tells when each data layer was last drawn (see :class:`dashboard.maps.LayerHook`).
"""

from __future__ import annotations

import concurrent.futures
import time
from datetime import datetime

import streamlit as st

from dashboard import api, basemap, maps, ui
from dashboard.i18n import t, worker_role_name
from dashboard.views import bigscreen_panels as panels

WINDOWS = ["today", "7d", "30d"]
#: reads of the side panels: the screen paints without them when they are slow (see PANEL_WAIT_S)
PANELS = ("trend", "ranking", "feed", "emergency", "patrol")
#: seconds a refresh waits for a side panel's read once the KPIs and the map's data are in; a slower panel keeps
#: its previous data (or says "being computed") and fills in at a later refresh, while its read goes on
PANEL_WAIT_S = min(2.0, api.REFRESH_S / 2)
LAYERS = ["grids", "heat", "workers"]
TREND_DAYS = {"today": 7, "7d": 7, "30d": 30}

CSS = """
<style>
:root {--u: max(0.8px, calc(100vw / 1920)); --z: 1;}
@media (min-width: 2400px) {:root {--z: 1.5;}}
@media (min-width: 3200px) {:root {--z: 2;}}
/* a wall refreshes every few seconds: never fade what is shown while the next refresh is computed */
[data-stale="true"], [data-stale="true"] * {opacity: 1 !important; transition: none !important;}
.stApp {background: radial-gradient(ellipse at top, #0f2140 0%, #070d19 70%) !important;}
header[data-testid="stHeader"] {background: transparent !important; height: 0 !important;}
.block-container {padding: calc(8 * var(--u)) calc(14 * var(--u)) 0 calc(14 * var(--u)) !important;
                  max-width: 100% !important;}
.st-key-bs_head {zoom: var(--z);}
[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] {gap: calc(6 * var(--u)) !important;}
[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]:has(> .stHtml .bs-status) {
    position: absolute !important; height: 0 !important;}
.st-key-bs_head [data-testid="stHorizontalBlock"] {gap: .6rem;}
.bs-title {font-size: calc(30 * var(--u) / var(--z)); font-weight: 800; letter-spacing: .04em; color: #e8f2ff;
           text-shadow: 0 0 14px rgba(47,155,255,.65); white-space: nowrap; line-height: 1.5;}
.bs-kpis {display: grid; grid-template-columns: repeat(10, minmax(0, 1fr)); gap: calc(8 * var(--u));
          margin: calc(4 * var(--u)) 0 calc(6 * var(--u)) 0;}
.bs-kpi {background: linear-gradient(180deg, rgba(28,58,108,.62), rgba(12,26,52,.62));
         border: 1px solid rgba(80,150,255,.35); border-radius: calc(8 * var(--u));
         padding: calc(6 * var(--u)) calc(10 * var(--u)); box-shadow: inset 0 0 18px rgba(47,155,255,.14);
         min-width: 0; overflow: hidden;}
.bs-kpi .lbl {color: #9fb6d9; font-size: calc(15 * var(--u)); letter-spacing: .03em; white-space: nowrap;
              overflow: hidden; text-overflow: ellipsis;}
.bs-kpi .val {font-size: calc(34 * var(--u)); font-weight: 700; color: #eaf4ff; font-variant-numeric: tabular-nums;
              line-height: 1.15; white-space: nowrap;}
.bs-kpi .val small {font-size: .55em; color: #9fb6d9; font-weight: 600;}
.bs-kpi .sub {color: #7f93b3; font-size: calc(12 * var(--u)); white-space: nowrap; overflow: hidden;
              text-overflow: ellipsis;}
.bs-kpi.warn .val {color: #ff7b5c;}
.bs-status {position: fixed; top: calc(4 * var(--u)); right: calc(16 * var(--u)); z-index: 999990;
              font-size: calc(13 * var(--u)); max-width: 40vw; text-align: right;}
.bs-live {color: #7fdca4;}
.bs-stale {display: inline-block; background: #5c2a18; color: #ffd2b8; border: 1px solid #ff7b5c;
           border-radius: 6px; padding: 2px 10px; font-weight: 700; white-space: normal;}
.bs-meta {display: flex; justify-content: space-between; color: #7f93b3; font-size: calc(12 * var(--u));
          margin-top: calc(2 * var(--u));}
.st-key-bs_map_box iframe {height: calc(100vh - 212 * var(--u) - 52px * var(--z)) !important;
                           min-height: 320px;}
.st-key-bs_track_box {zoom: var(--z);}
/* the side columns never push the page past one screen: as tall as the map and its legend */
.st-key-bs_body [data-testid="stColumn"]:not(:nth-child(2)) {max-height: calc(100vh - 190 * var(--u) - 52px * var(--z));
                                           overflow: hidden;}
@media (max-width: 1599px) {  /* 1366×768 and the like: the legend takes two lines, side lists are shorter */
  .st-key-bs_map_box iframe {height: calc(100vh - 212 * var(--u) - 52px - 22px) !important;}
  .xs-hide {display: none !important;}
}
.st-key-bs_body [data-testid="stHorizontalBlock"] {gap: calc(12 * var(--u)) !important;}
.bs-legend {display: flex; gap: calc(6 * var(--u)) calc(22 * var(--u)); flex-wrap: wrap; align-items: center;
            font-size: calc(13 * var(--u)); color: #b8c2d3; margin-top: calc(4 * var(--u));}
.bs-legend i {display: inline-block; width: 1em; height: 1em; border-radius: .2em; margin: 0 .3em 0 .5em;
              vertical-align: -.15em;}
.bs-legend i.dot {border-radius: 50%;}
.bs-legend .h {color: #8a94a6;}
</style>
"""

KIOSK_CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
header[data-testid="stHeader"] {display: none !important;}
</style>
"""


def _rate(v) -> str:
    return ui.fmt_rate(v)


def _kpi_rows(k: dict) -> list[tuple[str, str, object, str, str | None, bool, dict]]:
    """(test name, label, raw value, shown text, sub line, warn, extra data attributes) per tile."""
    counts = k.get("counts") or {}
    grids = k.get("grids") or {}
    workers = k.get("workers") or {}
    resolved = None
    if "resolved" in counts or "closed" in counts:
        resolved = int(counts.get("resolved") or 0) + int(counts.get("closed") or 0)
    online, total = workers.get("online"), workers.get("total")
    wtext = "—" if online is None else f'{online:,}<small> / {ui.fmt_num(total)}</small>'
    gsub = None
    if grids:
        comp = grids.get("comprehensive", grids.get("standard"))  # 综合 = standard + rural
        gsub = t("kpi_grids_sub", std=ui.fmt_num(comp), exc=ui.fmt_num(grids.get("exclusive")))
    return [
        ("events", t("kpi_events"), k.get("events"), ui.esc(ui.fmt_num(k.get("events"))),
         t("kpi_today_sub", n=ui.fmt_num(k.get("events_today"))), False, {}),
        ("reported", t("kpi_reported"), counts.get("reported"), ui.esc(ui.fmt_num(counts.get("reported"))),
         None, False, {}),
        ("in_progress", t("kpi_in_progress"), counts.get("in_progress"),
         ui.esc(ui.fmt_num(counts.get("in_progress"))), None, False, {}),
        ("resolved", t("kpi_resolved"), resolved, ui.esc(ui.fmt_num(resolved)), None, False, {}),
        ("dispatch_rate", t("kpi_dispatch_rate"), k.get("dispatch_rate"), ui.esc(_rate(k.get("dispatch_rate"))),
         None, False, {}),
        ("resolution_rate", t("kpi_resolution_rate"), k.get("resolution_rate"),
         ui.esc(_rate(k.get("resolution_rate"))), None, False, {}),
        ("satisfaction", t("kpi_satisfaction"), k.get("satisfaction"), ui.esc(ui.fmt_sat(k.get("satisfaction"))),
         None, False, {}),
        ("overdue", t("kpi_overdue"), k.get("overdue"), ui.esc(ui.fmt_num(k.get("overdue"))), None,
         (k.get("overdue") or 0) > 0, {}),
        ("grids", t("kpi_grids"), grids.get("total", k.get("grids_total")),
         ui.esc(ui.fmt_num(grids.get("total", k.get("grids_total")))), gsub, False,
         {"comprehensive": grids.get("comprehensive", grids.get("standard")), "exclusive": grids.get("exclusive")}),
        ("workers_online", t("kpi_workers_online"), online, wtext, None, False, {"total": total}),
    ]


def render() -> None:
    st.html(CSS)
    a = ui.auth() or {}
    if a.get("kiosk"):
        st.html(KIOSK_CSS)
    _page()


@ui.guard
def _page() -> None:
    tok = ui.token()
    try:
        sc = ui.scope(tok)
        st.session_state["bs_scope"] = sc
    except api.ApiUnavailable:
        sc = st.session_state.get("bs_scope")
        if sc is None:
            raise
    root = sc["root"] or {}
    try:
        cats, _, _ = ui.catalogue_names(tok)
    except api.ApiUnavailable:
        cats = {}
    with st.container(key="bs_head"):
        c_title, c_win, c_cat, c_layers = st.columns([2.6, 1.2, 1.2, 1.6], vertical_alignment="center")
        c_title.html(f'<div class="bs-title" data-testid="bs-title">'
                     f'{ui.esc(t("bs_title", name=root.get("name", "")))}</div>')
        labels = {"today": t("win_today"), "7d": t("win_7d"), "30d": t("win_30d")}
        window = c_win.segmented_control(t("window"), WINDOWS, format_func=labels.get, default="7d",
                                         key="bs_window", label_visibility="collapsed") or "7d"
        category = c_cat.selectbox(t("category"), [None, *cats], key="bs_category", label_visibility="collapsed",
                                   placeholder=t("all_categories"),
                                   format_func=lambda c: t("all_categories") if c is None else f"{cats[c]} ({c})")
        layer_labels = {"grids": t("layer_grids"), "heat": t("layer_heat"), "workers": t("layer_workers")}
        layers = c_layers.pills("layers", LAYERS, selection_mode="multi", default=LAYERS, key="bs_layers",
                                format_func=lambda k: layer_labels[k].split("（")[0].split(" (")[0],
                                label_visibility="collapsed")
    if ui.role() in ("leader", "admin") and not (ui.auth() or {}).get("kiosk"):
        panels.emergency_switch(tok)
    live(window, category, tuple(layers or ()))


@st.fragment(run_every=api.REFRESH_S)
def live(window: str, category: str | None, layers: tuple[str, ...]) -> None:
    _live(window, category, layers)


def _optional(fn):
    """A read that may not exist on this API yet (404/405/422: None); the API being down still raises."""
    def run():
        try:
            return fn()
        except api.ApiUnavailable:
            raise
        except api.ApiError as exc:
            if exc.status == 401:
                raise
            return None
    return run


def _fetch(tok: str, sc: dict, window: str, category: str | None, layers: tuple[str, ...]) -> dict:
    """Every read of one refresh, concurrently; returns plain values (kept for the stale view)."""
    frm = ui.window_start(window)
    bbox = sc["bbox"]
    today = ui.now_local().date().isoformat()  # track and patrol days are calendar days in GEO_TZ
    rank_by = st.session_state.get("bs_rank_by") or "street"
    calls = {"kpis": lambda: api.kpis(tok, frm, category),
             "trend": _optional(lambda: api.trend(tok, TREND_DAYS[window], category)),
             "ranking": _optional(lambda: api.ranking(tok, rank_by, frm, category)),
             "feed": _optional(lambda: api.feed(tok, limit=12)),
             "emergency": _optional(lambda: api.emergency(tok)),
             "patrol": _optional(lambda: api.patrol_coverage(tok, today)),
             "positions": _optional(lambda: api.positions(tok))}
    if bbox and sc["published"]:
        calls["grids"] = lambda: api.published_grids(tok, None, maps.map_zoom_for(bbox), sc["published"])
        calls["open"] = lambda: api.open_by_grid(tok)
    if bbox and "heat" in layers:
        res = 9 if (bbox[2] - bbox[0]) < 0.5 else 8
        calls["heat"] = _optional(lambda: api.heatmap(tok, res, frm, category))
    got = api.prefetch(calls)
    data = {name: f() for name, f in got.items() if name not in PANELS}  # the KPIs and the map: wait for them
    # a slow panel keeps its previous data only if that was read for the same filters (never a 30-day trend
    # under the 7-day window)
    keys = {"trend": (window, category), "ranking": (rank_by, window, category)}
    last = st.session_state.get("bs_last") or {}
    prev = {n: v for n, v in (last.get("data") or {}).items() if (last.get("keys") or {}).get(n) == keys.get(n)}
    data["keys"] = keys
    pending = set()
    deadline = time.monotonic() + PANEL_WAIT_S
    for name in (n for n in PANELS if n in got):
        try:
            data[name] = got[name](timeout=max(0.0, deadline - time.monotonic()))
        except (concurrent.futures.TimeoutError, api.ApiUnavailable) as exc:
            if isinstance(exc, api.ApiUnavailable) and exc.code != "timeout":
                raise  # the API is down (the KPIs' read came back a moment before): the stale view
            ui.log.info("big screen: %s not in yet (%s); previous data kept", name, type(exc).__name__)
            data[name] = prev.get(name)
            if data[name] is None:
                pending.add(name)
    data["pending"] = sorted(pending)
    em = data.get("emergency") or {}
    if em.get("active"):
        data["emergency_grids"] = _optional(lambda: api.emergency_grids(tok))()
    wid = st.session_state.get("bs_track_worker")
    if wid:
        data["track"] = _optional(lambda: api.track(tok, int(wid), today))()
    code = st.session_state.get("bs_grid")
    if code:
        data["panel"] = panels.grid_panel_data(tok, code)
    return data


@ui.guard
def _live(window: str, category: str | None, layers: tuple[str, ...]) -> None:
    t0 = time.time()
    tok = ui.token()
    stale_since = None
    try:
        sc = ui.scope(tok)
        data = _fetch(tok, sc, window, category, layers)
        st.session_state["bs_last"] = {"data": data, "keys": data.pop("keys"), "scope": sc, "at": t0}
    except api.ApiUnavailable as exc:
        last = st.session_state.get("bs_last")
        if not last:
            raise
        ui.log.warning("big screen: API unavailable, showing data of %s: %s", last["at"], exc.message)
        data, sc, stale_since = last["data"], last["scope"], last["at"]
    st.session_state["bs_pending"] = set(data.get("pending") or ())
    _status(t0, stale_since)
    _tiles(data["kpis"], window)
    if not sc["published"]:
        st.info(t("no_plan"), icon=":material/map:")
    with st.container(key="bs_body"):
        c_left, c_map, c_right = st.columns([1.05, 2.75, 1.1])
        with c_map:
            clicked = _map(sc, data, layers)
        if clicked:
            st.session_state["bs_grid"] = clicked
            if stale_since is None:
                try:
                    data["panel"] = panels.grid_panel_data(tok, clicked)
                except api.ApiUnavailable:
                    data["panel"] = None
        with c_left:
            panels.ranking(data.get("ranking"))
            panels.evaluation(data.get("kpis"))
            panels.trend(data.get("trend"), TREND_DAYS[window])
            panels.track_picker(data.get("positions") or [], data.get("track"))
        with c_right:
            panels.emergency(data.get("emergency"), data.get("emergency_grids"))
            panels.grid_panel(data.get("panel"))
            busy = bool((data.get("emergency") or {}).get("active")) + bool(data.get("panel"))
            panels.feed(data.get("feed"), limit=7 - 2 * busy)  # shorter lists when more panels share the column
            panels.patrol(data.get("patrol"), limit=4 - busy)
    st.html(f'<div class="bs-meta"><span data-testid="last-refreshed" data-ts="{t0:.3f}" '
            f'data-server-ms="{1000 * (time.time() - t0):.0f}">'
            f'{ui.esc(t("last_refreshed"))}: {ui.now_local().strftime("%Y-%m-%d %H:%M:%S")}</span>'
            f'<span>{ui.esc(t("refresh_every", s=f"{api.REFRESH_S:g}"))} · {ui.esc(api.base_url())}</span></div>')


def _status(t0: float, stale_since: float | None) -> None:
    if stale_since is None:
        st.html(f'<div class="bs-status"><span class="bs-live" data-testid="live-badge">● '
                f'{ui.esc(t("bs_live"))}</span></div>')
        return
    since = datetime.fromtimestamp(stale_since, ui.TZ).strftime("%H:%M:%S")
    st.html(f'<div class="bs-status"><span class="bs-stale" data-testid="stale-badge" data-since="{stale_since:.3f}">'
            f'⚠ {ui.esc(t("bs_stale", since=since))}</span></div>')


def _tiles(k: dict, window: str) -> None:
    labels = {"today": t("win_today"), "7d": t("win_7d"), "30d": t("win_30d")}
    cells = []
    for name, label, raw, text, sub, warn, extra in _kpi_rows(k):
        attrs = "".join(f' data-{a}="{"null" if v is None else ui.esc(v)}"' for a, v in extra.items())
        if name == "events":
            label = f"{label}（{labels[window]}）"
        cells.append(f'<div class="bs-kpi{" warn" if warn else ""}" data-testid="kpi-{name}" '
                     f'data-value="{"null" if raw is None else ui.esc(raw)}"{attrs}>'
                     f'<div class="lbl">{ui.esc(label)}</div><div class="val">{text}</div>'
                     + (f'<div class="sub">{ui.esc(sub)}</div>' if sub else "") + '</div>')
    st.html(f'<div class="bs-kpis" data-testid="kpi-tiles" data-window="{window}">{"".join(cells)}</div>')


def own_basemap(tok: str) -> tuple[str, dict] | None:
    """The project's vector-tile basemap for a map without provider tiles (URL and auth headers)."""
    return basemap.tiles_url(api.public_url()), api.auth_headers(tok)


def _map(sc: dict, data: dict, layers: tuple[str, ...]) -> str | None:
    """The map with its data layers; returns the code of a grid the user just clicked (or None)."""
    bm = maps.basemap_settings()
    bbox = sc["bbox"]
    if not bbox:
        st.info(t("no_plan"))
        return None
    m = maps.base_map(bbox, bm, background=basemap.STYLE["bg"], width_px=1400, height_px=800,
                      own_basemap=None if bm.url else own_basemap(ui.token()), fill_frame=True, fit=True)
    fgs = []
    heat = (data.get("heat") or {}).get("cells", []) if "heat" in layers else []
    if "heat" in layers:  # below the grids: a click on the map is a click on a grid (its panel opens)
        fgs.append(maps.heat_layer(heat, bm, name="heat", tooltip_alias=t("legend_heat")))
    if "grids" in data and "grids" in layers:
        fgs.append(maps.grids_layer(data["grids"], bm, name="grids", open_counts=data["open"], fill_opacity=0.10,
                                    highlight={st.session_state.get("bs_grid")} - {None},
                                    tooltip_fields=(("code", t("grid_code")), ("name", t("grid_name")),
                                                    ("open", t("legend_open")))))
    pos = data.get("positions") or []
    if "workers" in layers:
        fgs.append(maps.workers_layer(pos, bm, name="workers", radius=6,
                                      label=lambda p: f'{p["name"]} · {worker_role_name(p["role"])}'))
    tr = data.get("track") or {}
    if tr.get("fixes"):
        fgs.append(maps.track_layer(tr["fixes"], bm, name="track", time_label=lambda f: ui.fmt_ts(f.get("ts"))[11:]))
    with st.container(key="bs_map_box"):
        out = maps.render(m, fgs, key=maps.map_key("bs_map", bm), height=800,
                          returned=("zoom", "center", "last_active_drawing"))
    _legend(heat, pos, "workers" in layers)
    drawn = (out or {}).get("last_active_drawing") or {}
    code = (drawn.get("properties") or {}).get("code")
    seen = st.session_state.get("bs_clicked_seen")
    if code and code != seen:
        st.session_state["bs_clicked_seen"] = code
        return code
    return None


def _legend(heat: list[dict], pos: list[dict], show_workers: bool) -> None:
    open_items = []
    for i, (hi, c) in enumerate(maps.OPEN_BUCKETS):
        lab = "0" if i == 0 else (f"≤{hi}" if hi != float("inf") else f">{maps.OPEN_BUCKETS[-2][0]}")
        open_items.append(f'<i style="background:{c}"></i>{ui.esc(lab)}')
    heat_items = [f'<i style="background:{c}"></i>{lo if lo == hi else f"{lo}–{hi}"}'
                  for c, lo, hi, _ in maps.heat_buckets(heat)]
    counts = {"on": 0, "outside": 0, "off": 0}
    for p in pos:
        counts[maps.worker_status(p)] += 1
    worker_items = [f'<i class="dot" style="background:{maps.WORKER_COLOURS[s]}"></i>{ui.esc(t(lab))} '
                    f'<b data-testid="legend-workers-{s}">{counts[s]}</b>'
                    for s, lab in (("on", "legend_on_duty"), ("outside", "legend_outside"),
                                   ("off", "legend_off_duty"))]
    parts = [f'<span><span class="h">{ui.esc(t("legend_open"))}</span>{"".join(open_items)}</span>',
             f'<span data-testid="legend-heat"><span class="h">{ui.esc(t("legend_heat_counts"))}</span>'
             f'{"".join(heat_items) or ui.esc(t("no_events"))}</span>']
    if show_workers:
        parts.append(f'<span><span class="h">{ui.esc(t("layer_workers"))}</span>{"".join(worker_items)}</span>')
    st.html(f'<div class="bs-legend" data-testid="bs-legend">{"".join(parts)}</div>')
