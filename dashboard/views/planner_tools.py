"""规划 Planner, part 2: import existing grids, the plan map (population shading, out-of-range and exclusive
grids marked), hand edits with live figures and undo, staffing carried to the draft, publish warnings and
the unstaffed override, rollback, export and the printed 网格图. Used by :mod:`dashboard.views.planner`."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import api, maps, ui
from dashboard.i18n import t

MAP_HEIGHT = 460
SHADES = ("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b")
OUT_COLOUR, EXCLUSIVE_COLOUR, LOCKED_COLOUR, MOVABLE_COLOUR = "#ff3b30", "#b15cff", "#ffd60a", "#30d158"


def reason_text(exc: api.ApiError) -> str:
    """An API refusal in the page's language: the reason code's text, the API's words after it."""
    reason = (exc.body or {}).get("reason") or exc.code
    key = f"reason_{reason}"
    text = t(key)
    return f"{text}（{exc.message}）" if text != key else t("api_error", msg=exc.message)


def show_refusal(exc: api.ApiError) -> None:
    if isinstance(exc, api.ApiUnavailable) or exc.status in (401, 500):
        raise exc
    st.error(reason_text(exc), icon=":material/block:")


# --------------------------------------------------------------------------- import


def import_section(tok: str, jur: dict) -> None:
    if ui.role() not in ui.CAN_PUBLISH:
        return
    with st.expander(t("import_title"), icon=":material/upload_file:",
                     expanded=bool(st.session_state.get("imp_report"))):
        with st.form("plan_import", border=False):
            f = st.file_uploader(t("import_file"), type=["gpkg", "zip", "geojson", "json", "shp", "csv"],
                                 key="imp_file")
            c = st.columns(4)
            crs = c[0].selectbox(t("import_crs"), ["", "wgs84", "cgcs2000", "gcj02"], key="imp_crs",
                                 format_func=lambda v: t("import_crs_file") if not v else v)
            mn = c[1].number_input(t("min_pop"), 1, 100000, 1000, step=100, key="imp_min")
            mx = c[2].number_input(t("max_pop"), 1, 200000, 2000, step=100, key="imp_max")
            tol = c[3].number_input(t("import_tol"), 0, 100000, 500, step=100, key="imp_tol")
            cc = st.columns(3)
            code_col = cc[0].text_input(t("import_code_col"), key="imp_code_col")
            name_col = cc[1].text_input(t("import_name_col"), key="imp_name_col")
            chief_col = cc[2].text_input(t("import_chief_col"), key="imp_chief_col")
            go = st.form_submit_button(t("import_go"), type="primary", icon=":material/upload:")
        if go and f is not None:
            try:
                out = api.import_grids(tok, jur["code"], f.name, f.getvalue(),
                                       {"crs": crs or None, "min_pop": int(mn), "max_pop": int(mx),
                                        "repair_tol_m2": float(tol), "code_col": code_col or None,
                                        "name_col": name_col or None, "chief_col": chief_col or None})
                st.session_state["imp_report"] = out
                st.session_state["plan_want"] = out["plan_id"]
                st.session_state.pop("plan_sel", None)
                st.rerun()
            except api.ApiError as exc:
                show_refusal(exc)
        rep = st.session_state.get("imp_report")
        if rep:
            _import_report(rep)


def _import_report(out: dict) -> None:
    r = out["report"]
    s = r["summary"]
    st.success(t("import_done", plan_id=out["plan_id"], n=s["grids"], people=ui.fmt_num(s["people"])))
    c = st.columns(6)
    c[0].metric(t("imp_gaps"), s["gaps"], f'{s["gap_m2_before"]:,.0f} m²', delta_color="off", delta_arrow="off")
    c[1].metric(t("imp_overlaps"), s["overlaps"], f'{s["overlap_m2_before"]:,.0f} m²', delta_color="off",
                delta_arrow="off")
    c[2].metric(t("imp_crossing"), s["crossing_community"])
    c[3].metric(t("q_out_of_range"), s["out_of_range"])
    c[4].metric(t("imp_codes"), s["code_problems"])
    c[5].metric(t("imp_repairs"), s["repairs"])
    rows = []
    for g in r["gaps"]:
        rows.append({t("imp_kind"): t("imp_gap"), t("imp_where"): "", "m²": g["m2"], t("population"): g["residents"],
                     t("imp_action"): g.get("repair", t("imp_not_repaired"))})
    for o in r["overlaps"]:
        rows.append({t("imp_kind"): t("imp_overlap"), t("imp_where"): " / ".join(x["code"] or "" for x in o["grids"]),
                     "m²": o["m2"], t("population"): o["residents"], t("imp_action"): o.get("repair", t("imp_not_repaired"))})
    for x in r["crossing_community"]:
        rows.append({t("imp_kind"): t("imp_crossing"), t("imp_where"): x["code"],
                     "m²": sum(c["m2"] for c in x["communities"][1:]), t("population"): None, t("imp_action"): ""})
    for x in r["out_of_range"]:
        rows.append({t("imp_kind"): t("q_out_of_range"), t("imp_where"): f'{x["code"]} {x["name"]}', "m²": None,
                     t("population"): x["people"], t("imp_action"): t(f"reason_{x['reason']}")})
    for x in r["codes"]:
        rows.append({t("imp_kind"): t("imp_codes"), t("imp_where"): f'{t("row")} {x["row"]}: {x["code"]}', "m²": None,
                     t("population"): None, t("imp_action"): x.get("new_code") or x["problem"]})
    st.dataframe(rows, hide_index=True, width="stretch")


# --------------------------------------------------------------------------- map


def shade(people: int, lo: float, hi: float) -> str:
    """Fill colour by population relative to the range (5 steps)."""
    if hi <= lo:
        return SHADES[2]
    x = (people - lo * 0.5) / (hi * 1.1 - lo * 0.5)
    return SHADES[max(0, min(len(SHADES) - 1, int(x * len(SHADES))))]


def plan_map(tok: str, plan: dict, fc: dict, bbox, key: str, marked: set[str] = frozenset(),
             options: list[dict] = ()) -> dict:
    """The plan's grids shaded by population; out of range red, exclusive purple, locked yellow outlines; the
    move options of the grid chosen in the edit panel on top (movable green, refused grey, hatched)."""
    q = plan.get("quality") or {}
    p = plan.get("params") or {}
    lo, hi = q.get("min_pop", p.get("min_pop", 1000)), q.get("max_pop", p.get("max_pop", 2000))
    bm = maps.basemap_settings()
    feats = []
    for f in fc.get("features", []):
        pr = dict(f["properties"])
        n = int(pr.get("population") or 0)
        out = pr.get("kind") != "exclusive" and not (lo <= n <= hi)
        colour = (EXCLUSIVE_COLOUR if pr.get("kind") == "exclusive" else OUT_COLOUR if out else "#1e3a5f")
        if "locked" in (pr.get("flags") or []):
            colour = LOCKED_COLOUR
        if pr.get("code") in marked:
            colour = "#ff3df5"
        pr["_style"] = {"color": colour, "weight": 3 if (out or pr.get("code") in marked) else 1.4,
                        "fillColor": shade(n, lo, hi), "fillOpacity": 0.55, "opacity": 0.95,
                        "dashArray": "6 4" if pr.get("kind") == "exclusive" else None}
        pr["state"] = t("kind_exclusive") if pr.get("kind") == "exclusive" else (t("q_out_of_range") if out
                                                                                 else t("in_range"))
        feats.append({"type": "Feature", "geometry": f["geometry"], "properties": pr})
    import folium

    data = maps.shift_fc({"type": "FeatureCollection", "features": feats}, bm)
    fg = folium.FeatureGroup(name=key)
    if feats:
        folium.GeoJson(data, style_function=lambda ft: ft["properties"]["_style"],
                       tooltip=folium.GeoJsonTooltip(fields=["code", "name", "population", "households", "state"],
                                                     aliases=[t("grid_code"), t("grid_name"), t("population"),
                                                              t("households"), t("state")], sticky=True)).add_to(fg)
    layers = [fg]
    if options:
        layers.append(_options_layer(options, bm))
    m = maps.base_map(bbox, bm, background="#0d1a2e", width_px=1300, height_px=MAP_HEIGHT)
    st.html(ui.legend([(SHADES[1], t("legend_low")), (SHADES[3], t("legend_high")), (OUT_COLOUR, t("q_out_of_range")),
                       (EXCLUSIVE_COLOUR, t("kind_exclusive")), (LOCKED_COLOUR, t("locked"))]))
    return maps.render(m, layers, key=key, height=MAP_HEIGHT, returned=("last_clicked",))


def _options_layer(options: list[dict], bm):
    import folium

    feats = [{"type": "Feature", "geometry": o["geometry"],
              "properties": {"n": f"#{k + 1}", "unit": t(f"unit_{o['unit']}"), "to": o["to"], "people": o["people"],
                             "state": t("mv_ok") if o["ok"] else reason_label(o["reason"]),
                             "_ok": o["ok"]}} for k, o in enumerate(options)]
    data = maps.shift_fc({"type": "FeatureCollection", "features": feats}, bm)
    fg = folium.FeatureGroup(name="move-options")
    folium.GeoJson(data, style_function=lambda ft: {
        "color": MOVABLE_COLOUR if ft["properties"]["_ok"] else "#8a94a6", "weight": 2,
        "fillColor": MOVABLE_COLOUR if ft["properties"]["_ok"] else "#8a94a6", "fillOpacity": 0.45,
        "dashArray": None if ft["properties"]["_ok"] else "3 3"},
        tooltip=folium.GeoJsonTooltip(fields=["n", "unit", "to", "people", "state"],
                                      aliases=["#", t("edit_unit"), t("mv_to"), t("population"), t("state")],
                                      sticky=True)).add_to(fg)
    return fg


def reason_label(reason: str | None) -> str:
    """Why a unit cannot move, in the page's language: 「不可移动：网格将不再连成一片」."""
    key = f"reason_{reason}"
    text = t(key)
    why = (text.split("：", 1)[-1] if "：" in text else text.split(": ", 1)[-1]) if text != key else str(reason)
    return t("mv_no", why=why)


# --------------------------------------------------------------------------- edits


def edit_section(tok: str, plan: dict, fc: dict, clicked: dict | None) -> None:
    if ui.role() not in ui.CAN_PUBLISH:
        return
    codes = [f["properties"]["code"] for f in fc.get("features", [])]
    names = {f["properties"]["code"]: f["properties"]["name"] for f in fc.get("features", [])}
    if not codes:
        return
    st.markdown(f"**{t('edit_title')}** · #{plan['id']}")
    st.html(f'<div data-testid="edit-panel" data-plan-id="{plan["id"]}"></div>')
    # the form's fields live in the session state (no default values next to them): a new click on the map
    # and a unit picked in the move panel fill them before they are drawn
    ss = st.session_state
    if clicked and clicked.get("lat") is not None and ss.get("edit_click_seen") != clicked:
        ss["edit_click_seen"] = clicked
        lon, lat = maps.from_display(clicked["lng"], clicked["lat"], maps.basemap_settings())
        ss["edit_lon_in"], ss["edit_lat_in"] = round(lon, 6), round(lat, 6)
    ss.setdefault("edit_lon_in", 0.0)
    ss.setdefault("edit_lat_in", 0.0)
    if ss.get("edit_b") not in codes:
        ss["edit_b"] = codes[min(1, len(codes) - 1)]
    fmt = lambda c: f"{c} {names.get(c, '')}"  # noqa: E731
    _move_panel(tok, plan, codes, names)
    with st.form(f"plan_edit_{plan['id']}", border=True):
        op = st.selectbox(t("edit_op"), ["move", "merge", "split", "lock", "unlock", "rename"], key="edit_op",
                          format_func=lambda o: t(f"op_{o}"))
        c = st.columns(4)
        lon = c[0].number_input(t("edit_lon"), format="%.6f", step=1e-6, key="edit_lon_in")
        lat = c[1].number_input(t("edit_lat"), format="%.6f", step=1e-6, key="edit_lat_in")
        a = c[2].selectbox(t("edit_grid_a"), codes, key="edit_a", format_func=fmt)
        b = c[3].selectbox(t("edit_grid_b"), codes, key="edit_b", format_func=fmt)
        c2 = st.columns(3)
        unit = c2[0].selectbox(t("edit_unit"), ["", "block", "buildings"], key="edit_unit",
                               format_func=lambda u: t(f"unit_{u or 'auto'}"))
        k = c2[1].number_input(t("edit_k"), 2, 20, 2, key="edit_k")
        name = c2[2].text_input(t("edit_name"), key="edit_name")
        go = st.form_submit_button(t("edit_apply"), type="primary", icon=":material/edit:")
    cu = st.columns([1, 4])
    undo = cu[0].button(t("edit_undo"), icon=":material/undo:", key=f"edit_undo_{plan['id']}",
                        disabled=plan.get("kind") != "edited")
    body = {"move": {"op": "move", "lon": lon, "lat": lat, "to": b, **({"unit": unit} if unit else {})},
            "merge": {"op": "merge", "codes": [a, b]},
            "split": {"op": "split", "code": a, "k": int(k)}, "lock": {"op": "lock", "codes": [a]},
            "unlock": {"op": "unlock", "codes": [a]}, "rename": {"op": "rename", "code": a, "name": name}}[op]
    try:
        if go:
            out = api.edit_plan(tok, plan["id"], body)
            _after_edit(out, t(f"op_{op}"))
        if undo:
            out = api.undo_edit(tok, plan["id"])
            _after_edit(out, t("edit_undo"))
    except api.ApiError as exc:
        st.session_state["edit_refused"] = reason_text(exc)
        if isinstance(exc, api.ApiUnavailable):
            raise
    last = st.session_state.get("edit_last")
    if st.session_state.get("edit_refused"):
        msg = st.session_state.pop("edit_refused")
        st.html(f'<div data-testid="edit-refused">{ui.esc(msg)}</div>')
        st.error(msg, icon=":material/block:")
    if last:
        _figures(last)


def mv_key(plan: dict) -> str:
    return f"mv_from_{plan['id']}"


def move_options(tok: str, plan: dict) -> list[dict]:
    """The move options of the grid chosen in the edit panel (none chosen: none)."""
    code = st.session_state.get(mv_key(plan))
    if not code or ui.role() not in ui.CAN_PUBLISH:
        return []
    try:
        return api.move_options(tok, plan["id"], code).get("options", [])
    except api.ApiError as exc:
        if isinstance(exc, api.ApiUnavailable) or exc.status not in (404, 422):
            raise
        return []


def _move_panel(tok: str, plan: dict, codes: list[str], names: dict) -> None:
    """Which blocks and building groups of a grid can go to a neighbour (the API's move options): a table, the
    same units on the map, and a choice that fills the move form."""
    st.markdown(f"**{t('mv_title')}**")
    c = st.columns([1, 2])
    code = c[0].selectbox(t("mv_from"), ["", *codes], key=mv_key(plan),
                          format_func=lambda x: f"{x} {names.get(x, '')}" if x else t("mv_choose"))
    if not code:
        return
    opts = move_options(tok, plan)
    n_ok = sum(1 for o in opts if o["ok"])
    brief = [{k: o[k] for k in ("to", "unit", "lon", "lat", "ok", "reason", "people", "after")} for o in opts]
    st.html(f'<div data-testid="move-options" data-grid="{code}" data-n="{len(opts)}" data-movable="{n_ok}" '
            f'data-options="{ui.esc(json.dumps(brief))}">{ui.esc(t("mv_count", movable=n_ok, n=len(opts)))}</div>')
    if not opts:
        st.info(t("mv_none"), icon=":material/info:")
        return

    def label(k: int) -> str:
        if k < 0:
            return t("mv_pick_none")
        o = opts[k]
        return (f"#{k + 1} → {o['to']} {names.get(o['to'], '')} · {t('unit_' + o['unit'])} · "
                f"{o['people']} {t('people_unit')} · " + (t("mv_ok") if o["ok"] else reason_label(o["reason"])))

    def fill() -> None:
        k = st.session_state.get(f"mv_pick_{plan['id']}_{code}", -1)
        if k is None or k < 0:
            return
        o = opts[k]
        st.session_state.update({"edit_op": "move", "edit_lon_in": float(o["lon"]), "edit_lat_in": float(o["lat"]),
                                 "edit_b": o["to"], "edit_unit": o["unit"]})

    c[1].selectbox(t("mv_pick"), [-1, *range(len(opts))], key=f"mv_pick_{plan['id']}_{code}", format_func=label,
                   on_change=fill)
    st.dataframe([{"#": k + 1, t("mv_to"): f"{o['to']} {names.get(o['to'], '')}", t("edit_unit"): t("unit_" + o["unit"]),
                   t("population"): o["people"], t("households"): o["households"],
                   t("mv_after"): " / ".join(f"{names.get(g, g)} {n}" for g, n in o["after"].items()),
                   t("mv_ok"): t("mv_ok") if o["ok"] else reason_label(o["reason"])} for k, o in enumerate(opts)],
                 hide_index=True, width="stretch", height=min(36 * (len(opts) + 1) + 4, 260))


def _after_edit(out: dict, label: str) -> None:
    st.session_state["edit_last"] = {**out, "label": label}
    st.session_state["plan_want"] = out["plan_id"]
    st.session_state.pop("plan_sel", None)
    st.rerun()


def _figures(out: dict) -> None:
    cov = out.get("coverage") or {}
    rows = [{t("grid_code"): g["code"], t("grid_name"): g["name"], t("population"): g["people"],
             t("households"): g["households"], t("q_contiguous"): t("yes") if g["contiguous"] else t("no"),
             t("in_range"): t("yes") if g["in_range"] else t("no"), t("locked"): t("yes") if g.get("locked") else ""}
            for g in out.get("grids", [])]
    attrs = " ".join(f'data-{g["code"]}="{g["people"]}"' for g in out.get("grids", []))
    st.html(f'<div class="geo-card" data-testid="edit-figures" data-plan-id="{out["plan_id"]}" {attrs}>'
            f'{ui.esc(t("edit_done", label=out.get("label", ""), plan_id=out["plan_id"]))} · '
            f'{t("q_coverage")} {100 * (cov.get("covered_share") or 0):.4f}%</div>')
    st.dataframe(rows, hide_index=True, width="stretch")


# --------------------------------------------------------------------------- staffing, publish, rollback


def staffing_section(tok: str, plan: dict) -> None:
    if plan["status"] == "retired":
        return
    s = api.staffing(tok, plan["id"])
    missing = s.get("without_chief") or []
    st.markdown(f"**{t('staff_title')}**")
    st.html(f'<div data-testid="unstaffed" data-n="{len(missing)}">{ui.esc(t("staff_missing", n=len(missing)))}</div>')
    from dashboard.i18n import WORKER_ROLES

    lang = st.session_state.get("lang", "zh")
    rows = [{t("grid_code"): g["code"], t("grid_name"): g["name"], t("population"): g["people"],
             t("staff_from"): g.get("source_code") or "", t("staff_shared"): g.get("shared_residents"),
             t("staff_list"): "、".join(f'{w["name"]}({WORKER_ROLES[lang].get(w["role"], w["role"])})'
                                       for w in g["staff"]), t("staff_chief"): t("yes") if g["has_chief"] else t("no")}
            for g in s.get("grids", [])]
    with st.expander(t("staff_table", n=len(rows)), expanded=bool(missing)):
        if missing:
            st.markdown(f"**{t('staff_without_chief')}**")
            st.dataframe([{t("grid_code"): m["code"], t("grid_name"): m["name"], t("population"): m["people"],
                           t("staff_file_chief"): m.get("file_chief") or ""} for m in missing], hide_index=True,
                         width="stretch")
        st.dataframe(rows, hide_index=True, width="stretch")


def publish_warnings(tok: str, plan: dict) -> tuple[bool, str]:
    """Show the publish warnings; returns (override_unstaffed, reason) chosen by the planner."""
    chk = api.publish_check(tok, plan["id"])
    unstaffed = False
    for w in chk.get("warnings", []):
        if w["code"] == "identical":
            st.warning(t("warn_identical", id=chk.get("published_plan_id")), icon=":material/content_copy:")
        elif w["code"] == "different_range":
            st.warning(t("warn_range", draft="–".join(map(str, w["draft"])),
                         published="–".join(map(str, w["published"]))), icon=":material/tune:")
        elif w["code"] == "unstaffed":
            unstaffed = True
            st.warning(t("warn_unstaffed", n=len(w["grids"])), icon=":material/person_off:")
    if not unstaffed:
        return False, ""
    ov = st.checkbox(t("override_unstaffed"), key=f"plan_override_{plan['id']}")
    reason = st.text_input(t("override_reason"), key=f"plan_override_reason_{plan['id']}")
    return ov, reason


def publication_history(pubs: list[dict]) -> str:
    """Every period a plan was in force, oldest first: 「发布 12-01 10:00 – 12-02 09:00；回退发布 12-03 08:00 –」."""
    return "；".join(f'{t("pub_" + x["action"])} {ui.fmt_ts(x["published_at"])} – {ui.fmt_ts(x.get("retired_at"))}'
                    .rstrip() for x in pubs)


def rollback_section(tok: str, plans: list[dict]) -> None:
    retired = [p for p in plans if p["status"] == "retired"]
    if ui.role() not in ui.CAN_PUBLISH or not retired:
        return
    with st.expander(t("rollback_title"), icon=":material/history:"):
        with st.form("plan_rollback", border=False):
            pid = st.selectbox(t("rollback_plan"), [p["id"] for p in retired], key="rb_plan",
                               format_func=lambda i: next(f'#{i} v{p["version"]} · '
                                                          f'{publication_history(p.get("publications") or [])}'
                                                          for p in retired if p["id"] == i))
            ov = st.checkbox(t("override_unstaffed"), key="rb_override")
            reason = st.text_input(t("override_reason"), key="rb_reason")
            go = st.form_submit_button(t("rollback_go"), icon=":material/restore:")
        if go:
            try:
                api.rollback(tok, pid, {"override_unstaffed": bool(ov), "reason": reason or None})
                ui.flash("plan", t("rollback_done", id=pid))
                st.session_state["plan_want"] = pid
                st.session_state.pop("plan_sel", None)
                st.rerun()
            except api.ApiError as exc:
                show_refusal(exc)


def export_section(tok: str, plan: dict, jur: dict, communities: list[dict]) -> None:
    with st.expander(t("export_title"), icon=":material/download:"):
        c = st.columns(3)
        fmt = c[0].selectbox(t("export_format"), ["gpkg", "shp", "geojson", "csv"], key="exp_fmt")
        crs = c[1].selectbox(t("export_crs"), ["wgs84", "cgcs2000", "gcj02"], key="exp_crs")
        if c[2].button(t("export_prepare"), key="exp_go", icon=":material/file_download:"):
            try:
                st.session_state["exp_data"] = (plan["id"], fmt, crs, api.export_plan(tok, plan["id"], fmt, crs))
            except api.ApiError as exc:
                show_refusal(exc)
        d = st.session_state.get("exp_data")
        if d and d[0] == plan["id"]:
            ext = "zip" if d[1] == "shp" else d[1]
            st.download_button(t("export_download", fmt=d[1], crs=d[2]), d[3], key="exp_dl",
                               file_name=f"grids_{jur['code']}_v{plan['version']}_{d[2]}.{ext}")
        comm = [j for j in communities if j["level"] == "community" and j.get("parent_code") == jur["code"]]
        if comm:
            cc = st.columns(2)
            code = cc[0].selectbox(t("print_community"), [j["code"] for j in comm], key="prt_comm",
                                   format_func=lambda x: f'{next(j["name"] for j in comm if j["code"] == x)} ({x})')
            if cc[1].button(t("print_prepare"), key="prt_go", icon=":material/print:"):
                try:
                    st.session_state["prt_data"] = (plan["id"], code, api.print_map(tok, plan["id"], code))
                except api.ApiError as exc:
                    show_refusal(exc)
            d = st.session_state.get("prt_data")
            if d and d[0] == plan["id"]:
                st.download_button(t("print_download"), d[2], key="prt_dl", mime="application/pdf",
                                   file_name=f"wanggetu_{d[1]}_v{plan['version']}.pdf")
