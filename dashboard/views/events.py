"""事件 Events: a filterable table; the selected event's details, transition log and actions."""

from __future__ import annotations

import re

import streamlit as st

from dashboard import api, ui
from dashboard.i18n import STATE_NAMES, priority_name, state_name, t

PAGE_SIZE = 50
STATES = list(STATE_NAMES["zh"])


def render() -> None:
    _page()


@ui.guard
def _page() -> None:
    tok = ui.token()
    st.subheader(t("events_title"))
    cats, subs, sources = ui.catalogue_names(tok)
    c1, c2, c3, c4, c5 = st.columns([2.2, 1.2, 1.4, 1, 0.8], vertical_alignment="bottom")
    states = c1.multiselect(t("filter_state"), STATES, format_func=state_name, key="ev_states",
                            placeholder=t("any"))
    category = c2.selectbox(t("category"), [None, *cats], key="ev_cat", placeholder=t("all_categories"),
                            format_func=lambda c: t("all_categories") if c is None else f"{cats[c]} ({c})")
    grid = c3.text_input(t("filter_grid"), key="ev_grid", max_chars=15, placeholder="429901001001001").strip()
    overdue = c4.selectbox(t("filter_overdue"), [None, True, False], key="ev_overdue", placeholder=t("any"),
                           format_func=lambda v: t("any") if v is None else (t("yes") if v else t("no")))
    page = c5.number_input(t("page_no"), min_value=1, value=1, step=1, key="ev_page")
    if grid and not re.fullmatch(r"\d{15}", grid):
        st.warning(t("grid_code_invalid"))
        grid = ""
    params = {"state": states or None, "category": category, "grid": grid or None,
              "overdue": None if overdue is None else str(overdue).lower(),
              "limit": PAGE_SIZE, "offset": (int(page) - 1) * PAGE_SIZE}
    data = api.events(tok, **params)
    items = data.get("items", [])
    total = data.get("total", 0)
    a = min(total, params["offset"] + 1)
    st.caption(t("total_events", n=f"{total:,}", a=a, b=params["offset"] + len(items)))
    if not items:
        st.info(t("no_events"), icon=":material/inbox:")
        return
    names = ui.worker_names(tok, None)  # the jurisdiction's workers: assignees by name, not by id
    rows = [{"#": e["id"], t("created_at"): ui.fmt_ts(e["created_at"]), t("state"): state_name(e["state"]),
             t("category"): cats.get(e["category"], e["category"]),
             t("subtype"): subs.get((e["category"], e["subtype"]), e["subtype"]),
             t("priority"): priority_name(e.get("priority")), t("overdue"): t("overdue") if e.get("overdue") else "",
             t("assignee"): ui.assignee_name(e, names), t("wo_merged"): e.get("merged_orders") or "",
             t("grid_code"): e.get("grid_code"), t("source"): sources.get(e.get("source"), e.get("source")),
             t("due_at"): ui.fmt_ts(e.get("due_at")), t("description"): e.get("description")} for e in items]
    sel = st.dataframe(rows, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                       key="ev_table", height=420)
    picked = sel.selection.rows if sel and sel.selection else []
    if picked and picked[0] < len(items):
        st.session_state["ev_selected"] = items[picked[0]]["id"]
    eid = st.session_state.get("ev_selected")
    if not eid:
        st.caption(t("select_event_hint"))
        return
    ui.event_panel(tok, int(eid), key="ev_panel")
