"""Interface strings in Chinese (default) and English.

``t("key", **fmt)`` looks the key up in the language kept in ``st.session_state["lang"]``; a key missing
from a language falls back to Chinese, then to the key itself (so a missing string is visible, not fatal).
"""

from __future__ import annotations

import streamlit as st

LANGS = {"zh": "中文", "en": "English"}

ROLE_NAMES = {
    "zh": {"admin": "管理员", "planner": "规划员", "dispatcher": "调度员", "worker": "网格员", "leader": "领导"},
    "en": {"admin": "Administrator", "planner": "Planner", "dispatcher": "Dispatcher", "worker": "Grid worker",
           "leader": "Leader"},
}

STATE_NAMES = {
    "zh": {"reported": "上报", "accepted": "受理", "dispatched": "分流派遣", "in_progress": "调处中",
           "resolved": "已办结(待核查)", "closed": "反馈结案", "returned": "退回", "rejected": "不予受理"},
    "en": {"reported": "Reported", "accepted": "Accepted", "dispatched": "Dispatched", "in_progress": "In progress",
           "resolved": "Resolved (to verify)", "closed": "Closed", "returned": "Returned", "rejected": "Rejected"},
}

#: label of the button that moves an event *to* a state
ACTION_NAMES = {
    "zh": {"accepted": "受理", "rejected": "不予受理", "dispatched": "分流派遣", "in_progress": "开始调处",
           "returned": "退回", "resolved": "办结", "closed": "结案反馈", "reported": "上报"},
    "en": {"accepted": "Accept", "rejected": "Reject", "dispatched": "Dispatch", "in_progress": "Start work",
           "returned": "Return", "resolved": "Resolve", "closed": "Close", "reported": "Report"},
}

KIND_NAMES = {
    "zh": {"standard": "标准网格", "exclusive": "专属网格", "rural": "农村网格"},
    "en": {"standard": "standard", "exclusive": "exclusive (special unit)", "rural": "rural (village)"},
}

WORKER_ROLES = {
    "zh": {"chief": "网格长", "full_time": "专职网格员", "auxiliary": "辅助网格员", "part_time": "兼职(下沉干部)"},
    "en": {"chief": "Grid chief", "full_time": "Full-time", "auxiliary": "Auxiliary", "part_time": "Part-time"},
}

PRIORITY_NAMES = {
    "zh": {"urgent": "紧急", "normal": "一般", "routine": "常规"},
    "en": {"urgent": "urgent", "normal": "normal", "routine": "routine"},
}

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "app_title": "网格化管理平台",
        "app_subtitle": "网格划分 · 事件闭环 · 指挥大屏",
        "language": "语言 / Language",
        # login
        "login_title": "登录",
        "username": "用户名",
        "password": "密码",
        "login_button": "登录",
        "logout": "退出登录",
        "bad_credentials": "用户名或密码错误。",
        "too_many_attempts": "登录失败次数过多，请稍后再试：{msg}",
        "login_missing": "请输入用户名和密码。",
        "session_expired": "登录已过期，请重新登录。",
        "logged_in_as": "当前用户",
        "role": "角色",
        "jurisdiction": "辖区",
        "demo_hint": "演示账号：admin / planner / dispatcher / worker / leader",
        # errors
        "api_down": "无法连接到网格服务 API（`{url}`）。请确认服务已启动（`geo serve`），稍后会自动重试。",
        "api_error": "服务返回错误：{msg}",
        "unexpected": "页面出现意外错误，已记录日志。请刷新页面或联系管理员。",
        "forbidden": "当前角色无权执行此操作：{msg}",
        # nav
        "page_bigscreen": "大屏",
        "page_dispatch": "调度",
        "page_planner": "规划",
        "page_events": "事件",
        "page_login": "登录",
        # map settings
        "map_settings": "地图设置",
        "tile_url": "底图瓦片地址 (XYZ)",
        "tile_url_help": "留空则使用纯色背景（离线可用）。例如 https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "tile_gcj": "底图使用 GCJ-02 坐标（高德/腾讯）",
        "tile_gcj_help": "勾选后，所有叠加图层转换为 GCJ-02 以与底图对齐。",
        "basemap_plain": "纯色背景",
        # big screen
        "bs_title": "{name} 网格化管理指挥大屏",
        "window": "时间范围",
        "win_today": "今日",
        "win_7d": "近7天",
        "win_30d": "近30天",
        "category": "事件类别",
        "all_categories": "全部类别",
        "last_refreshed": "最后刷新",
        "refresh_every": "每 {s} 秒自动刷新",
        "kpi_events_today": "今日事件",
        "kpi_dispatch_rate": "派遣率",
        "kpi_resolution_rate": "办结率",
        "kpi_satisfaction": "满意度",
        "kpi_overdue": "超期未办",
        "kpi_workers_on_duty": "在岗网格员",
        "kpi_window_note": "比率为近30天",
        "top_grids": "事件最多的网格",
        "trend": "近30天事件趋势",
        "trend_created": "上报",
        "trend_resolved": "办结",
        "layer_grids": "网格（按未办结事件着色）",
        "layer_heat": "事件热力 (H3)",
        "layer_workers": "网格员位置",
        "legend_open": "未办结事件数",
        "legend_heat": "热力：事件数",
        "legend_on_duty": "在岗",
        "legend_off_duty": "离岗",
        "legend_outside": "在岗·不在本网格",
        "no_plan": "尚未发布网格方案。请规划员在“规划”页运行划分并发布方案后，地图与查询才可用。",
        "no_events": "所选时间范围内没有事件。",
        "no_workers": "暂无网格员位置。",
        "heat_res": "热力格网精度 (H3)",
        "events_unit": "件",
        "open_unit": "未办",
        # dispatch
        "dispatch_title": "调度：位置查询与事件派遣",
        "lon": "经度",
        "lat": "纬度",
        "crs": "坐标系",
        "lookup_button": "查询所属网格",
        "click_hint": "在地图上点击任意位置即可查询。",
        "grid_code": "网格编码",
        "grid_name": "网格名称",
        "grid_kind": "类型",
        "population": "人口",
        "community": "社区",
        "street": "街道",
        "district": "区县",
        "plan": "方案",
        "chief": "网格长",
        "workers_on_duty": "在岗网格员（由近及远）",
        "no_workers_on_duty": "该网格当前无在岗网格员。",
        "distance": "距离",
        "name": "姓名",
        "phone": "电话",
        "recent_events": "该网格近期事件",
        "no_recent_events": "该网格近期没有事件。",
        "not_in_grid": "该位置不在任何已发布网格内。最近的网格：{code}（{name}），约 {d} 米。",
        "lookup_first": "输入坐标或点击地图，查询所属网格。",
        "create_event": "在此位置上报事件",
        "subtype": "事件子类",
        "source": "来源",
        "description": "描述",
        "address": "地址",
        "reporter_name": "上报人",
        "reporter_phone": "联系电话",
        "anonymous": "匿名",
        "submit_event": "提交事件",
        "event_created": "事件 #{id} 已创建，归属网格 {grid}。",
        "event_replayed": "重复提交：已返回先前创建的事件 #{id}。",
        "cannot_create": "当前角色不能上报事件。",
        # event detail
        "event": "事件",
        "state": "状态",
        "priority": "优先级",
        "created_at": "上报时间",
        "due_at": "办理时限",
        "overdue": "超期",
        "department": "责任部门",
        "assignee": "处置人",
        "transitions": "流转记录",
        "from_state": "原状态",
        "to_state": "新状态",
        "actor": "操作人",
        "at": "时间",
        "note": "备注",
        "reason": "原因（退回/不予受理/核查不通过时必填）",
        "assignee_select": "指派网格员",
        "satisfaction": "群众满意度 (1–5)",
        "move_done": "事件 #{id} 已变更为“{state}”。",
        "no_transitions": "该事件已结束，没有可执行的操作。",
        "possible_duplicates": "可能重复的事件",
        "actions": "可执行操作",
        "none": "无",
        "yes": "是",
        "no": "否",
        # events page
        "events_title": "事件列表",
        "filter_state": "状态",
        "filter_grid": "网格编码",
        "filter_overdue": "是否超期",
        "any": "全部",
        "total_events": "共 {n} 条，显示 {a}–{b}",
        "select_event_hint": "在表格中选择一行查看详情与流转记录。",
        "page_no": "页码",
        "grid_code_invalid": "网格编码应为 15 位数字。",
        # planner
        "planner_title": "网格规划",
        "choose_jurisdiction": "选择辖区（街道/乡镇）",
        "min_pop": "每格最少",
        "max_pop": "每格最多",
        "by": "按",
        "by_people": "人口",
        "by_households": "户数",
        "seed": "随机种子",
        "from_scratch": "从零划分（不沿用已发布方案）",
        "run_partition": "运行划分（后台任务）",
        "new_partition": "新建划分方案",
        "partition_unavailable": "当前 API 尚未提供后台划分接口（POST /v1/jurisdictions/{{code}}/partition）。"
                                 "请在服务器上运行：geo partition {code}，完成后在下方选择草案。",
        "job_running": "划分进行中：{stage}",
        "job_done": "划分完成：草案方案 #{plan_id}",
        "job_failed": "划分失败：{error}",
        "plans": "方案列表",
        "no_plans": "该辖区还没有任何方案。",
        "choose_plan": "查看方案",
        "quality": "质量报告",
        "q_grids": "网格数",
        "q_in_range": "人口在范围内占比",
        "q_pop_median": "人口中位数",
        "q_pop_range": "人口最少–最多",
        "q_cv": "人口变异系数",
        "q_pp": "紧凑度 (Polsby-Popper 均值)",
        "q_coverage": "覆盖率",
        "q_gap_overlap": "缝隙 / 重叠 (m²)",
        "q_streets": "边界沿街道占比",
        "q_contiguous": "连通",
        "q_out_of_range": "超出范围的网格",
        "histogram": "网格人口分布",
        "compare": "与已发布方案对比",
        "published_plan": "已发布方案 #{id} v{v}",
        "draft_plan": "草案 #{id} v{v}",
        "diff_added": "新增",
        "diff_removed": "删除",
        "diff_changed": "变更",
        "diff_unchanged": "未变",
        "diff_moved": "调整归属居民",
        "publish": "发布此方案",
        "publish_confirm": "确认发布：发布后当前已发布方案将被停用，查询与派单立即使用新方案。",
        "published_ok": "方案 #{id} 已发布。{retired}",
        "retired_note": "停用方案：{ids}。",
        "publish_not_allowed": "只有规划员或管理员可以发布方案。",
        "not_draft": "该方案状态为“{status}”，只有草案可以发布。",
        "no_published": "该辖区尚无已发布方案，无法对比。",
        "status_draft": "草案",
        "status_published": "已发布",
        "status_retired": "已停用",
        "changed_legend": "高亮：新增/变更的网格",
        "removed_legend": "高亮：被删除/变更的网格",
        "n_grids_label": "{n} 个网格",
        "published_at": "发布时间",
        "params": "参数",
    },
    "en": {
        "app_title": "Grid Governance Platform",
        "app_subtitle": "Grid division · closed-loop events · command screen",
        "language": "语言 / Language",
        "login_title": "Log in",
        "username": "Username",
        "password": "Password",
        "login_button": "Log in",
        "logout": "Log out",
        "bad_credentials": "Wrong username or password.",
        "too_many_attempts": "Too many failed logins: {msg}",
        "login_missing": "Enter a username and a password.",
        "session_expired": "Your session has expired; please log in again.",
        "logged_in_as": "Signed in",
        "role": "Role",
        "jurisdiction": "Jurisdiction",
        "demo_hint": "Demo users: admin / planner / dispatcher / worker / leader",
        "api_down": "Cannot reach the grid service API (`{url}`). Check that it is running (`geo serve`); "
                    "the page retries by itself.",
        "api_error": "The service answered with an error: {msg}",
        "unexpected": "Something went wrong on this page; it has been logged. Reload the page or contact "
                      "an administrator.",
        "forbidden": "Your role may not do this: {msg}",
        "page_bigscreen": "Big screen",
        "page_dispatch": "Dispatch",
        "page_planner": "Planner",
        "page_events": "Events",
        "page_login": "Log in",
        "map_settings": "Map settings",
        "tile_url": "Basemap tile URL (XYZ)",
        "tile_url_help": "Empty: plain background (works offline). E.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "tile_gcj": "Basemap uses GCJ-02 (Amap/Tencent)",
        "tile_gcj_help": "When ticked every overlay is shifted to GCJ-02 so it lines up with the basemap.",
        "basemap_plain": "Plain background",
        "bs_title": "{name} · command screen",
        "window": "Window",
        "win_today": "Today",
        "win_7d": "7 days",
        "win_30d": "30 days",
        "category": "Category",
        "all_categories": "All categories",
        "last_refreshed": "Last refreshed",
        "refresh_every": "refreshes every {s} s",
        "kpi_events_today": "Events today",
        "kpi_dispatch_rate": "Dispatch rate",
        "kpi_resolution_rate": "Resolution rate",
        "kpi_satisfaction": "Satisfaction",
        "kpi_overdue": "Overdue",
        "kpi_workers_on_duty": "Workers on duty",
        "kpi_window_note": "rates over the last 30 days",
        "top_grids": "Grids with most events",
        "trend": "Events over the last 30 days",
        "trend_created": "Reported",
        "trend_resolved": "Resolved",
        "layer_grids": "Grids (coloured by open events)",
        "layer_heat": "Event heatmap (H3)",
        "layer_workers": "Grid workers",
        "legend_open": "Open events",
        "legend_heat": "Heatmap: events",
        "legend_on_duty": "On duty",
        "legend_off_duty": "Off duty",
        "legend_outside": "On duty, outside own grid",
        "no_plan": "No grid plan is published yet. A planner runs a partition and publishes it on the "
                   "Planner page; maps and look-ups work after that.",
        "no_events": "No events in the selected window.",
        "no_workers": "No worker positions yet.",
        "heat_res": "Heatmap cell size (H3 resolution)",
        "events_unit": "events",
        "open_unit": "open",
        "dispatch_title": "Dispatch: look up a location, report and route events",
        "lon": "Longitude",
        "lat": "Latitude",
        "crs": "Coordinates",
        "lookup_button": "Find the grid",
        "click_hint": "Or click anywhere on the map.",
        "grid_code": "Grid code",
        "grid_name": "Grid name",
        "grid_kind": "Kind",
        "population": "Population",
        "community": "Community",
        "street": "Street",
        "district": "District",
        "plan": "Plan",
        "chief": "Grid chief",
        "workers_on_duty": "Workers on duty (nearest first)",
        "no_workers_on_duty": "No worker of this grid is on duty.",
        "distance": "Distance",
        "name": "Name",
        "phone": "Phone",
        "recent_events": "Recent events in this grid",
        "no_recent_events": "No recent events in this grid.",
        "not_in_grid": "This location is outside every published grid. Nearest grid: {code} ({name}), "
                       "about {d} m away.",
        "lookup_first": "Type coordinates or click the map to find the owning grid.",
        "create_event": "Report an event here",
        "subtype": "Sub-type",
        "source": "Source",
        "description": "Description",
        "address": "Address",
        "reporter_name": "Reporter",
        "reporter_phone": "Phone",
        "anonymous": "Anonymous",
        "submit_event": "Submit event",
        "event_created": "Event #{id} created in grid {grid}.",
        "event_replayed": "Already submitted: event #{id} returned.",
        "cannot_create": "Your role cannot report events.",
        "event": "Event",
        "state": "State",
        "priority": "Priority",
        "created_at": "Reported",
        "due_at": "Due",
        "overdue": "Overdue",
        "department": "Department",
        "assignee": "Assignee",
        "transitions": "Transition log",
        "from_state": "From",
        "to_state": "To",
        "actor": "By",
        "at": "At",
        "note": "Note",
        "reason": "Reason (required to return, reject or reopen)",
        "assignee_select": "Assign a worker",
        "satisfaction": "Resident satisfaction (1–5)",
        "move_done": "Event #{id} is now “{state}”.",
        "no_transitions": "This event is finished; nothing more to do.",
        "possible_duplicates": "Possible duplicates",
        "actions": "Actions",
        "none": "none",
        "yes": "yes",
        "no": "no",
        "events_title": "Events",
        "filter_state": "State",
        "filter_grid": "Grid code",
        "filter_overdue": "Overdue",
        "any": "Any",
        "total_events": "{n} events, showing {a}–{b}",
        "select_event_hint": "Select a row to see its details and transition log.",
        "page_no": "Page",
        "grid_code_invalid": "A grid code has 15 digits.",
        "planner_title": "Grid planning",
        "choose_jurisdiction": "Jurisdiction (street / town)",
        "min_pop": "Min per grid",
        "max_pop": "Max per grid",
        "by": "By",
        "by_people": "people",
        "by_households": "households",
        "seed": "Seed",
        "from_scratch": "From scratch (ignore the published plan)",
        "run_partition": "Run partition (background job)",
        "new_partition": "New partition",
        "partition_unavailable": "This API does not offer background partitioning yet "
                                 "(POST /v1/jurisdictions/{{code}}/partition). Run `geo partition {code}` on the "
                                 "server, then choose the draft below.",
        "job_running": "Partitioning: {stage}",
        "job_done": "Partition finished: draft plan #{plan_id}",
        "job_failed": "Partition failed: {error}",
        "plans": "Plans",
        "no_plans": "This jurisdiction has no plan yet.",
        "choose_plan": "Plan to inspect",
        "quality": "Quality report",
        "q_grids": "Grids",
        "q_in_range": "In population range",
        "q_pop_median": "Median population",
        "q_pop_range": "Population min–max",
        "q_cv": "Population CV",
        "q_pp": "Compactness (Polsby-Popper mean)",
        "q_coverage": "Coverage",
        "q_gap_overlap": "Gap / overlap (m²)",
        "q_streets": "Boundaries on streets",
        "q_contiguous": "Contiguous",
        "q_out_of_range": "Grids out of range",
        "histogram": "Population per grid",
        "compare": "Compare with the published plan",
        "published_plan": "Published plan #{id} v{v}",
        "draft_plan": "Draft #{id} v{v}",
        "diff_added": "Added",
        "diff_removed": "Removed",
        "diff_changed": "Changed",
        "diff_unchanged": "Unchanged",
        "diff_moved": "Residents moved",
        "publish": "Publish this plan",
        "publish_confirm": "Confirm: the published plan is retired and look-ups and dispatch use the new plan "
                           "at once.",
        "published_ok": "Plan #{id} published. {retired}",
        "retired_note": "Retired: {ids}.",
        "publish_not_allowed": "Only a planner or an administrator can publish a plan.",
        "not_draft": "This plan is {status}; only a draft can be published.",
        "no_published": "No published plan in this jurisdiction to compare with.",
        "status_draft": "draft",
        "status_published": "published",
        "status_retired": "retired",
        "changed_legend": "Highlighted: added/changed grids",
        "removed_legend": "Highlighted: removed/changed grids",
        "n_grids_label": "{n} grids",
        "published_at": "Published",
        "params": "Parameters",
    },
}

# the dispatch page's and the big screen's strings live in their own module
from dashboard.i18n_ops import OPS_STRINGS  # noqa: E402

for _lang, _strings in OPS_STRINGS.items():
    STRINGS.setdefault(_lang, {}).update(_strings)


def lang() -> str:
    return st.session_state.get("lang", "zh")


def t(key: str, **fmt) -> str:
    s = STRINGS.get(lang(), {}).get(key) or STRINGS["zh"].get(key) or key
    return s.format(**fmt) if fmt else s


#: Why a grid is out of range, as the engine's quality report says it (geo.partition.regions.common FLAG_*,
#: geo.partition.verify FLAG_ISLAND, geo.partition.quality REASON_UNEXPLAINED).
FLAG_NAMES = {
    "zh": {"exclusive unit": "专属网格", "single building above max": "单栋楼超过上限",
           "community below min": "社区总人口不足下限", "island below min": "飞地人口不足下限",
           "cut-off part below min": "被隔开的部分人口不足下限", "uninhabited island": "无人居住的飞地",
           "infeasible": "无法调整到范围内", "enclosed by one grid (no feasible alternative)": "被一个网格包围（无可行方案）",
           "island": "飞地"},
}


def flag_name(flag: str) -> str:
    """A quality-report reason in the page's language (the engine's English key where none is known)."""
    return FLAG_NAMES.get(lang(), {}).get(flag, flag)


def role_name(role: str | None) -> str:
    return ROLE_NAMES.get(lang(), {}).get(role or "", role or "")


def state_name(state: str | None) -> str:
    return STATE_NAMES.get(lang(), {}).get(state or "", state or "")


def action_name(state: str) -> str:
    return ACTION_NAMES.get(lang(), {}).get(state, state)


def kind_name(kind: str | None) -> str:
    return KIND_NAMES.get(lang(), {}).get(kind or "", kind or "")


def priority_name(p: str | None) -> str:
    return PRIORITY_NAMES.get(lang(), {}).get(p or "", p or "")


def worker_role_name(role: str | None) -> str:
    return WORKER_ROLES.get(lang(), {}).get(role or "", role or "")


# --------------------------------------------------------------------------- planner tools and workers (issue 12)

STRINGS["zh"].update({
    "page_workers": "网格员", "households": "户数", "in_range": "在范围内", "locked": "已锁定", "row": "行",
    "kind_exclusive": "专属网格", "legend_low": "人口少", "legend_high": "人口多", "plan_map": "方案地图",
    "import_title": "导入现有网格", "import_file": "网格文件（GeoPackage、zip 打包的 Shapefile、GeoJSON、CSV）",
    "import_crs": "坐标系", "import_crs_file": "按文件", "import_tol": "修复容差 (m²)",
    "import_code_col": "编码列（默认 网格编码）", "import_name_col": "名称列（默认 网格名称）",
    "import_chief_col": "网格长列（默认 网格长）", "import_go": "导入并校验",
    "import_done": "已导入为草案方案 #{plan_id}：{n} 个网格，{people} 人",
    "imp_gaps": "空隙", "imp_overlaps": "重叠", "imp_crossing": "跨社区", "imp_codes": "编码问题",
    "imp_repairs": "已修复", "imp_kind": "问题", "imp_where": "位置", "imp_action": "处理",
    "imp_gap": "空隙", "imp_overlap": "重叠", "imp_not_repaired": "未修复（超过容差）",
    "edit_title": "手工调整", "edit_op": "操作", "op_move": "移动街区到相邻网格", "op_merge": "合并两个网格",
    "op_split": "拆分网格", "op_lock": "锁定网格", "op_unlock": "解锁网格", "op_rename": "重命名",
    "edit_lon": "街区内一点 经度（点击地图）", "edit_lat": "纬度", "edit_grid_a": "网格 A", "edit_grid_b": "网格 B（目标）",
    "edit_k": "拆分为", "edit_name": "新名称", "edit_apply": "应用调整", "edit_undo": "撤销上一步",
    "edit_done": "{label}完成，新草案 #{plan_id}",
    "edit_unit": "移动单元", "unit_auto": "自动（街区；整格为一个街区时为楼栋组）", "unit_block": "街区",
    "unit_buildings": "楼栋组", "mv_title": "可移动的街区与楼栋组", "mv_from": "从网格", "mv_choose": "选择网格查看",
    "mv_pick": "选择一个单元（填入下方调整表单）", "mv_pick_none": "—", "mv_to": "目标网格", "mv_after": "调整后人口",
    "mv_ok": "可移动", "mv_no": "不可移动：{why}", "mv_count": "共 {n} 个相邻单元，其中 {movable} 个可移动", "people_unit": "人",
    "mv_none": "该网格与同社区相邻网格之间没有可移动的单元",
    "staff_title": "人员配置", "staff_missing": "无网格长的网格：{n} 个", "staff_table": "各网格建议人员（{n} 个网格）",
    "staff_from": "来自原网格", "staff_shared": "共同居民", "staff_list": "建议人员", "staff_chief": "有网格长",
    "staff_without_chief": "无网格长的网格", "staff_file_chief": "文件中的网格长",
    "warn_identical": "此草案与已发布方案 #{id} 完全相同。", "warn_range": "人口范围 {draft} 与已发布方案的 {published} 不同。",
    "warn_unstaffed": "{n} 个网格没有网格长；发布需勾选例外并说明理由。",
    "override_unstaffed": "仍然发布（有网格没有网格长）", "override_reason": "理由（必填，将记入审计日志）",
    "rollback_title": "回退到已退役方案", "rollback_plan": "方案", "rollback_go": "回退并重新发布",
    "rollback_done": "已回退到方案 #{id}",
    "pub_history": "发布记录", "pub_publish": "发布", "pub_rollback": "回退发布",
    "export_title": "导出与打印", "export_format": "格式", "export_crs": "坐标系", "export_prepare": "生成文件",
    "export_download": "下载 {fmt}（{crs}）", "print_community": "社区", "print_prepare": "生成网格图 PDF",
    "print_download": "下载网格图（A3 横版 PDF）",
    "reason_breaks_contiguity": "调整被拒绝：网格将不再连成一片", "reason_breaks_coverage": "调整被拒绝：会产生空隙或重叠",
    "reason_not_adjacent": "调整被拒绝：两者不相邻", "reason_crosses_community": "调整被拒绝：网格不能跨社区",
    "reason_locked": "调整被拒绝：网格已锁定，请先解锁", "reason_same_grid": "该街区已在目标网格中",
    "reason_no_block": "该点没有找到街区", "reason_no_grid_here": "该点不在任何网格内",
    "reason_empties_grid": "调整被拒绝：这是该网格的全部区域，请改用合并",
    "reason_cannot_split": "无法沿街区拆分该网格", "reason_no_population": "该网格没有居民，无法拆分",
    "reason_splits_building": "调整被拒绝：有楼栋的单元门分在两侧，请改为移动楼栋组",
    "reason_nothing_to_undo": "没有可撤销的调整", "reason_unstaffed": "发布被拒绝：有网格没有网格长",
    "reason_duplicate_name": "已有同名网格", "reason_empty_name": "名称不能为空",
    "reason_invalid_file": "文件无法导入", "reason_validation_error": "输入有误", "reason_conflict": "操作冲突",
    "reason_too_few": "人口过少", "reason_too_many": "人口过多", "reason_not_found": "未找到",
    "workers_title": "网格员管理", "workers_filter_role": "岗位", "workers_filter_grid": "网格", "workers_filter_duty": "在岗",
    "workers_all": "全部", "workers_name": "姓名", "workers_phone": "电话", "workers_grids": "负责网格",
    "workers_add": "新增人员", "workers_assign": "调整负责网格与在岗状态", "workers_save": "保存",
    "workers_saved": "已保存", "workers_jur": "所属辖区", "workers_none": "没有符合条件的人员",
    "workers_set_role": "调整岗位", "workers_filter_jur": "社区/街道", "workers_filter_name": "姓名包含", "workers_grid_hint": "15 位网格编码",
    "workers_grid_bad": "网格编码应为 15 位数字，已忽略此条件",
})
STRINGS["en"].update({
    "page_workers": "Workers", "households": "Households", "in_range": "in range", "locked": "locked", "row": "row",
    "kind_exclusive": "exclusive", "legend_low": "fewer people", "legend_high": "more people", "plan_map": "Plan map",
    "import_title": "Import existing grids", "import_file": "Grid file (GeoPackage, zipped Shapefile, GeoJSON, CSV)",
    "import_crs": "CRS", "import_crs_file": "from the file", "import_tol": "Repair tolerance (m²)",
    "import_code_col": "Code column", "import_name_col": "Name column", "import_chief_col": "Chief column",
    "import_go": "Import and check", "import_done": "Imported as draft #{plan_id}: {n} grids, {people} people",
    "imp_gaps": "Gaps", "imp_overlaps": "Overlaps", "imp_crossing": "Crossing communities", "imp_codes": "Code problems",
    "imp_repairs": "Repairs", "imp_kind": "Problem", "imp_where": "Where", "imp_action": "Action",
    "imp_gap": "gap", "imp_overlap": "overlap", "imp_not_repaired": "not repaired (above tolerance)",
    "edit_title": "Edit by hand", "edit_op": "Edit", "op_move": "Move block to neighbour", "op_merge": "Merge two grids",
    "op_split": "Split a grid", "op_lock": "Lock grid", "op_unlock": "Unlock grid", "op_rename": "Rename",
    "edit_lon": "Point in the block: lon (click the map)", "edit_lat": "lat", "edit_grid_a": "Grid A",
    "edit_grid_b": "Grid B (target)", "edit_k": "Split into", "edit_name": "New name", "edit_apply": "Apply",
    "edit_undo": "Undo last edit", "edit_done": "{label} done: new draft #{plan_id}",
    "edit_unit": "Unit to move", "unit_auto": "auto (block; building group when the block is the whole grid)",
    "unit_block": "street block", "unit_buildings": "building group", "mv_title": "Movable blocks and building groups",
    "mv_from": "From grid", "mv_choose": "choose a grid", "mv_pick": "Pick a unit (fills the edit form)",
    "mv_pick_none": "—", "mv_to": "To grid", "mv_after": "Residents after", "mv_ok": "movable", "mv_no": "not movable: {why}",
    "mv_count": "{n} units on a neighbour's boundary, {movable} movable", "people_unit": "people",
    "mv_none": "No unit of this grid can go to a neighbouring grid of its community",
    "staff_title": "Staffing", "staff_missing": "Grids without a chief: {n}", "staff_table": "Proposed staff ({n} grids)",
    "staff_from": "From grid", "staff_shared": "Shared residents", "staff_list": "Proposed staff",
    "staff_chief": "Has chief", "staff_without_chief": "Grids without a chief", "staff_file_chief": "Chief in file",
    "warn_identical": "This draft is identical to the published plan #{id}.",
    "warn_range": "Range {draft} differs from the published plan's {published}.",
    "warn_unstaffed": "{n} grids have no chief; publishing needs the override and a reason.",
    "override_unstaffed": "Publish anyway (grids without a chief)", "override_reason": "Reason (required, audited)",
    "rollback_title": "Roll back to a retired plan", "rollback_plan": "Plan", "rollback_go": "Roll back",
    "rollback_done": "Rolled back to plan #{id}",
    "pub_history": "Publication history", "pub_publish": "published", "pub_rollback": "rolled back to",
    "export_title": "Export and print", "export_format": "Format", "export_crs": "CRS", "export_prepare": "Prepare file",
    "export_download": "Download {fmt} ({crs})", "print_community": "Community", "print_prepare": "Make 网格图 PDF",
    "print_download": "Download 网格图 (A3 PDF)",
    "reason_breaks_contiguity": "Refused: a grid would no longer be one piece",
    "reason_breaks_coverage": "Refused: it would leave a gap or an overlap", "reason_not_adjacent": "Refused: not neighbours",
    "reason_crosses_community": "Refused: grids never cross communities", "reason_locked": "Refused: the grid is locked",
    "reason_splits_building": "Refused: a building would have entrances in two grids; move its building group",
    "reason_unstaffed": "Publishing refused: grids without a chief", "reason_too_few": "too few",
    "reason_too_many": "too many", "reason_nothing_to_undo": "Nothing to undo",
    "workers_title": "Grid workers", "workers_filter_role": "Role", "workers_filter_grid": "Grid",
    "workers_filter_duty": "On duty", "workers_all": "all", "workers_name": "Name", "workers_phone": "Phone",
    "workers_grids": "Grids", "workers_add": "Add a worker", "workers_assign": "Grids and duty", "workers_save": "Save",
    "workers_saved": "Saved", "workers_jur": "Jurisdiction", "workers_none": "No worker matches",
    "workers_set_role": "Set role", "workers_filter_jur": "Community / street", "workers_filter_name": "Name contains",
    "workers_grid_hint": "15-digit grid code", "workers_grid_bad": "A grid code has 15 digits; this filter is ignored",
})

#: engine progress stages and common job errors, in Chinese
STAGES_ZH = {"reading inputs": "读取数据", "inputs read": "数据已读取", "atoms": "生成街区单元", "adjacency": "计算相邻关系",
             "regions": "划分网格", "grids": "生成网格", "stored": "已保存", "done": "完成", "queued": "排队中",
             "running": "进行中", "failed": "失败", "grow": "生长网格", "repair": "修复范围", "search": "优化边界"}


def stage_text(stage: str) -> str:
    """A progress stage (or error) of the engine in the page's language (Chinese stage names; English kept)."""
    if lang() != "zh" or not stage:
        return stage
    for en, zh in STAGES_ZH.items():
        if stage.lower().startswith(en):
            return zh + stage[len(en):]
    if stage.startswith(("PartitionInputError", "ValueError")):
        return "输入数据有误：" + stage.split(":", 1)[-1].strip()
    return stage
