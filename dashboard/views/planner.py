"""规划 Planner: run a partition as a background job, inspect a plan's quality, compare a draft with the
published plan (changed grids highlighted, residents moved) and publish it (planner/admin).

Background job contract (agreed with the API owner; until the API offers it this page says so):
``POST /v1/jurisdictions/{code}/partition`` with ``{min_pop, max_pop, by, seed, from_scratch}`` → ``{job_id}``;
``GET /v1/jobs/{job_id}`` → ``{state: queued|running|done|failed, progress: 0..1, stage, plan_id, error}``.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import api, maps, ui
from dashboard.i18n import flag_name, stage_text, t
from dashboard.views import planner_tools as tools

MAP_HEIGHT = 460
DONE = {"done", "succeeded", "success", "finished", "completed"}
FAILED = {"failed", "error", "cancelled"}


def render() -> None:
    _page()


@ui.guard
def _page() -> None:
    tok = ui.token()
    sc = ui.scope(tok)
    st.subheader(t("planner_title"))
    ui.show_flash("plan")
    cands = [j for j in sc["jurisdictions"] if j["level"] in ("street", "town") or j.get("plans")]
    if not cands:
        st.info(t("no_plans"))
        return
    by_code = {j["code"]: j for j in cands}
    code = st.selectbox(t("choose_jurisdiction"), list(by_code), key="plan_jur",
                        format_func=lambda c: f'{by_code[c]["name"]} ({c})')
    jur = by_code[code]
    _partition_form(tok, jur)
    tools.import_section(tok, jur)
    plans = api.plans(tok, code)
    if not plans:
        st.info(t("no_plans"))
        return
    published = next((p for p in plans if p["status"] == "published"), None)
    _plans_table(plans)
    tools.rollback_section(tok, plans)
    ids = [p["id"] for p in plans]
    # the newest draft; with none, the plan in force
    default = next((p["id"] for p in plans if p["status"] == "draft"), published["id"] if published else ids[0])
    if st.session_state.get("plan_sel") not in ids:
        st.session_state["plan_sel"] = st.session_state.pop("plan_want", None) or default
    pmap = {p["id"]: p for p in plans}
    sel = st.selectbox(t("choose_plan"), ids, key="plan_sel",
                       format_func=lambda i: f'#{i} v{pmap[i]["version"]} · {_status(pmap[i]["status"])} · '
                                             f'{t("n_grids_label", n=pmap[i]["grids"])}')
    plan = api.plan(tok, sel)
    bbox = jur.get("bbox")
    zoom = maps.map_zoom_for(bbox) if bbox and all(v is not None for v in bbox) else 14
    _quality(tok, plan, zoom)
    fc = api.plan_grids(tok, plan["id"], zoom)
    st.markdown(f"**{t('plan_map')}** · #{plan['id']} v{plan['version']} · {_status(plan['status'])}")
    mbox = bbox if bbox and all(v is not None for v in bbox) else maps.fc_bbox(fc)
    out = tools.plan_map(tok, plan, fc, mbox, key=f"plan_map_edit_{code}",
                         marked={g["code"] for g in (st.session_state.get("edit_last") or {}).get("grids", [])},
                         options=tools.move_options(tok, plan))
    tools.edit_section(tok, plan, fc, (out or {}).get("last_clicked"))
    _compare(tok, jur, plan, published, zoom)
    tools.staffing_section(tok, plan)
    tools.export_section(tok, plan, jur, sc["jurisdictions"])
    _publish(tok, plan)


def _status(s: str) -> str:
    return t(f"status_{s}") if s in ("draft", "published", "retired") else s


# --------------------------------------------------------------------------- partition job


def _partition_form(tok: str, jur: dict) -> None:
    can = ui.role() in ui.CAN_PUBLISH
    with st.expander(t("new_partition"), expanded=bool(st.session_state.get("plan_job")), icon=":material/add:"):
        with st.form("plan_partition", border=False):
            c1, c2, c3, c4 = st.columns(4)
            mn = c1.number_input(t("min_pop"), 1, 100000, 1000, step=100, key="plan_min")
            mx = c2.number_input(t("max_pop"), 1, 200000, 2000, step=100, key="plan_max")
            by = c3.selectbox(t("by"), ["people", "households"], key="plan_by",
                              format_func=lambda b: t(f"by_{b}"))
            seed = c4.number_input(t("seed"), 0, 2**31 - 1, 0, step=1, key="plan_seed")
            scratch = st.checkbox(t("from_scratch"), key="plan_scratch")
            go = st.form_submit_button(t("run_partition"), type="primary", disabled=not can,
                                       icon=":material/play_arrow:")
        if not can:
            st.caption(t("publish_not_allowed"))
        if go:
            if not api.has_endpoint(api.PARTITION_PATH, "post"):
                st.warning(t("partition_unavailable", code=jur["code"]), icon=":material/build:")
            else:
                try:
                    r = api.start_partition(tok, jur["code"], {"min_pop": int(mn), "max_pop": int(mx), "by": by,
                                                               "seed": int(seed), "from_scratch": bool(scratch)})
                    st.session_state["plan_job"] = {"id": r["job_id"], "code": jur["code"]}
                except api.ApiError as exc:
                    if isinstance(exc, api.ApiUnavailable) or exc.status not in (403, 404, 409, 422):
                        raise
                    ui.show_api_error(exc)
        if st.session_state.get("plan_job"):
            _job_progress()


@st.fragment(run_every=1.0)
def _job_progress() -> None:
    _job_progress_body()


@ui.guard
def _job_progress_body() -> None:
    job = st.session_state.get("plan_job")
    if not job:
        return
    j = api.job(ui.token(), job["id"])
    state = str(j.get("state", "")).lower()
    prog = float(j.get("progress") or 0)
    prog = prog / 100 if prog > 1 else prog
    if state in DONE:
        st.session_state.pop("plan_job", None)
        ui.flash("plan", t("job_done", plan_id=j.get("plan_id")))
        st.session_state["plan_want"] = j.get("plan_id")
        st.session_state.pop("plan_sel", None)
        api.clear_caches()
        st.rerun(scope="app")
    if state in FAILED:
        st.session_state.pop("plan_job", None)
        st.error(t("job_failed", error=stage_text(j.get("error") or state)))
        return
    st.progress(min(max(prog, 0.0), 1.0), text=t("job_running", stage=stage_text(j.get("stage") or state or "…")))


# --------------------------------------------------------------------------- plans and quality


def _plans_table(plans: list[dict]) -> None:
    st.markdown(f"**{t('plans')}**")
    st.dataframe([{"#": p["id"], "v": p["version"], t("state"): _status(p["status"]), t("q_grids"): p["grids"],
                   t("created_at"): ui.fmt_ts(p.get("created_at")), t("actor"): p.get("created_by"),
                   t("published_at"): ui.fmt_ts(p.get("published_at")),
                   t("pub_history"): tools.publication_history(p.get("publications") or []),
                   t("params"): _params(p.get("params") or {})}
                  for p in plans], hide_index=True, width="stretch", height=min(38 * (len(plans) + 1) + 4, 220))


def _params(p: dict) -> str:
    return f'{p.get("min_pop", "?")}–{p.get("max_pop", "?")} {p.get("by", "")} seed {p.get("seed", "?")}'


def _quality(tok: str, plan: dict, zoom: int) -> None:
    q = plan.get("quality") or {}
    rng = q.get("range") or {}
    pop = q.get("population") or {}
    comp = q.get("compactness") or {}
    cov = q.get("coverage") or {}
    streets = q.get("streets") or {}
    cont = q.get("contiguity") or {}
    st.markdown(f"**{t('quality')}** · #{plan['id']} v{plan['version']} · {_status(plan['status'])}")
    c = st.columns(6)
    c[0].metric(t("q_grids"), ui.fmt_num(q.get("n_grids", plan.get("grids"))))
    c[1].metric(t("q_in_range"), ui.fmt_rate(rng.get("in_range_share")),
                help=f'{t("q_out_of_range")}: {rng.get("out_of_range", 0)} · ' +
                ", ".join(f"{flag_name(k)} {v}" for k, v in (rng.get("reasons") or {}).items()))
    c[2].metric(t("q_pop_median"), ui.fmt_num(pop.get("median")),
                help=f'{t("q_pop_range")}: {ui.fmt_num(pop.get("min"))}–{ui.fmt_num(pop.get("max"))}')
    c[3].metric(t("q_pp"), "—" if comp.get("polsby_popper_mean") is None else f'{comp["polsby_popper_mean"]:.3f}')
    c[4].metric(t("q_coverage"), "—" if cov.get("covered_share") is None else f'{100 * cov["covered_share"]:.3f}%',
                help=f'{t("q_gap_overlap")}: {cov.get("gap_m2", 0):.2f} / {cov.get("overlap_m2", 0):.2f}')
    c[5].metric(t("q_streets"), ui.fmt_rate(streets.get("boundary_on_streets_share")))
    left, right = st.columns([1.5, 1], gap="large")
    with left:
        fc = api.plan_grids(tok, plan["id"], zoom)
        pops = [f["properties"].get("population", 0) for f in fc.get("features", [])]
        if pops:
            mn, mx = q.get("min_pop"), q.get("max_pop")
            df = pd.DataFrame({"population": pops})
            bars = alt.Chart(df).mark_bar(color="#2f9bff", opacity=0.85).encode(
                x=alt.X("population:Q", bin=alt.Bin(maxbins=30), title=t("population")),
                y=alt.Y("count()", title=t("q_grids")))
            layers = [bars]
            if mn is not None and mx is not None:
                rules = alt.Chart(pd.DataFrame({"v": [mn, mx]})).mark_rule(color="#ff7b5c", strokeDash=[5, 4],
                                                                          size=2).encode(x="v:Q")
                layers.append(rules)
            st.markdown(f"**{t('histogram')}**")
            st.altair_chart(alt.layer(*layers).properties(height=220), width="stretch")
    with right:
        rows = [(t("q_pop_range"), f'{ui.fmt_num(pop.get("min"))} – {ui.fmt_num(pop.get("max"))}'),
                (t("q_cv"), "—" if pop.get("cv") is None else f'{pop["cv"]:.3f}'),
                (t("q_out_of_range"), f'{rng.get("out_of_range", 0)} · ' +
                 ", ".join(f"{flag_name(k)} {v}" for k, v in (rng.get("reasons") or {}).items())),
                (t("q_gap_overlap"), f'{cov.get("gap_m2", 0):.2f} / {cov.get("overlap_m2", 0):.2f}'),
                (t("q_contiguous"), f'{t("yes") if not cont.get("noncontiguous_grids") else t("no")} '
                                    f'({cont.get("noncontiguous_grids", 0)} / {cont.get("multipart_grids", 0)})'),
                ("Polsby-Popper min / median", f'{comp.get("polsby_popper_min", 0):.3f} / '
                                               f'{comp.get("polsby_popper_median", 0):.3f}'),
                (t("plan"), _params(plan.get("params") or {}))]
        st.html(f'<div class="geo-card" data-testid="plan-quality" data-plan-id="{plan["id"]}">{ui.kv(rows)}</div>')


# --------------------------------------------------------------------------- compare


def _compare(tok: str, jur: dict, plan: dict, published: dict | None, zoom: int) -> None:
    st.markdown(f"**{t('compare')}**")
    if not published:
        st.caption(t("no_published"))
        return
    if published["id"] == plan["id"]:
        return
    d = api.plan_diff(tok, published["id"], plan["id"])
    c = st.columns(5)
    c[0].metric(t("diff_added"), len(d.get("added", [])))
    c[1].metric(t("diff_removed"), len(d.get("removed", [])))
    c[2].metric(t("diff_changed"), len(d.get("changed", [])))
    c[3].metric(t("diff_unchanged"), d.get("unchanged", 0))
    c[4].metric(t("diff_moved"), ui.fmt_num(d.get("residents_moved")),
                f'{100 * d.get("residents_moved_share", 0):.1f}%', delta_color="off", delta_arrow="off")
    bm = maps.basemap_settings()
    bbox = jur.get("bbox")
    fa = api.plan_grids(tok, published["id"], zoom)
    fb = api.plan_grids(tok, plan["id"], zoom)
    if not bbox or not all(v is not None for v in bbox):
        bbox = maps.fc_bbox(fb) or maps.fc_bbox(fa)
    left, right = st.columns(2, gap="medium")
    tips = (("code", t("grid_code")), ("name", t("grid_name")), ("population", t("population")))
    with left:
        st.caption(t("published_plan", id=published["id"], v=published["version"]) + " · " + t("removed_legend"))
        m = maps.base_map(bbox, bm, background="#0d1a2e", width_px=760, height_px=MAP_HEIGHT)
        lay = maps.grids_layer(fa, bm, name="a", base_colour="#4d7fb8", highlight=set(d["removed"]) | set(d["changed"]),
                               highlight_colour="#ff9f1c", tooltip_fields=tips)
        maps.render(m, [lay], key=f"plan_map_a_{jur['code']}", height=MAP_HEIGHT, returned=())
    with right:
        st.caption(t("draft_plan", id=plan["id"], v=plan["version"]) + " · " + t("changed_legend"))
        m = maps.base_map(bbox, bm, background="#0d1a2e", width_px=760, height_px=MAP_HEIGHT)
        lay = maps.grids_layer(fb, bm, name="b", base_colour="#4d7fb8", highlight=set(d["added"]) | set(d["changed"]),
                               highlight_colour="#ff3df5", tooltip_fields=tips)
        maps.render(m, [lay], key=f"plan_map_b_{jur['code']}", height=MAP_HEIGHT, returned=())


# --------------------------------------------------------------------------- publish


def _publish(tok: str, plan: dict) -> None:
    if ui.role() not in ui.CAN_PUBLISH:
        st.caption(t("publish_not_allowed"))
        return
    if plan["status"] != "draft":
        st.caption(t("not_draft", status=_status(plan["status"])))
        return
    with st.form(f"plan_publish_{plan['id']}", border=True):
        override, reason = tools.publish_warnings(tok, plan)
        ok = st.checkbox(t("publish_confirm"), key=f"plan_confirm_{plan['id']}")
        go = st.form_submit_button(t("publish"), type="primary", icon=":material/publish:")
    if go and not ok:
        st.warning(t("publish_confirm"))
    if go and ok:
        try:
            out = api.publish(tok, plan["id"], {"override_unstaffed": bool(override), "reason": reason or None})
        except api.ApiError as exc:
            if isinstance(exc, api.ApiUnavailable) or exc.status not in (403, 409, 422):
                raise
            tools.show_refusal(exc)
            return
        retired = t("retired_note", ids=", ".join(f"#{i}" for i in out.get("retired", []))) \
            if out.get("retired") else ""
        ui.flash("plan", t("published_ok", id=out.get("published", plan["id"]), retired=retired))
        st.session_state.pop("plan_sel", None)  # re-create the select so its label shows the new status
        st.session_state["plan_want"] = plan["id"]
        st.rerun()
