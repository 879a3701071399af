"""大屏 Big screen: the leaders' wall (1920×1080, dark).

Everything live sits in one ``st.fragment(run_every=GEO_DASHBOARD_REFRESH_S)``: KPI tiles, the map's data
layers (grids coloured by open events, H3 heatmap, worker positions), top grids and the trend. The map
itself is mounted once; refreshes swap its layers in place, so zoom and position survive.

Test hooks: every KPI tile is ``[data-testid="kpi-<name>"]`` with the API's raw value in ``data-value``;
``[data-testid="last-refreshed"]`` carries when the refresh started (``data-ts``, epoch seconds) and how long
the server took to build it (``data-server-ms``); in the map's iframe ``window.__geo_layers`` tells when each
data layer was last drawn (see :class:`dashboard.maps.LayerHook`).
"""

from __future__ import annotations

import time

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import api, maps, ui
from dashboard.i18n import t, worker_role_name

KPIS = [  # (name in /v1/stats/kpis, label key, formatter, warn when > 0)
    ("events_today", "kpi_events_today", ui.fmt_num, False),
    ("dispatch_rate", "kpi_dispatch_rate", ui.fmt_rate, False),
    ("resolution_rate", "kpi_resolution_rate", ui.fmt_rate, False),
    ("satisfaction", "kpi_satisfaction", ui.fmt_sat, False),
    ("overdue", "kpi_overdue", ui.fmt_num, True),
    ("workers_on_duty", "kpi_workers_on_duty", ui.fmt_num, False),
]
WINDOWS = ["today", "7d", "30d"]
LAYERS = ["grids", "heat", "workers"]
MAP_HEIGHT = 770

CSS = """
<style>
.stApp {background: radial-gradient(ellipse at top, #0f2140 0%, #070d19 70%) !important;}
header[data-testid="stHeader"] {background: transparent !important;}
.block-container {padding: 1.1rem 1.2rem .4rem 1.2rem !important; max-width: 100% !important;}
.bs-title {font-size: 30px; font-weight: 800; letter-spacing: .06em; color: #e8f2ff;
           text-shadow: 0 0 14px rgba(47,155,255,.65); white-space: nowrap; overflow: hidden;
           text-overflow: ellipsis; line-height: 2.6rem;}
.bs-kpis {display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; margin: 2px 0 6px 0;}
.bs-kpi {background: linear-gradient(180deg, rgba(28,58,108,.62), rgba(12,26,52,.62));
         border: 1px solid rgba(80,150,255,.35); border-radius: 10px; padding: 8px 16px 6px 16px;
         box-shadow: inset 0 0 18px rgba(47,155,255,.14);}
.bs-kpi .lbl {color: #9fb6d9; font-size: 15px; letter-spacing: .05em;}
.bs-kpi .val {font-size: 36px; font-weight: 700; color: #eaf4ff; font-variant-numeric: tabular-nums;
              line-height: 1.15;}
.bs-kpi.warn .val {color: #ff7b5c;}
.bs-meta {display: flex; justify-content: space-between; color: #7f93b3; font-size: 13px; margin-top: 2px;}
.bs-panel-title {font-size: 17px; font-weight: 700; color: #cfe3ff; border-left: 4px solid #2f9bff;
                 padding-left: 8px; margin: 2px 0 6px 0;}
.bs-top {display: grid; grid-template-columns: 1.6rem 1fr auto; gap: 3px 8px; font-size: 14px;
         align-items: center;}
.bs-top .rk {color: #7f93b3; text-align: right;}
.bs-top .nm {white-space: nowrap; overflow: hidden; text-overflow: ellipsis; color: #dce8fa;}
.bs-top .bar {grid-column: 2 / 4; height: 5px; border-radius: 3px; background: rgba(255,255,255,.07);
              margin-bottom: 4px;}
.bs-top .bar > span {display: block; height: 100%; border-radius: 3px;
                     background: linear-gradient(90deg, #2f9bff, #ff7b5c);}
.bs-top .n {color: #eaf4ff; font-variant-numeric: tabular-nums;}
.bs-top .o {color: #ff9f80; font-size: 12px; margin-left: 6px;}
</style>
"""


def render() -> None:
    st.html(CSS)
    _page()


@ui.guard
def _page() -> None:
    tok = ui.token()
    sc = ui.scope(tok)
    root = sc["root"] or {}
    cats, _, _ = ui.catalogue_names(tok)

    c_title, c_win, c_cat, c_layers = st.columns([2.3, 1.05, 1.0, 1.55], vertical_alignment="center")
    c_title.html(f'<div class="bs-title" data-testid="bs-title">'
                 f'{ui.esc(t("bs_title", name=root.get("name", "")))}</div>')
    labels = {"today": t("win_today"), "7d": t("win_7d"), "30d": t("win_30d")}
    window = c_win.segmented_control(t("window"), WINDOWS, format_func=labels.get, default="7d", key="bs_window",
                                     label_visibility="collapsed") or "7d"
    category = c_cat.selectbox(t("category"), [None, *cats], key="bs_category", label_visibility="collapsed",
                               placeholder=t("all_categories"),
                               format_func=lambda c: t("all_categories") if c is None else f"{cats[c]} ({c})")
    layer_labels = {"grids": t("layer_grids"), "heat": t("layer_heat"), "workers": t("layer_workers")}
    layers = c_layers.pills("layers", LAYERS, selection_mode="multi", default=LAYERS, key="bs_layers",
                            format_func=lambda k: layer_labels[k].split("（")[0].split(" (")[0],
                            label_visibility="collapsed")
    live(window, category, tuple(layers or ()))


@st.fragment(run_every=api.REFRESH_S)
def live(window: str, category: str | None, layers: tuple[str, ...]) -> None:
    _live(window, category, layers)


@ui.guard
def _live(window: str, category: str | None, layers: tuple[str, ...]) -> None:
    t0 = time.time()
    tok = ui.token()
    sc = ui.scope(tok)
    frm = ui.window_start(window)
    bbox = sc["bbox"]
    calls = {"kpis": lambda: api.kpis(tok), "top": lambda: api.top_grids(tok, 10, frm),
             "trend": lambda: api.trend(tok, 30)}
    if bbox and "grids" in layers and sc["published"]:
        calls["grids"] = lambda: api.published_grids(tok, None, maps.map_zoom_for(bbox), sc["published"])
        calls["open"] = lambda: api.open_by_grid(tok)
    if bbox and "heat" in layers:
        res = 9 if (bbox[2] - bbox[0]) < 0.5 else 8
        calls["heat"] = lambda: api.heatmap(tok, res, frm, category)
    if bbox and "workers" in layers:
        calls["workers"] = lambda: api.positions(tok)
    data = api.prefetch(calls)  # all reads of this refresh at once
    _tiles(data["kpis"]())
    if not sc["published"]:
        st.info(t("no_plan"), icon=":material/map:")
    c_map, c_side = st.columns([2.8, 1], gap="medium")
    with c_map:
        _map(sc, data)
    with c_side:
        _top_grids(data["top"]())
        _trend(data["trend"]())
    now = ui.now_local()
    st.html(f'<div class="bs-meta"><span data-testid="last-refreshed" data-ts="{t0:.3f}" '
            f'data-server-ms="{1000 * (time.time() - t0):.0f}">'
            f'{ui.esc(t("last_refreshed"))}: {now.strftime("%Y-%m-%d %H:%M:%S")}</span>'
            f'<span>{ui.esc(t("refresh_every", s=f"{api.REFRESH_S:g}"))} · {ui.esc(t("kpi_window_note"))} · '
            f'{ui.esc(api.base_url())}</span></div>')


def _tiles(k: dict) -> None:
    cells = []
    for name, label, fmt, warn in KPIS:
        v = k.get(name)
        cls = "bs-kpi warn" if warn and (v or 0) > 0 else "bs-kpi"
        raw = "null" if v is None else v
        cells.append(f'<div class="{cls}" data-testid="kpi-{name}" data-value="{raw}">'
                     f'<div class="lbl">{ui.esc(t(label))}</div><div class="val">{ui.esc(fmt(v))}</div></div>')
    st.html(f'<div class="bs-kpis" data-testid="kpi-tiles">{"".join(cells)}</div>')


def _map(sc: dict, data: dict) -> None:
    bm = maps.basemap_settings()
    bbox = sc["bbox"]
    if not bbox:
        st.info(t("no_plan"))
        return
    m = maps.base_map(bbox, bm, background="#081426", width_px=1150, height_px=MAP_HEIGHT)
    fgs = []
    notes = []
    if "grids" in data:
        fgs.append(maps.grids_layer(data["grids"](), bm, name="grids", open_counts=data["open"](), fill_opacity=0.10,
                                    tooltip_fields=(("code", t("grid_code")), ("name", t("grid_name")),
                                                    ("open", t("legend_open")))))
    if "heat" in data:
        hm = data["heat"]()
        if not hm.get("cells"):
            notes.append(t("no_events"))
        fgs.append(maps.heat_layer(hm.get("cells", []), bm, name="heat", tooltip_alias=t("legend_heat")))
    if "workers" in data:
        pos = data["workers"]()
        if not pos:
            notes.append(t("no_workers"))

        def label(p):
            return f'{p["name"]} · {worker_role_name(p["role"])}'

        fgs.append(maps.workers_layer(pos, bm, name="workers", label=label))
    with st.container(key="bs_map_box"):
        maps.render(m, fgs, key=maps.map_key("bs_map", bm), height=MAP_HEIGHT)
    items = [(c, f"≤{hi}" if hi != float("inf") else f">{maps.OPEN_BUCKETS[-2][0]}")
             for hi, c in maps.OPEN_BUCKETS]
    items[0] = (maps.OPEN_BUCKETS[0][1], "0")
    leg = ui.legend(items, title=t("legend_open"))
    leg2 = ui.legend([(c, "") for c in maps.HEAT_COLOURS], title=t("legend_heat") + " (log)")
    leg3 = ui.legend([(maps.WORKER_COLOURS["on"], t("legend_on_duty")),
                      (maps.WORKER_COLOURS["outside"], t("legend_outside")),
                      (maps.WORKER_COLOURS["off"], t("legend_off_duty"))], dots=True)
    note = f'<span class="geo-muted">{ui.esc(" · ".join(notes))}</span>' if notes else ""
    st.html(f'<div style="display:flex;gap:1.6rem;flex-wrap:wrap;align-items:center" data-testid="bs-legend">'
            f'{leg}{leg2}{leg3}{note}</div>')


def _top_grids(rows: list[dict]) -> None:
    st.html(f'<div class="bs-panel-title">{ui.esc(t("top_grids"))}</div>')
    if not rows:
        st.caption(t("no_events"))
        return
    mx = max(r["events"] for r in rows) or 1
    parts = []
    for i, r in enumerate(rows, 1):
        w = 100 * r["events"] / mx
        parts.append(f'<span class="rk">{i}</span><span class="nm" title="{ui.esc(r["grid_code"])}">'
                     f'{ui.esc(r.get("name") or r["grid_code"])}</span>'
                     f'<span><span class="n">{r["events"]}</span><span class="o">{r["open"]} {ui.esc(t("open_unit"))}'
                     f'</span></span><span></span><span class="bar"><span style="width:{w:.0f}%"></span></span>')
    st.html(f'<div class="bs-top" data-testid="top-grids">{"".join(parts)}</div>')


def _trend(rows: list[dict]) -> None:
    st.html(f'<div class="bs-panel-title" style="margin-top:10px">{ui.esc(t("trend"))}</div>')
    if not rows:
        st.caption(t("no_events"))
        return
    df = pd.DataFrame(rows)
    df["day"] = pd.to_datetime(df["day"])
    long = df.melt("day", ["created", "resolved"], var_name="kind", value_name="n")
    names = {"created": t("trend_created"), "resolved": t("trend_resolved")}
    long["kind"] = long["kind"].map(names)
    chart = alt.Chart(long).mark_line(strokeWidth=2.2, interpolate="monotone").encode(
        x=alt.X("day:T", title=None, axis=alt.Axis(format="%m-%d", labelColor="#9fb6d9", tickCount=6, grid=False)),
        y=alt.Y("n:Q", title=None, axis=alt.Axis(labelColor="#9fb6d9", gridColor="rgba(255,255,255,.08)")),
        color=alt.Color("kind:N", title=None, scale=alt.Scale(domain=list(names.values()), range=["#2f9bff", "#2ecc71"]),
                        legend=alt.Legend(orient="top", labelColor="#cfe3ff")),
        tooltip=[alt.Tooltip("day:T", format="%Y-%m-%d"), "kind:N", "n:Q"],
    ).properties(height=270, background="transparent").configure_view(strokeOpacity=0)
    st.altair_chart(chart, width="stretch")
