"""Login: username/password → token (OAuth2 password flow) kept in the session."""

from __future__ import annotations

import os

import streamlit as st

from dashboard import api, ui
from dashboard.i18n import LANGS, t


def render() -> None:
    _, mid, _ = st.columns([1, 1.1, 1])
    with mid:
        st.space("large")
        cur = st.session_state.get("lang", "zh")
        choice = st.segmented_control(t("language"), options=list(LANGS), format_func=LANGS.get, default=cur,
                                      key="login_lang")
        if choice and choice != cur:
            st.session_state["lang"] = choice
            st.rerun()
        st.html(f'<div style="margin:.6rem 0 1rem 0"><div style="font-size:2rem;font-weight:700"><span class="geo-logo"></span>'
                f'{ui.esc(t("app_title"))}</div><div class="geo-muted">{ui.esc(t("app_subtitle"))}</div></div>')
        flash = st.session_state.pop("flash", None)
        if flash:
            getattr(st, flash[0])(flash[1])
        with st.form("login_form", border=True):
            st.subheader(t("login_title"))
            username = st.text_input(t("username"), key="login_username")
            password = st.text_input(t("password"), type="password", key="login_password")
            submitted = st.form_submit_button(t("login_button"), type="primary", width="stretch")
        if submitted:
            _login(username.strip(), password)
        if os.environ.get("GEO_DEMO"):
            st.caption(t("demo_hint"))


def _login(username: str, password: str) -> None:
    if not username or not password:
        st.warning(t("login_missing"))
        return
    try:
        r = api.login(username, password)
    except api.ApiUnavailable:
        st.error(t("api_down", url=api.base_url()), icon=":material/cloud_off:")
        return
    except api.ApiError as exc:
        if exc.status == 401:
            st.error(t("bad_credentials"), icon=":material/lock:")
        elif exc.status == 429:
            st.error(t("too_many_attempts", msg=exc.message), icon="⏳")
        else:
            ui.show_api_error(exc)
        return
    st.session_state["auth"] = {"token": r["access_token"], "role": r["role"], "username": username,
                                "jurisdiction": r.get("jurisdiction") or {}}
    st.rerun()
