"""Side panels of the big screen: ranking, trend, live feed, grid panel, 平急转换, 巡查覆盖率, track replay.

Each takes the API's answer (``None`` when the running API does not offer the endpoint yet, which is said in
words — the screen never invents numbers) and draws HTML sized in ``--u`` units (see :mod:`bigscreen`).
"""

from __future__ import annotations

import streamlit as st

from dashboard import api, ui
from dashboard.i18n import kind_name, t, worker_role_name

CSS_DONE = "bs_panels_css"

CSS = """
<style>
.bs-panel {background: rgba(12,26,52,.55); border: 1px solid rgba(80,150,255,.22); border-radius: calc(8 * var(--u));
           padding: calc(6 * var(--u)) calc(10 * var(--u)); margin-bottom: calc(8 * var(--u));}
.bs-pt {font-size: calc(16 * var(--u)); font-weight: 700; color: #cfe3ff; border-left: calc(4 * var(--u)) solid #2f9bff;
        padding-left: calc(8 * var(--u)); margin: 0 0 calc(5 * var(--u)) 0; display: flex; justify-content: space-between;}
.bs-pt small {color: #7f93b3; font-weight: 400; font-size: calc(12 * var(--u));}
.bs-rows {display: grid; grid-template-columns: calc(20 * var(--u)) minmax(0, 1fr) auto; gap: calc(2 * var(--u)) calc(7 * var(--u));
          font-size: calc(14 * var(--u)); align-items: center; color: #dce8fa;}
.bs-rows .rk {color: #7f93b3; text-align: right;}
.bs-rows .nm {white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}
.bs-rows .n {font-variant-numeric: tabular-nums; white-space: nowrap;}
.bs-rows .n small {color: #ff9f80; margin-left: .4em; font-size: .85em;}
.bs-rows .bar {grid-column: 2 / 4; height: calc(4 * var(--u)); border-radius: 3px; background: rgba(255,255,255,.07);
               margin-bottom: calc(3 * var(--u));}
.bs-rows .bar > span {display: block; height: 100%; border-radius: 3px; background: linear-gradient(90deg, #2f9bff, #ff7b5c);}
.bs-feed {font-size: calc(13.5 * var(--u)); color: #dce8fa; display: grid; grid-template-columns: auto auto minmax(0, 1fr);
          gap: calc(3 * var(--u)) calc(7 * var(--u)); align-items: center;}
.bs-feed .k {border-radius: calc(4 * var(--u)); padding: 0 calc(5 * var(--u)); font-size: calc(12 * var(--u)); white-space: nowrap;}
.bs-feed .k.new {background: #173d6a; color: #cfe3ff;} .bs-feed .k.urgent {background: #7a1f2b; color: #ffd1d1;}
.bs-feed .k.overdue {background: #6a3c12; color: #ffd9a8;}
.bs-feed .tm {color: #7f93b3; font-variant-numeric: tabular-nums;}
.bs-feed .tx {white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}
.bs-kv {display: grid; grid-template-columns: max-content 1fr; gap: calc(2 * var(--u)) calc(10 * var(--u));
        font-size: calc(14 * var(--u)); color: #dce8fa;}
.bs-kv .k {color: #8a94a6;}
.bs-em {border-color: #ff7b5c; background: rgba(92,42,24,.55);}
.bs-note {color: #7f93b3; font-size: calc(13 * var(--u));}
.bs-trend img {width: 100%; height: auto; display: block;}
.st-key-bs_side_widgets {zoom: var(--z);}
</style>
"""


def _css() -> None:
    st.html(CSS)


def _title(text: str, note: str = "") -> str:
    return f'<div class="bs-pt"><span>{ui.esc(text)}</span><small>{ui.esc(note)}</small></div>'


def _xs(i: int, keep: int) -> str:
    """Class that hides the rows after the first *keep* on small screens (1366×768)."""
    return " xs-hide" if i >= keep else ""


def _unavailable(title: str, testid: str) -> None:
    """A panel without data: still being computed by the API (its read did not answer within the big screen's
    wait, see ``bigscreen.PANEL_WAIT_S``; it fills in at a later refresh), or not offered by this API."""
    if testid in (st.session_state.get("bs_pending") or ()):
        st.html(f'<div class="bs-panel" data-testid="{testid}" data-available="pending">{_title(title)}'
                f'<div class="bs-note">{ui.esc(t("bs_pending"))}</div></div>')
        return
    st.html(f'<div class="bs-panel" data-testid="{testid}" data-available="false">{_title(title)}'
            f'<div class="bs-note">{ui.esc(t("bs_endpoint_missing"))}</div></div>')


# --------------------------------------------------------------------------- left column


def ranking(data: dict | None) -> None:
    """Ranking by street or community (考评 score, else events) over the filter's window."""
    _css()
    by = st.session_state.get("bs_rank_by") or "street"
    with st.container(key="bs_side_widgets"):
        st.segmented_control(t("bs_rank_by"), ["street", "community"], key="bs_rank_by", default="street",
                             format_func={"street": t("street"), "community": t("community")}.get,
                             label_visibility="collapsed")
    title = t("bs_ranking", by=t(by))
    if data is None:
        _unavailable(title, "ranking")
        return
    items = (data.get("items") or [])[:8]
    if not items:
        st.html(f'<div class="bs-panel" data-testid="ranking" data-by="{by}">{_title(title)}'
                f'<div class="bs-note">{ui.esc(t("no_events"))}</div></div>')
        return
    key = "score" if any(i.get("score") is not None for i in items) else "due"
    mx = max(float(i.get(key) or 0) for i in items) or 1.0
    rows = []
    for i, it in enumerate(items, 1):
        v = it.get(key)
        shown = "—" if v is None else (f"{float(v):.1f}" if key == "score" else ui.fmt_num(v))
        rate = it.get("on_time_closing_rate")
        rows.append(f'<span class="rk">{it.get("rank", i)}</span><span class="nm" title="{ui.esc(it.get("code"))}">'
                    f'{ui.esc(it.get("name") or it.get("code"))}</span><span class="n">{ui.esc(shown)}'
                    f'<small>{ui.esc(t("bs_on_time", r=ui.fmt_rate(rate)))}</small></span>'
                    f'<span></span><span class="bar"><span style="width:{100 * float(v or 0) / mx:.0f}%"></span></span>')
    st.html(f'<div class="bs-panel" data-testid="ranking" data-by="{by}" data-n="{len(items)}">'
            f'{_title(title, t("bs_score_note") if key == "score" else "")}<div class="bs-rows">{"".join(rows)}</div></div>')


EVALUATION = [("closing_rate", "ev_closing_rate"), ("on_time_closing_rate", "ev_on_time"),
              ("dispatch_accuracy", "ev_dispatch_accuracy"), ("rework_rate", "ev_rework_rate"),
              ("satisfaction_rate", "ev_satisfaction_rate")]


def evaluation(k: dict | None) -> None:
    """考评 as the standards define it, over 应结案 of the window (``kpis.evaluation``)."""
    ev = (k or {}).get("evaluation")
    title = t("ev_title")
    if not ev:
        _unavailable(title, "evaluation")
        return
    cells = "".join(f'<span class="k">{ui.esc(t(label))}</span><span data-testid="ev-{name}" '
                    f'data-value="{"null" if ev.get(name) is None else ev[name]}">{ui.esc(ui.fmt_rate(ev.get(name)))}</span>'
                    for name, label in EVALUATION)
    note = t("ev_note", due=ui.fmt_num(ev.get("due")), closed=ui.fmt_num(ev.get("closed")))
    st.html(f'<div class="bs-panel" data-testid="evaluation">{_title(title, note)}<div class="bs-kv">{cells}</div></div>')


def trend(rows: list[dict] | None, days: int) -> None:
    """Created / resolved per day as an inline SVG (scales with the screen, no fixed pixel height)."""
    title = t("bs_trend", n=days)
    if rows is None:
        _unavailable(title, "trend")
        return
    if not rows:
        st.html(f'<div class="bs-panel" data-testid="trend">{_title(title)}<div class="bs-note">'
                f'{ui.esc(t("no_events"))}</div></div>')
        return
    w, h, pl, pb, pt = 320, 150, 30, 18, 8
    mx = max(max(r["created"], r["resolved"]) for r in rows) or 1
    n = len(rows)

    def xy(i, v):
        x = pl + (w - pl - 6) * (i / max(1, n - 1))
        y = pt + (h - pt - pb) * (1 - v / mx)
        return f"{x:.1f},{y:.1f}"

    lines = []
    for key, colour in (("created", "#2f9bff"), ("resolved", "#2ecc71")):
        pts = " ".join(xy(i, r[key]) for i, r in enumerate(rows))
        lines.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2" '
                     f'stroke-linejoin="round"/>')
    grid = "".join(f'<line x1="{pl}" x2="{w - 6}" y1="{pt + (h - pt - pb) * f:.1f}" y2="{pt + (h - pt - pb) * f:.1f}" '
                   f'stroke="rgba(255,255,255,.08)"/><text x="{pl - 4}" y="{pt + (h - pt - pb) * f + 3:.1f}" '
                   f'text-anchor="end" font-size="9" fill="#9fb6d9">{round(mx * (1 - f))}</text>'
                   for f in (0, .5, 1))
    # the first and last dates are anchored at their ends, so the last one is not cut at the chart's edge
    anchor = {0: "start", n - 1: "end"}
    ticks = "".join(f'<text x="{xy(i, 0).split(",")[0]}" y="{h - 4}" text-anchor="{anchor.get(i, "middle")}" '
                    f'font-size="9" fill="#9fb6d9">{ui.esc(rows[i]["day"][5:])}</text>'
                    for i in sorted({0, n // 2, n - 1}))
    leg = (f'<span style="color:#2f9bff">━ {ui.esc(t("trend_created"))}</span> '
           f'<span style="color:#2ecc71">━ {ui.esc(t("trend_resolved"))}</span>')
    st.html(f'<div class="bs-panel bs-trend" data-testid="trend" data-days="{n}" '
            f'data-created="{sum(r["created"] for r in rows)}">{_title(title)}'
            f'<img alt="{ui.esc(title)}" src="{_svg_uri(w, h, grid + "".join(lines) + ticks)}"/>'
            f'<div class="bs-note">{leg}</div></div>')


def _svg_uri(w: int, h: int, body: str) -> str:
    """An inline SVG as a data URI (st.html strips <svg> elements; an <img> keeps them)."""
    import base64

    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
           f'font-family="Noto Sans CJK SC, sans-serif">{body}</svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


# --------------------------------------------------------------------------- right column


def feed(data: dict | None, limit: int = 7) -> None:
    """Newest events, urgent ones and overdue alerts."""
    title = t("bs_feed")
    if data is None:
        _unavailable(title, "feed")
        return
    items = (data.get("items") or [])[:max(1, limit)]
    kinds = {"new": t("feed_new"), "urgent": t("feed_urgent"), "overdue": t("feed_overdue")}
    rows = "".join(f'<span class="k {ui.esc(i.get("kind"))}{_xs(n, 4)}">{ui.esc(kinds.get(i.get("kind"), i.get("kind")))}'
                   f'</span><span class="tm{_xs(n, 4)}">{ui.esc(ui.fmt_ts(i.get("at"))[11:])}</span>'
                   f'<span class="tx{_xs(n, 4)}" title="{ui.esc(i.get("grid_name"))}">{ui.esc(i.get("title"))} · '
                   f'{ui.esc(i.get("grid_name") or i.get("grid_code") or "")}</span>' for n, i in enumerate(items))
    body = f'<div class="bs-feed">{rows}</div>' if items else f'<div class="bs-note">{ui.esc(t("bs_feed_empty"))}</div>'
    st.html(f'<div class="bs-panel" data-testid="feed" data-n="{len(items)}">{_title(title)}{body}</div>')


def grid_panel_data(tok: str, code: str) -> dict | None:
    """``GET /v1/grids/{code}/panel``; where the API has no panel yet, the same facts from
    ``GET /v1/grids/{code}`` and the open-event counts (both real answers of the API)."""
    try:
        return api.grid_panel(tok, code)
    except api.ApiUnavailable:
        raise
    except api.ApiError as exc:
        if exc.status not in (404, 405):
            raise
    try:
        g = api.get(f"/v1/grids/{code}", tok, cache="fast")
    except api.ApiError as exc:
        if isinstance(exc, api.ApiUnavailable):
            raise
        return None
    open_n = api.open_by_grid(tok).get(code, 0)
    chief = g.get("chief") or {}
    return {"code": g["code"], "name": g.get("name"), "kind": g.get("kind"), "population": g.get("population"),
            "community": (g.get("community") or {}).get("name"),
            "staff": {"total": len(g.get("workers") or []), "on_duty": len(g.get("workers_on_duty") or []),
                      "chief": chief.get("name"), "names": [w["name"] for w in g.get("workers_on_duty") or []]},
            "events": {"open": open_n}}


def grid_panel(p: dict | None) -> None:
    """The clicked grid: population, staff on duty, open events."""
    if not p:
        return
    staff = p.get("staff") or {}
    ev = p.get("events") or {}
    rows = [(t("grid_code"), p.get("code")), (t("grid_kind"), kind_name(p.get("kind"))),
            (t("community"), p.get("community") if isinstance(p.get("community"), str)
             else (p.get("community") or {}).get("name")),
            (t("population"), ui.fmt_num(p.get("population"))),
            (t("bs_staff_on_duty"), f'{ui.fmt_num(staff.get("on_duty"))} / {ui.fmt_num(staff.get("total"))}'),
            (t("chief"), staff.get("chief") or "—"),
            (t("bs_open_events"), ui.fmt_num(ev.get("open")))]
    if ev.get("overdue") is not None:
        rows.append((t("overdue"), ui.fmt_num(ev.get("overdue"))))
    if p.get("patrol_coverage_today") is not None:
        rows.append((t("bs_patrol"), ui.fmt_rate(p["patrol_coverage_today"])))
    if staff.get("names"):
        rows.append((t("name"), "、".join(staff["names"][:6])))
    cells = "".join(f'<span class="k{_xs(n, 7)}">{ui.esc(k)}</span><span class="{_xs(n, 7)}">{ui.esc(v)}</span>'
                    for n, (k, v) in enumerate(rows))
    st.html(f'<div class="bs-panel" data-testid="grid-panel" data-grid-code="{ui.esc(p.get("code"))}" '
            f'data-open="{ui.esc(ev.get("open"))}">{_title(p.get("name") or p.get("code"), t("bs_grid_panel"))}'
            f'<div class="bs-kv">{cells}</div></div>')


def emergency_switch(tok: str) -> None:
    """In the sidebar, for a leader or an administrator: switch 平急转换 on (reason required) or off."""
    try:
        em = api.emergency(tok)
    except api.ApiError as exc:
        if isinstance(exc, api.ApiUnavailable):
            raise
        return
    with st.sidebar.expander(t("em_switch"), expanded=bool(em.get("active"))):
        if em.get("active"):
            st.caption(t("em_since", since=ui.fmt_ts(em.get("since"))) + " · " + (em.get("reason") or ""))
            go = st.button(t("em_off"), key="bs_em_off", icon=":material/check_circle:")
            reason = None
        else:
            reason = st.text_input(t("em_reason") + " *", key="bs_em_reason", max_chars=200)
            go = st.button(t("em_on"), key="bs_em_on", type="primary", icon=":material/emergency:")
        if not go:
            return
        if not em.get("active") and not (reason or "").strip():
            st.error(t("form_required", field=t("em_reason")))
            return
        try:
            api.call("POST", "/v1/emergency", token=tok,
                     json={"active": not em.get("active"), "reason": (reason or "").strip() or None})
        except api.ApiError as exc:
            if isinstance(exc, api.ApiUnavailable):
                raise
            st.error(ui.api_error_text(exc))
            return
        api.clear_caches()
        st.rerun()


def emergency(em: dict | None, grids) -> None:
    """平急转换: in emergency mode, 下沉干部 mobilised vs assigned per grid."""
    if isinstance(grids, dict):  # {"active", "grids": [...]}
        grids = grids.get("grids")
    if em is None or not em.get("active"):
        if em is not None:
            st.html(f'<div class="bs-note" data-testid="emergency" data-active="false">{ui.esc(t("em_normal"))}</div>')
        return
    rows = []
    short_first = sorted(grids or [], key=lambda g: (g.get("mobilised", 0) - g.get("assigned", 0), g.get("grid_code")))
    for n, g in enumerate(short_first[:4]):
        a, m = int(g.get("assigned") or 0), int(g.get("mobilised") or 0)
        x = _xs(n, 2)
        rows.append(f'<span class="rk{x}"></span><span class="nm{x}">{ui.esc(g.get("grid_name") or g.get("grid_code"))}</span>'
                    f'<span class="n{x}">{m} / {a}</span><span class="{x}"></span>'
                    f'<span class="bar{x}"><span style="width:{100 * m / a if a else 0:.0f}%"></span></span>')
    tot_a = sum(int(g.get("assigned") or 0) for g in grids or [])
    tot_m = sum(int(g.get("mobilised") or 0) for g in grids or [])
    st.html(f'<div class="bs-panel bs-em" data-testid="emergency" data-active="true" data-mobilised="{tot_m}" '
            f'data-assigned="{tot_a}">{_title(t("em_active"), t("em_since", since=ui.fmt_ts(em.get("since"))))}'
            f'<div class="bs-note">{ui.esc(em.get("reason") or "")} · {ui.esc(t("em_mobilised", m=tot_m, a=tot_a))}</div>'
            f'<div class="bs-rows">{"".join(rows)}</div></div>')


def patrol(data: dict | None, limit: int = 4) -> None:
    """巡查覆盖率 today: street length within 30 m of the grid's workers' tracks, least covered grids first."""
    title = t("bs_patrol")
    if data is None:
        _unavailable(title, "patrol")
        return
    items = data.get("items") or []
    street = sum(float(i.get("street_m") or 0) for i in items)
    covered = sum(float(i.get("covered_m") or 0) for i in items)
    overall = covered / street if street else None
    worst = sorted(items, key=lambda i: (i.get("coverage") or 0))[:max(1, limit)]
    rows = "".join(f'<span class="rk{_xs(n, 2)}"></span><span class="nm{_xs(n, 2)}">'
                   f'{ui.esc(i.get("grid_name") or i.get("grid_code"))}</span>'
                   f'<span class="n{_xs(n, 2)}">{ui.esc(ui.fmt_rate(i.get("coverage")))}</span><span class="{_xs(n, 2)}"></span>'
                   f'<span class="bar{_xs(n, 2)}"><span style="width:{100 * float(i.get("coverage") or 0):.0f}%"></span></span>'
                   for n, i in enumerate(worst))
    st.html(f'<div class="bs-panel" data-testid="patrol" data-coverage="{"null" if overall is None else f"{overall:.4f}"}" '
            f'data-grids="{len(items)}">{_title(title, t("bs_patrol_note", r=data.get("radius_m", 30), v=ui.fmt_rate(overall)))}'
            f'<div class="bs-rows">{rows}</div></div>')


def track_picker(positions: list[dict], track: dict | None) -> None:
    """Pick a worker: their track of today is replayed on the map."""
    names = {p["id"]: f'{p["name"]} · {worker_role_name(p["role"])}' for p in positions}
    with st.container(key="bs_track_box"):
        st.selectbox(t("bs_track"), [None, *sorted(names, key=lambda i: names[i])], key="bs_track_worker",
                     format_func=lambda i: t("bs_track_none") if i is None else names.get(i, str(i)),
                     label_visibility="collapsed")
    if st.session_state.get("bs_track_worker") and track is not None:
        fixes = track.get("fixes") or []
        first = ui.fmt_ts(fixes[0]["ts"])[11:] if fixes else ""
        last = ui.fmt_ts(fixes[-1]["ts"])[11:] if fixes else ""
        st.html(f'<div class="bs-note" data-testid="track-info" data-fixes="{len(fixes)}">'
                f'{ui.esc(t("bs_track_info", n=len(fixes), a=first, b=last) if fixes else t("bs_track_empty"))}</div>')
