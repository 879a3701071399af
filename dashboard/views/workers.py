"""网格员 Workers: list and filter grid staff (community/street, grid, role, duty, name) within the user's
jurisdiction, assign chief / full-time / auxiliary / 下沉干部 to grids of the plan in force, set role and duty
status. The filters are the API's (``GET /v1/workers``); nothing is filtered in the page."""

from __future__ import annotations

import streamlit as st

from dashboard import api, ui
from dashboard.i18n import WORKER_ROLES, t

CAN_WRITE = {"admin", "dispatcher", "planner"}


def render() -> None:
    _page()


@ui.guard
def _page() -> None:
    tok = ui.token()
    sc = ui.scope(tok)
    lang = st.session_state.get("lang", "zh")
    roles = WORKER_ROLES[lang]
    st.subheader(t("workers_title"))
    ui.show_flash("workers")
    jurs = [j for j in sc["jurisdictions"] if j["level"] in ("street", "community", "town")]
    jname = {j["code"]: j["name"] for j in sc["jurisdictions"]}
    c = st.columns(5)
    where = c[0].selectbox(t("workers_filter_jur"), ["", *[j["code"] for j in jurs]], key="wk_jur",
                           format_func=lambda x: f"{jname.get(x, '')} ({x})" if x else t("workers_all"))
    grid = c[1].text_input(t("workers_filter_grid"), key="wk_grid", max_chars=15,
                           placeholder=t("workers_grid_hint")).strip()
    role = c[2].selectbox(t("workers_filter_role"), ["", *roles], key="wk_role",
                          format_func=lambda r: roles.get(r, t("workers_all")))
    duty = c[3].selectbox(t("workers_filter_duty"), ["", "yes", "no"], key="wk_duty",
                          format_func=lambda d: {"": t("workers_all"), "yes": t("yes"), "no": t("no")}[d])
    name_q = c[4].text_input(t("workers_filter_name"), key="wk_name", max_chars=50).strip()
    if grid and (len(grid) != 15 or not grid.isdigit()):
        st.warning(t("workers_grid_bad"), icon=":material/warning:")
        grid = ""
    try:
        rows = api.workers(tok, grid=grid or None, on_duty=None if not duty else duty == "yes",
                           jurisdiction=where or None, role=role or None, name=name_q or None)
    except api.ApiError as exc:
        if isinstance(exc, api.ApiUnavailable):
            raise
        from dashboard.views.planner_tools import show_refusal

        show_refusal(exc)
        rows = []
    if not rows:
        st.info(t("workers_none"))
    st.html(f'<div data-testid="workers-count" data-n="{len(rows)}" '
            f'data-ids="{",".join(str(w["id"]) for w in rows)}"></div>')
    st.dataframe([{"#": w["id"], t("workers_name"): w["name"], t("workers_filter_role"): roles.get(w["role"], w["role"]),
                   t("workers_filter_duty"): t("yes") if w["on_duty"] else t("no"), t("workers_phone"): w.get("phone"),
                   t("workers_jur"): w.get("jurisdiction_name") or jname.get(w["jurisdiction_code"], ""),
                   t("workers_grids"): "、".join(w["grid_codes"])}
                  for w in rows], hide_index=True, width="stretch")
    if ui.role() not in CAN_WRITE:
        return
    with st.expander(t("workers_add"), icon=":material/person_add:"):
        with st.form("wk_new", border=False):
            cc = st.columns(4)
            name = cc[0].text_input(t("workers_name"), key="wk_new_name")
            r = cc[1].selectbox(t("workers_filter_role"), list(roles), format_func=roles.get, key="wk_new_role")
            jur = cc[2].selectbox(t("workers_jur"), [j["code"] for j in jurs], key="wk_new_jur",
                                  format_func=lambda x: f'{next(j["name"] for j in jurs if j["code"] == x)} ({x})')
            phone = cc[3].text_input(t("workers_phone"), key="wk_new_phone")
            grids = st.text_input(t("workers_grids"), key="wk_new_grids", help="15-digit codes, comma separated")
            go = st.form_submit_button(t("workers_save"), type="primary")
        if go and name:
            try:
                api.create_worker(tok, {"name": name, "role": r, "jurisdiction_code": jur, "phone": phone or None,
                                        "grid_codes": [g.strip() for g in grids.replace("，", ",").split(",") if g.strip()]})
                ui.flash("workers", t("workers_saved"))
                st.rerun()
            except api.ApiError as exc:
                from dashboard.views.planner_tools import show_refusal

                show_refusal(exc)
    if rows:
        with st.expander(t("workers_assign"), icon=":material/assignment_ind:"):
            with st.form("wk_edit", border=False):
                wid = st.selectbox("#", [w["id"] for w in rows], key="wk_edit_id",
                                   format_func=lambda i: next(f'{w["name"]} · {roles.get(w["role"])}' for w in rows
                                                              if w["id"] == i))
                w = next(x for x in rows if x["id"] == wid)
                ce = st.columns([1, 3, 1])
                new_role = ce[0].selectbox(t("workers_set_role"), list(roles), format_func=roles.get,
                                           index=list(roles).index(w["role"]) if w["role"] in roles else 0,
                                           key=f"wk_edit_role_{wid}")
                grids = ce[1].text_input(t("workers_grids"), value=",".join(w["grid_codes"]),
                                         key=f"wk_edit_grids_{wid}")
                on = ce[2].checkbox(t("workers_filter_duty"), value=w["on_duty"], key=f"wk_edit_duty_{wid}")
                go = st.form_submit_button(t("workers_save"), type="primary")
            if go:
                try:
                    api.patch_worker(tok, wid, {"on_duty": bool(on), "role": new_role, "grid_codes": [
                        g.strip() for g in grids.replace("，", ",").split(",") if g.strip()]})
                    ui.flash("workers", t("workers_saved"))
                    st.rerun()
                except api.ApiError as exc:
                    from dashboard.views.planner_tools import show_refusal

                    show_refusal(exc)
