"""geo dashboard — entry point (``streamlit run dashboard/app.py`` or ``geo dashboard``).

Log in first (token kept in the session), then four pages: 大屏 big screen, 调度 dispatch, 规划 planner,
事件 events. Every page URL is registered even before login, so a deep link (``/bigscreen``) shows the login
form and then the page asked for.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # streamlit puts dashboard/ on sys.path; the package needs its parent
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

st.set_page_config(page_title="网格化管理 geo", page_icon=":material/grid_on:", layout="wide")

from dashboard import ui  # noqa: E402
from dashboard.i18n import t  # noqa: E402
from dashboard.views import bigscreen, dispatch, events, login, planner, workers  # noqa: E402

if "lang" not in st.session_state:
    st.session_state["lang"] = "zh"
# full-run counter: maps use it to know whether they are mounted afresh (see dashboard.maps.render)
st.session_state["__app_run"] = st.session_state.get("__app_run", 0) + 1

ui.css()

BIGSCREEN = st.Page(bigscreen.render, title=t("page_bigscreen"), url_path="bigscreen", icon=":material/monitoring:")


def _home() -> None:
    """``/``: the default page's URL is always the root, so it forwards to /bigscreen (a linkable URL)."""
    st.switch_page(BIGSCREEN)


pages = [
    st.Page(_home, title=t("app_title"), url_path="home", default=True, visibility="hidden"),
    BIGSCREEN,
    st.Page(dispatch.render, title=t("page_dispatch"), url_path="dispatch", icon=":material/my_location:"),
    st.Page(planner.render, title=t("page_planner"), url_path="planner", icon=":material/grid_view:"),
    st.Page(events.render, title=t("page_events"), url_path="events", icon=":material/list_alt:"),
    st.Page(workers.render, title=t("page_workers"), url_path="workers", icon=":material/badge:"),
]

kiosk = ui.kiosk_login()
if ui.auth() is None:
    st.navigation(pages, position="hidden")  # resolves the URL; the page runs after login
    if kiosk is None:
        login.render()
elif ui.auth().get("kiosk"):  # a wall display: the big screen only, no sidebar
    st.navigation([BIGSCREEN], position="hidden").run()
else:
    nav = st.navigation(pages, position="sidebar")
    ui.sidebar()
    ui.guard(nav.run)()
