"""The dispatch page's input checks without a browser: coordinates, the event form, API error messages."""

from __future__ import annotations

import pytest

dispatch = pytest.importorskip("dashboard.views.dispatch")
form = pytest.importorskip("dashboard.views.dispatch_form")
ui = pytest.importorskip("dashboard.ui")
api = pytest.importorskip("dashboard.api")

BBOX = [114.2835, 30.5932, 114.3166, 30.6067]  # the demo district


@pytest.mark.parametrize("lon, lat, reason", [
    ("114.29x", "30.60", "number"),        # a mistyped longitude is refused, not replaced by the last point
    ("", "30.60", "number"),               # missing
    ("nan", "30.60", "number"),
    ("inf", "30.60", "number"),
    ("200", "30.60", "range"),
    ("114.29", "-91", "range"),
    ("30.60", "114.29", "swapped"),        # typed as lat, lon
    ("116.397", "39.909", "out_of_area"),  # Beijing: outside the service area, said plainly
    ("-105.0", "39.7", "out_of_area"),
])
def test_bad_points_are_refused_with_a_reason(lon, lat, reason):
    out = dispatch.parse_point(lon, lat, BBOX)
    assert out.get("reason") == reason, out
    assert out["error"] and "1,048" not in out["error"]


def test_good_points_pass_in_several_spellings():
    assert dispatch.parse_point("114.2871", "30.6052", BBOX) == {"lon": 114.2871, "lat": 30.6052}
    assert dispatch.parse_point("114.2871, 30.6052", "", BBOX) == {"lon": 114.2871, "lat": 30.6052}
    assert dispatch.parse_point("１１４.２８７１", "３０.６０５２", BBOX) == {"lon": 114.2871, "lat": 30.6052}
    assert dispatch.parse_point(" 114.2871 ", "30.6052°", BBOX)["lon"] == 114.2871
    # a point just outside the district's box (a border street) is still looked up
    assert "lon" in dispatch.parse_point("114.33", "30.61", BBOX)


def test_the_field_is_named_in_the_message():
    assert "经度" in dispatch.parse_point("abc", "30.6", BBOX)["error"]
    assert "纬度" in dispatch.parse_point("114.29", "", BBOX)["error"]
    assert "服务范围" in dispatch.parse_point("116.397", "39.909", BBOX)["error"]


def test_event_form_requires_its_fields():
    errs = form.validate(None, None, "  ", "", False)
    assert len(errs) == 3 and any("事件子类" in e for e in errs) and any("描述" in e for e in errs)
    assert form.validate(("incident", "garbage"), "patrol", "垃圾堆积", "", False) == []
    assert any("联系电话" in e for e in form.validate(("incident", "garbage"), "patrol", "x", "电话", False))
    assert form.validate(("incident", "garbage"), "patrol", "x", "+86 138-0000 1234", False) == []


def test_api_errors_name_the_field_in_chinese():
    exc = api.ApiError(422, "validation_error", "invalid request: reporter_phone", {
        "details": [{"field": "reporter_phone", "message": "String should match pattern '^[0-9+\\\\-() ]{3,40}$'"}]})
    text = ui.api_error_text(exc)
    assert "reporter_phone" not in text and "联系电话" in text
    exc = api.ApiError(422, "validation_error", "invalid request", {
        "details": [{"field": "address", "label": "地址", "message": "没有匹配的标准地址"}]})
    assert ui.api_error_text(exc) == "“地址”：没有匹配的标准地址"
    exc = api.ApiError(422, "validation_error", "invalid request", {"details": [{"field": "body.description",
                                                                                "message": "too long"}]})
    assert "描述" in ui.api_error_text(exc) and "too long" not in ui.api_error_text(exc)


def test_names_not_ids():
    assert ui.assignee_name({"assignee_worker_id": 1145}, {1145: "王芳"}) == "王芳"
    assert ui.assignee_name({"assignee_worker_id": None}, {}) == "未指派"
    assert ui.assignee_name({"assignee_worker_id": 7, "assignee_name": "李雷"}, {}) == "李雷"
    assert ui.actor_name("user:dispatcher") == "dispatcher"


def test_api_keys_go_as_x_api_key():
    assert api.auth_headers("apikey:geo_abc") == {"X-API-Key": "geo_abc"}
    assert api.auth_headers("eyJ.x.y") == {"Authorization": "Bearer eyJ.x.y"}
    assert api.auth_headers("") == {}
