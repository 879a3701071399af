"""Shared page furniture: session, sidebar, CSS, error handling, formatting, the event panel."""

from __future__ import annotations

import html
import logging
import os
import uuid
from datetime import datetime, timedelta
from functools import wraps
from zoneinfo import ZoneInfo

import streamlit as st

from dashboard import api
from dashboard.i18n import (LANGS, action_name, kind_name, priority_name, role_name, state_name, t,
                            worker_role_name)

log = logging.getLogger("geo.dashboard")

try:
    TZ = ZoneInfo(os.environ.get("GEO_TZ", "Asia/Shanghai"))
except Exception:  # noqa: BLE001 — no tz database: show UTC
    TZ = ZoneInfo("UTC")

#: roles that may move an event from/to a state (mirrors geo.api.services.events.TRANSITIONS)
_STAFF = {"dispatcher", "admin"}
_FIELD = {"worker", "dispatcher", "admin"}
TRANSITION_ROLES = {
    ("reported", "accepted"): _STAFF, ("reported", "rejected"): _STAFF, ("accepted", "rejected"): _STAFF,
    ("returned", "rejected"): _STAFF, ("accepted", "dispatched"): _STAFF, ("returned", "dispatched"): _STAFF,
    ("dispatched", "in_progress"): _FIELD, ("dispatched", "returned"): _FIELD, ("in_progress", "returned"): _FIELD,
    ("in_progress", "resolved"): _FIELD, ("resolved", "in_progress"): _STAFF, ("resolved", "closed"): _STAFF,
}
NEEDS_REASON = {("reported", "rejected"), ("accepted", "rejected"), ("returned", "rejected"),
                ("dispatched", "returned"), ("in_progress", "returned"), ("resolved", "in_progress")}
CAN_CREATE_EVENTS = {"admin", "dispatcher", "worker"}
CAN_PUBLISH = {"admin", "planner"}


# --------------------------------------------------------------------------- session


def auth() -> dict | None:
    return st.session_state.get("auth")


def token() -> str:
    a = auth()
    return a["token"] if a else ""


def role() -> str:
    a = auth()
    return a["role"] if a else ""


def logout(expired: bool = False) -> None:
    for k in list(st.session_state.keys()):
        if k not in ("lang", "tile_url", "tile_gcj"):
            del st.session_state[k]
    if expired:
        st.session_state["flash"] = ("warning", t("session_expired"))


def kiosk_login() -> bool | None:
    """A wall display logs in with a kiosk token in its URL (``/bigscreen?kiosk=geo_…``, ``POST
    /v1/kiosk-tokens``), sent as ``X-API-Key``. The URL keeps it, so F5 (a new session) logs in again.
    Returns True when logged in now, False when the token was refused (message shown), None without one."""
    key = (st.query_params.get("kiosk") or "").strip()
    if not key or auth():
        return None
    tok = api.API_KEY_PREFIX + key
    try:
        me = api.me(tok)
        js = api.jurisdictions(tok)
    except api.ApiUnavailable:
        st.error(t("api_down", url=api.base_url()), icon=":material/cloud_off:")
        import time

        time.sleep(api.REFRESH_S)  # a wall display has nobody to press F5: try again by itself
        st.rerun()
    except api.ApiError as exc:
        log.warning("kiosk token refused: %s %s", exc.status, exc.message)
        st.error(t("kiosk_refused"), icon=":material/key_off:")
        return False
    j = next((x for x in js if x.get("id") == me.get("jurisdiction_id")), js[0] if js else {})
    st.session_state["auth"] = {"token": tok, "role": me.get("role"), "username": me.get("name") or "kiosk",
                                "jurisdiction": {"code": j.get("code"), "name": j.get("name")}, "kiosk": True}
    return True


# --------------------------------------------------------------------------- errors


def show_api_error(exc: Exception) -> None:
    """A friendly message for an exception (never a traceback)."""
    if isinstance(exc, api.ApiUnavailable):
        log.warning("API unavailable: %s", exc.message)
        st.error(t("api_down", url=api.base_url()), icon=":material/cloud_off:")
        st.caption(exc.message)  # one line for the operator (which call, which error) — never a traceback
    elif isinstance(exc, api.ApiError):
        log.warning("API error %s %s: %s", exc.status, exc.code, exc.message)
        if exc.status == 403:
            st.error(t("forbidden", msg=exc.message), icon=":material/block:")
        else:
            st.error(api_error_text(exc), icon=":material/warning:")
    else:
        log.exception("dashboard error")
        st.error(t("unexpected"), icon=":material/warning:")


def api_error_text(exc: api.ApiError) -> str:
    """An API error in words: each field it names by its Chinese label (the API's ``label``, else ours) and
    what is wrong with it — never "invalid request: reporter_phone"."""
    from dashboard.i18n_ops import FIELD_LABELS

    details = [d for d in (exc.body or {}).get("details") or [] if isinstance(d, dict) and d.get("field")]
    if not details:
        return t("api_error", msg=exc.message)
    parts = []
    for d in details:
        field = str(d["field"]).split(".")[-1]
        label = d.get("label") or (t(FIELD_LABELS[field]) if field in FIELD_LABELS else field)
        msg = str(d.get("message") or "")
        if field == "reporter_phone" and "pattern" in msg:
            parts.append(t("form_phone"))
            continue
        if not any("\u4e00" <= ch <= "\u9fff" for ch in msg):  # an English pydantic message: say it plainly
            msg = t("form_invalid_value")
        parts.append(t("form_invalid", field=label, msg=msg))
    return "；".join(parts)


def guard(fn):
    """Run a page (or fragment) body; API failures and bugs become friendly messages, never tracebacks."""

    @wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except api.ApiError as exc:
            if exc.status == 401 and auth():
                logout(expired=True)
                st.rerun()
            show_api_error(exc)
        except Exception as exc:  # noqa: BLE001 — st.rerun/st.stop are BaseExceptions and pass through
            show_api_error(exc)

    return wrapper


# --------------------------------------------------------------------------- formatting


def fmt_rate(v) -> str:
    return "—" if v is None else f"{100 * float(v):.1f}%"


def fmt_num(v) -> str:
    return "—" if v is None else f"{int(v):,}"


def fmt_sat(v) -> str:
    return "—" if v is None else f"{float(v):.2f}"


def parse_ts(s: str | None) -> datetime | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None


def fmt_ts(s: str | None, seconds: bool = False) -> str:
    d = parse_ts(s)
    if d is None:
        return ""
    return d.astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def now_local() -> datetime:
    return datetime.now(TZ)


def window_start(window: str) -> str:
    """ISO start of a window: today (local midnight), 7d, 30d (rounded down to the minute, cache-friendly)."""
    now = now_local().replace(second=0, microsecond=0)
    if window == "today":
        start = now.replace(hour=0, minute=0)
    elif window == "7d":
        start = now - timedelta(days=7)
    else:
        start = now - timedelta(days=30)
    return start.isoformat()


def esc(s) -> str:
    return html.escape("" if s is None else str(s))


# --------------------------------------------------------------------------- CSS


BASE_CSS = """
<style>
[data-testid="stAppDeployButton"], [data-testid="stMainMenu"] {display: none !important;}
.block-container {padding-top: 2.2rem; padding-bottom: 1rem;}
.geo-muted {color: #8a94a6; font-size: .85rem;}
.geo-badge {display:inline-block; padding: .05rem .5rem; border-radius: .6rem; font-size: .8rem;
            background: #22324a; color: #cfe3ff; margin-right: .3rem;}
.geo-badge.warn {background:#5c2a18; color:#ffc9a8;}
.geo-badge.ok {background:#173d2a; color:#b7f0cd;}
.geo-card {border: 1px solid rgba(140,160,190,.25); border-radius: .6rem; padding: .7rem .9rem; margin-bottom:.6rem;
           background: rgba(20,32,52,.35);}
.geo-card h4 {margin: 0 0 .35rem 0; font-size: 1rem;}
.geo-code {font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 1.35rem; font-weight: 700;
           color: #7fd1ff; letter-spacing: .03em;}
.geo-kv {display:grid; grid-template-columns: max-content 1fr; gap: .15rem .8rem; font-size: .92rem;}
.geo-kv .k {color:#8a94a6;}
.geo-legend {display:flex; flex-wrap:wrap; gap:.2rem .9rem; font-size:.8rem; color:#b8c2d3; align-items:center;}
.geo-legend i {display:inline-block; width:.8rem; height:.8rem; border-radius:.15rem; margin-right:.3rem;
               vertical-align:-.1rem;}
.geo-legend i.dot {border-radius: 50%;}
.geo-logo {display:inline-block; width:1.6rem; height:1.6rem; margin-right:.5rem; vertical-align:-.2rem;
           border:2px solid #2f9bff; border-radius:.25rem;
           background: linear-gradient(#2f9bff,#2f9bff) 33% 0/2px 100% no-repeat,
                       linear-gradient(#2f9bff,#2f9bff) 67% 0/2px 100% no-repeat,
                       linear-gradient(#2f9bff,#2f9bff) 0 33%/100% 2px no-repeat,
                       linear-gradient(#2f9bff,#2f9bff) 0 67%/100% 2px no-repeat, rgba(47,155,255,.15);}
</style>
"""


def css() -> None:
    st.html(BASE_CSS)


def legend(items: list[tuple[str, str]], dots: bool = False, title: str | None = None) -> str:
    cls = "dot" if dots else ""
    parts = [f'<span><i class="{cls}" style="background:{c}"></i>{esc(label)}</span>' for c, label in items]
    head = f'<span style="color:#8a94a6">{esc(title)}</span>' if title else ""
    return f'<div class="geo-legend">{head}{"".join(parts)}</div>'


def kv(rows: list[tuple[str, str]], raw: bool = False) -> str:
    cells = "".join(f'<span class="k">{esc(k)}</span><span>{v if raw else esc(v)}</span>' for k, v in rows)
    return f'<div class="geo-kv">{cells}</div>'


# --------------------------------------------------------------------------- sidebar


def sidebar() -> None:
    """Language switch, who is signed in, map settings, log out."""
    with st.sidebar:
        cur = st.session_state.get("lang", "zh")
        choice = st.segmented_control(t("language"), options=list(LANGS), format_func=LANGS.get,
                                      default=cur, key="lang_switch")
        if choice and choice != cur:
            st.session_state["lang"] = choice
            st.rerun()
        a = auth()
        if not a:
            return
        j = a.get("jurisdiction") or {}
        st.html(
            f'<div class="geo-card" data-testid="geo-user"><div class="geo-muted">{esc(t("logged_in_as"))}</div>'
            f'<div style="font-weight:600;font-size:1.05rem">{esc(a.get("username"))}</div>'
            f'<div>{esc(t("role"))}: <span class="geo-badge" data-testid="geo-role" data-role="{esc(a["role"])}">'
            f'{esc(role_name(a["role"]))} ({esc(a["role"])})</span></div>'
            f'<div>{esc(t("jurisdiction"))}: {esc(j.get("name"))} <span class="geo-muted">{esc(j.get("code"))}'
            f'</span></div></div>')
        if st.button(t("logout"), key="logout_btn", icon=":material/logout:"):
            logout()
            st.rerun()
        with st.expander(t("map_settings")):
            default_url = st.session_state.get("tile_url", os.environ.get("GEO_TILE_URL", ""))
            url = st.text_input(t("tile_url"), value=default_url, help=t("tile_url_help"), key="tile_url_input")
            if url != st.session_state.get("tile_url"):
                st.session_state["tile_url"] = url
                from dashboard.maps import is_gcj_url

                st.session_state["tile_gcj"] = is_gcj_url(url)
            st.session_state["tile_gcj"] = st.checkbox(t("tile_gcj"), value=bool(st.session_state.get("tile_gcj")),
                                                       help=t("tile_gcj_help"), disabled=not url.strip())


# --------------------------------------------------------------------------- catalogue names


def catalogue_names(tok: str) -> tuple[dict, dict, dict]:
    """({category: name}, {(category, subtype): name}, {source: name})."""
    try:
        c = api.catalogue(tok)
    except api.ApiError:
        return {}, {}, {}
    cats = {x["code"]: x["name"] for x in c.get("categories", [])}
    subs = {(x["code"], s["code"]): s["name"] for x in c.get("categories", []) for s in x.get("subtypes", [])}
    return cats, subs, c.get("sources", {})


# --------------------------------------------------------------------------- event panel


def event_panel(tok: str, event_id: int, *, key: str) -> None:
    """One event: details, possible duplicates, transition log, and buttons for its allowed transitions."""
    ev = api.event(tok, event_id)
    cats, subs, sources = catalogue_names(tok)
    over = ev.get("overdue")
    badge = f'<span class="geo-badge {"warn" if over else "ok"}" data-testid="event-state" ' \
            f'data-state="{esc(ev["state"])}">{esc(state_name(ev["state"]))}</span>'
    if over:
        badge += f'<span class="geo-badge warn">{esc(t("overdue"))}</span>'
    title = f'{esc(t("event"))} #{ev["id"]} · {esc(cats.get(ev["category"], ev["category"]))} / ' \
            f'{esc(subs.get((ev["category"], ev["subtype"]), ev["subtype"]))}'
    rows = [
        (t("state"), badge),
        (t("priority"), esc(priority_name(ev.get("priority")))),
        (t("source"), esc(sources.get(ev.get("source"), ev.get("source")))),
        (t("grid_code"), f'<code>{esc(ev.get("grid_code"))}</code>'),
        (t("department"), esc(ev.get("department"))),
        (t("assignee"), esc(assignee_name(ev, worker_names(tok, ev.get("grid_code"))))),
        (t("created_at"), esc(fmt_ts(ev.get("created_at")))),
        (t("due_at"), esc(fmt_ts(ev.get("due_at")))),
        (t("address"), esc(ev.get("address") or "—")),
        (t("description"), esc(ev.get("description") or "—")),
        (t("reporter_name"), esc(" ".join(x for x in (ev.get("reporter_name"), ev.get("reporter_phone")) if x) or "—")),
    ]
    if ev.get("satisfaction") is not None:
        rows.append((t("satisfaction"), esc(ev["satisfaction"])))
    if ev.get("work_orders"):
        wos = "<br>".join(f'{esc(w.get("order_no"))} · {esc(w.get("appeal_type"))} · {esc(fmt_ts(w.get("called_at")))}'
                          + (f' · <b>{esc(t("wo_merged"))}</b>' if w.get("merged") else "") for w in ev["work_orders"])
        rows.append((t("work_orders"), f'<span data-testid="event-work-orders">{wos}</span>'))
    if ev.get("merged_orders"):
        rows.append((t("wo_merged"), esc(t("merged_orders", n=ev["merged_orders"]))))
    st.html(f'<div class="geo-card" data-testid="event-detail" data-event-id="{ev["id"]}"><h4>{title}</h4>'
            f'{kv(rows, raw=True)}</div>')
    if ev.get("possible_duplicates"):
        st.caption(t("possible_duplicates") + ": " + ", ".join(
            f'#{d["id"]} ({state_name(d["state"])})' for d in ev["possible_duplicates"]))
    st.markdown(f"**{t('transitions')}**")
    log_rows = [{t("at"): fmt_ts(x["at"], seconds=True), t("from_state"): state_name(x.get("from_state")) or "—",
                 t("to_state"): state_name(x["to_state"]), t("actor"): actor_name(x.get("actor")),
                 t("note"): x.get("note") or ""}
                for x in ev.get("transitions", [])]
    st.dataframe(log_rows, hide_index=True, width="stretch")
    _event_actions(tok, ev, key=key)


def _event_actions(tok: str, ev: dict, *, key: str) -> None:
    r = role()
    allowed = [to for to in ev.get("allowed_transitions", []) if r in TRANSITION_ROLES.get((ev["state"], to), set())]
    st.markdown(f"**{t('actions')}**")
    if not ev.get("allowed_transitions"):
        st.caption(t("no_transitions"))
        return
    if not allowed:
        st.caption(t("forbidden", msg=role_name(r)))
        return
    show_flash(key)
    with st.form(f"{key}__form_{ev['id']}_{ev['state']}", clear_on_submit=True, border=True):
        reason = note = None
        assignee = satisfaction = None
        if any((ev["state"], to) in NEEDS_REASON for to in allowed):
            reason = st.text_input(t("reason"), key=f"{key}__reason")
        if "dispatched" in allowed:
            opts = _assignee_options(tok, ev)
            choice = st.selectbox(t("assignee_select"), options=[None, *opts], key=f"{key}__assignee",
                                  format_func=lambda o: "—" if o is None else opts[o])
            assignee = choice
        if "closed" in allowed:
            satisfaction = st.slider(t("satisfaction"), 1, 5, 5, key=f"{key}__sat")
        note = st.text_input(t("note"), key=f"{key}__note")
        cols = st.columns(max(1, len(allowed)))
        pressed = None
        for i, to in enumerate(allowed):
            if cols[i].form_submit_button(action_name(to), key=f"{key}__to_{to}",
                                          type="primary" if i == 0 else "secondary", width="stretch"):
                pressed = to
    if pressed:
        body: dict = {"to": pressed}
        if note:
            body["note"] = note
        if reason:
            body["reason"] = reason
        if pressed == "dispatched" and assignee:
            body["assignee_worker_id"] = int(assignee)
        if pressed == "closed" and satisfaction:
            body["satisfaction"] = int(satisfaction)
        try:
            out = api.transition(tok, ev["id"], body)
        except api.ApiError as exc:
            if isinstance(exc, api.ApiUnavailable) or exc.status not in (403, 409, 422):
                raise
            show_api_error(exc)
            return
        flash(key, t("move_done", id=out["id"], state=state_name(out["state"])))
        st.rerun()


def _assignee_options(tok: str, ev: dict) -> dict:
    """Whom to dispatch to, by name: the API's suggestions (in 平急转换, mobilised 下沉干部 first), else the
    grid's workers, on duty and nearest first."""
    try:
        sug = api.call("GET", f"/v1/events/{ev['id']}/suggestions", token=tok)
        items = sug.get("items", []) if isinstance(sug, dict) else sug
        if items:
            return {w["worker_id"]: f'{"●" if w.get("on_duty") else "○"} {w["name"]} '
                                    f'({worker_role_name(w.get("role"))}) · {w.get("reason") or ""}' for w in items}
    except api.ApiError as exc:
        if isinstance(exc, api.ApiUnavailable):
            raise
    try:
        ws = api.grid_workers(tok, ev["grid_code"], ev.get("lon"), ev.get("lat"))
    except api.ApiError:
        return {}
    out = {}
    for w in ws:
        d = f' · {w["distance_m"]:.0f} m' if w.get("distance_m") is not None else ""
        duty = "●" if w.get("on_duty") else "○"
        out[w["id"]] = f'{duty} {w["name"]} ({worker_role_name(w["role"])}){d}'
    return out


def worker_names(tok: str, grid_code: str | None) -> dict[int, str]:
    """{worker id: name} for a grid's workers and, failing that, the caller's whole jurisdiction."""
    out: dict[int, str] = {}
    try:
        if grid_code:
            out = {w["id"]: w["name"] for w in api.grid_workers(tok, grid_code)}
        if not out:
            out = {w["id"]: w["name"] for w in api.workers(tok)}
    except api.ApiError:
        pass
    return out


def assignee_name(ev: dict, names: dict[int, str]) -> str:
    """The assignee by name ("未指派" when none); an id only when the API does not tell the name."""
    wid = ev.get("assignee_worker_id")
    if not wid:
        return t("assignee_none")
    return ev.get("assignee_name") or names.get(int(wid)) or f"#{wid}"


def actor_name(actor: str | None) -> str:
    """``user:dispatcher`` → ``dispatcher``; keys and the seeder keep their kind in words."""
    if not actor:
        return "—"
    kind, _, who = actor.partition(":")
    return who if kind == "user" and who else actor


def new_idempotency_key(name: str) -> str:
    """A key per form instance: a double click or a retry cannot create the event twice."""
    k = f"{name}__idem"
    if k not in st.session_state:
        st.session_state[k] = str(uuid.uuid4())
    return st.session_state[k]


def reset_idempotency_key(name: str) -> None:
    st.session_state.pop(f"{name}__idem", None)


__all__ = ["auth", "token", "role", "guard", "css", "sidebar", "event_panel", "kind_name"]


# --------------------------------------------------------------------------- scope


def scope(tok: str) -> dict:
    """The caller's jurisdictions, its root, the published plan ids (a cache version) and the map bbox."""
    from dashboard.maps import union_bbox

    js = api.jurisdictions(tok)
    a = auth() or {}
    code = (a.get("jurisdiction") or {}).get("code")
    root = next((j for j in js if j["code"] == code), js[0] if js else None)
    published = tuple(sorted(j["published_plan_id"] for j in js if j.get("published_plan_id")))
    bbox = None
    if root and root.get("bbox") and all(v is not None for v in root["bbox"]):
        bbox = root["bbox"]
    else:
        bbox = union_bbox([j.get("bbox") for j in js])
    return {"jurisdictions": js, "root": root, "published": published, "bbox": bbox}


# --------------------------------------------------------------------------- flash messages


def flash(name: str, message: str) -> None:
    """A success message shown on the following runs for a while (reruns caused by maps must not eat it)."""
    import time

    st.session_state[f"flash__{name}"] = (message, time.monotonic())


def show_flash(name: str, ttl: float = 20.0) -> None:
    import time

    v = st.session_state.get(f"flash__{name}")
    if not v:
        return
    if time.monotonic() - v[1] > ttl:
        del st.session_state[f"flash__{name}"]
        return
    st.success(v[0], icon=":material/check_circle:")
