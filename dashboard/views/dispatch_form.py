"""The dispatch page's "report an event here" form: required fields, one event per submission, cleared after.

* Required: 事件子类, 来源, 描述 (and a reporter phone, when given, in the API's format) — checked before sending,
  each message naming its field in Chinese; the API's own 422s are shown the same way (:func:`ui.api_error_text`).
* One event per form instance: the instance's ``Idempotency-Key`` goes with every submission of it, and the
  widgets (and the form) are keyed by the instance number, so a second click that arrives after the first
  submission finished belongs to a form that no longer exists and is dropped. A resubmission of the very same
  body reuses the last key as well (the API answers with the first event: "重复提交").
* After success the instance number moves on: a new, empty form with a new key.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import streamlit as st

from dashboard import api, ui
from dashboard.i18n import t

PHONE = re.compile(r"^[0-9+\-() ]{3,40}$")
FORM = "disp_new"


def _instance() -> int:
    return int(st.session_state.setdefault(f"{FORM}__n", 0))


def _key(n: int) -> str:
    return st.session_state.setdefault(f"{FORM}__idem_{n}", str(uuid.uuid4()))


def validate(sub, src, desc: str, phone: str, anon: bool) -> list[str]:
    """Messages (Chinese, naming the field) for what is missing or malformed; empty when the form may go."""
    errs = []
    if not sub:
        errs.append(t("form_required", field=t("subtype")))
    if not src:
        errs.append(t("form_required", field=t("source")))
    if not (desc or "").strip():
        errs.append(t("form_required", field=t("description")))
    elif len(desc) > 4000:
        errs.append(t("form_too_long", field=t("description"), n=4000))
    if phone and not PHONE.match(phone.strip()):
        errs.append(t("form_phone"))
    return errs


def create_event(tok: str, g: dict, address: str | None = None) -> None:
    st.markdown(f"**{t('create_event')}**")
    if ui.role() not in ui.CAN_CREATE_EVENTS:
        st.caption(t("cannot_create"))
        return
    ui.show_flash("disp_create")
    c = api.catalogue(tok)
    options = [(cat["code"], s["code"]) for cat in c.get("categories", []) for s in cat.get("subtypes", [])]
    names = {(cat["code"], s["code"]): f'{cat["name"]} / {s["name"]}' + (f' ({s["code"]})' if s.get("dcode") else "")
             for cat in c.get("categories", []) for s in cat.get("subtypes", [])}
    sources = c.get("sources", {})
    pt = g.get("point") or {}
    n = _instance()
    with st.form(f"{FORM}_{n}", clear_on_submit=False, border=True):
        sub = st.selectbox(t("subtype") + " *", options, index=None, placeholder=t("form_choose"),
                           format_func=lambda o: names.get(o, str(o)), key=f"{FORM}_sub_{n}")
        src_list = list(sources)
        src = st.selectbox(t("source") + " *", src_list, format_func=lambda s: sources.get(s, s),
                           index=src_list.index("hotline_12345") if "hotline_12345" in src_list else None,
                           key=f"{FORM}_src_{n}")
        desc = st.text_area(t("description") + " *", key=f"{FORM}_desc_{n}", height=80, max_chars=4000)
        addr = st.text_input(t("address"), key=f"{FORM}_addr_{n}", value=address or "", max_chars=400)
        c1, c2 = st.columns(2)
        rname = c1.text_input(t("reporter_name"), key=f"{FORM}_rname_{n}", max_chars=100)
        rphone = c2.text_input(t("reporter_phone"), key=f"{FORM}_rphone_{n}", max_chars=40)
        anon = st.checkbox(t("anonymous"), key=f"{FORM}_anon_{n}")
        st.caption(t("event_loc_hint", addr=f"{address} · " if address else "", lon=f'{pt.get("lon", 0):.6f}',
                     lat=f'{pt.get("lat", 0):.6f}', grid=g["code"]))
        go = st.form_submit_button(t("submit_event"), type="primary", icon=":material/add_alert:",
                                   key=f"{FORM}_go_{n}")
    ekey = f"{FORM}__errs_{n}"
    if go:  # the messages stay until the next submission (a rerun caused by the map must not eat them)
        st.session_state[ekey] = validate(sub, src, desc, rphone, anon)
    errs = st.session_state.get(ekey) or []
    if errs:
        st.html(f'<div data-testid="form-errors" data-n="{len(errs)}"></div>')
        st.error("\n\n".join(errs), icon=":material/error:")
    if not go or errs:
        return
    body = {"category": sub[0], "subtype": sub[1], "source": src, "lon": pt.get("lon"), "lat": pt.get("lat"),
            "crs": "wgs84", "description": desc.strip(), "address": (addr or "").strip() or None,
            "reporter_name": (rname or "").strip() or None, "reporter_phone": (rphone or "").strip() or None,
            "anonymous": bool(anon)}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    last = st.session_state.get(f"{FORM}__last")
    key = last[1] if last and last[0] == digest else _key(n)
    try:
        ev, created = api.create_event(tok, body, key)
    except api.ApiError as exc:
        if isinstance(exc, api.ApiUnavailable) or exc.status not in (403, 409, 422):
            raise
        st.session_state[ekey] = [ui.api_error_text(exc)]
        st.error(ui.api_error_text(exc), icon=":material/error:")
        return
    st.session_state[f"{FORM}__last"] = (digest, key)
    st.session_state.pop(f"{FORM}__idem_{n}", None)
    st.session_state[f"{FORM}__n"] = n + 1  # a new, empty form instance with a new key
    for k in [k for k in st.session_state if isinstance(k, str) and k.startswith(f"{FORM}_") and k.endswith(f"_{n}")]:
        try:
            del st.session_state[k]
        except Exception:  # noqa: BLE001 — a widget of this run may refuse; its instance is gone anyway
            pass
    msg = t("event_created", id=ev["id"], grid=ev.get("grid_code")) if created else t("event_replayed", id=ev["id"])
    ui.flash("disp_create", msg)
    st.session_state["disp_event"] = ev["id"]
    st.rerun()
