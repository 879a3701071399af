"""Response schemas for the OpenAPI, so clients and schemathesis can check every answer.

The error body is the same for every route (:mod:`geo.api.errors`); Open311 routes use GeoReport's list of
``{code, description}``. :func:`document` adds both, and the non-JSON media types, to a generated schema.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: str | None = Field(None, description="The field, parameter or column at fault")
    message: str | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx of the API (extra keys such as ``nearest``, ``state`` or ``allowed`` may follow)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(..., description="Machine code, e.g. validation_error, not_found, too_large")
    message: str = Field(..., description="What was wrong and where")
    request_id: str | None = None
    details: list[ErrorDetail] | None = None


class Open311Error(BaseModel):
    code: int
    description: str


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Named(_Out):
    code: str
    name: str | None = None


class PlanRef(_Out):
    id: int
    version: int
    jurisdiction: str


class Staff(_Out):
    id: int
    name: str
    role: str
    on_duty: bool
    phone: str | None = Field(None, description="Masked for roles that do not see staff phones")


class GridAnswer(_Out):
    """A grid's public face, plus its staff when the caller's jurisdiction covers the grid (else null)."""

    code: str
    name: str | None
    kind: str | None
    level: int | None
    population: int | None
    community: Named | None
    street: Named | None = None
    district: Named | None = None
    plan: PlanRef
    chief: Staff | None = None
    workers_on_duty: list[Staff] | None = None
    point: dict | None = None


class GridDetail(GridAnswer):
    workers: list[Staff] | None = None


class BatchAnswer(_Out):
    count: int
    codes: list[str | None]
    errors: list[dict]
    plan_ids: list[int]


class Me(_Out):
    kind: str
    name: str
    role: str
    jurisdiction_id: int
    worker_id: int | None
    sees_personal_data: bool


class Token(_Out):
    access_token: str
    token_type: str
    role: str
    jurisdiction: dict
    expires_in: int


class JurisdictionItem(_Out):
    id: int
    code: str
    name: str
    level: str
    urban: bool | None
    parent_code: str | None
    plans: int
    published_plan_id: int | None
    bbox: list[float | None]


class JurisdictionDetail(_Out):
    code: str
    name: str
    level: str
    urban: bool | None
    children: list[dict]
    geometry: dict | None


class Publication(_Out):
    """One period a plan was in force (a rolled-back plan has several)."""

    action: str
    published_at: str
    published_by: str
    reason: str | None
    retired_at: str | None
    retired_by_plan_id: int | None


class Plan(_Out):
    id: int
    version: int
    status: str
    name: str | None
    jurisdiction_code: str
    jurisdiction_name: str | None
    grids: int
    created_by: str | None
    published_by: str | None
    created_at: str | None
    published_at: str | None
    retired_at: str | None
    params: dict | None
    quality: dict | None = None
    kind: str | None = None
    parent_id: int | None = None
    publications: list[Publication] = []


class Job(_Out):
    id: int
    state: str
    progress: float | None
    stage: str | None
    plan_id: int | None
    error: str | None
    params: dict | None
    created_by: str | None
    created_at: str
    finished_at: str | None


class JobStarted(_Out):
    job_id: int
    state: str


class Event(_Out):
    id: int
    category: str
    subtype: str
    priority: str
    source: str
    state: str
    description: str | None
    address: str | None
    reporter_name: str | None = Field(None, description="Masked for roles that do not see reporters' data")
    reporter_phone: str | None = Field(None, description="Masked for roles that do not see reporters' data")
    anonymous: bool
    grid_code: str | None
    plan_id: int | None
    jurisdiction_id: int | None
    department: str | None
    assignee_worker_id: int | None
    duplicate_of: list[int] | None
    created_at: str | None
    due_at: str | None
    overdue: bool | None
    lon: float
    lat: float


class EventDetail(Event):
    transitions: list[dict]
    allowed_transitions: list[str]
    possible_duplicates: list[dict] | None = Field(None, description="Only events inside the caller's subtree")


class EventList(_Out):
    total: int
    limit: int
    offset: int
    items: list[Event]


class Worker(_Out):
    id: int
    name: str
    role: str
    on_duty: bool
    phone: str | None = Field(None, description="Masked for roles that do not see staff phones")
    jurisdiction_code: str
    grid_codes: list[str]
    synthetic: bool | None


class PositionsAnswer(_Out):
    received: int
    inserted: int
    duplicates: int
    outside_own_grids: int
    latest: dict


class LatestPosition(_Out):
    id: int
    name: str
    role: str
    on_duty: bool
    ts: str
    grid_code: str | None
    outside_own_grids: bool | None
    lon: float
    lat: float


class Track(_Out):
    worker_id: int
    day: str
    fixes: list[dict]
    geometry: dict


class GridWorker(_Out):
    id: int
    name: str
    role: str
    on_duty: bool
    phone: str | None
    ts: str | None
    lon: float | None
    lat: float | None
    distance_m: float | None


class Kpis(_Out):
    from_: str = Field(..., alias="from")
    to: str


class Heatmap(_Out):
    res: int
    total: int
    cells: list[dict]


class TrendDay(_Out):
    day: str
    created: int
    resolved: int


class TopGrid(_Out):
    grid_code: str | None
    name: str | None
    events: int
    open: int


class Catalogue(_Out):
    sla_hours: dict
    sources: dict
    categories: list[dict]


class Open311Service(_Out):
    service_code: str
    service_name: str


class Open311Request(_Out):
    service_request_id: str
    status: str


class Open311Submitted(_Out):
    service_request_id: str
    service_notice: str


class Status(_Out):
    status: str | None = None


#: (method, path) → the model of its JSON success body (a list of it when given as [Model])

# --------------------------------------------------------------------------- dispatch (12345, loop, big screen)


class WorkOrder(_Out):
    order_no: str
    id: int
    event_id: int
    merged: bool
    called_at: str
    category: str
    subtype: str
    caller_name: str | None = Field(None, description="Masked for roles that do not see reporters")
    caller_phone: str | None = Field(None, description="Masked for roles that do not see reporters")
    status: str
    closed: bool
    due_at: str
    expected_datetime: str
    grid_code: str | None
    callback: dict | None
    created_at: str
    updated_at: str


class WorkOrderList(_Out):
    items: list[WorkOrder]
    next_updated_since: str | None


class GeocodeAnswer(_Out):
    query: str
    total_indexed: int
    candidates: list[dict]


class Supervision(_Out):
    id: int
    event_id: int
    level: int
    level_name: str
    kind: str
    reason: str | None
    by: str
    at: str


class CalendarDay(_Out):
    date: str
    workday: bool
    kind: str
    name: str | None


class Calendar(_Out):
    work_hours: Any
    timezone: str
    days: list[CalendarDay]


class EmergencyMode(_Out):
    active: bool
    since: str | None = None
    by: str | None = None
    reason: str | None = None
    jurisdiction_code: str | None = None
    mobilised: int | None = None


class EmergencyGrid(_Out):
    grid_code: str
    grid_name: str | None
    assigned: int
    mobilised: int


class EmergencyGrids(_Out):
    active: bool
    grids: list[EmergencyGrid]


class FeedItem(_Out):
    kind: str
    event_id: int
    at: str
    priority: str
    title: str
    grid_code: str | None
    grid_name: str | None


class Feed(_Out):
    items: list[FeedItem]
    now: str


class GridPanel(_Out):
    code: str
    name: str | None
    population: int | None
    staff: dict
    events: dict
    emergency: bool
    patrol_coverage_today: float | None


class PatrolItem(_Out):
    grid_code: str
    street_m: float
    covered_m: float
    coverage: float | None


class PatrolCoverage(_Out):
    day: str
    radius_m: float
    items: list[PatrolItem]


class RankingItem(_Out):
    id: int
    code: str | None
    name: str | None
    score: float
    rank: int


class Ranking(_Out):
    by: str
    items: list[RankingItem]


class Suggestion(_Out):
    worker_id: int
    name: str
    role: str
    on_duty: bool
    phone: str | None = Field(None, description="Masked for roles that do not see staff phones")
    mobilised: bool
    distance_m: float | None
    reason: str


class Suggestions(_Out):
    event_id: int
    emergency: bool
    items: list[Suggestion]


class KioskCreated(_Out):
    id: int
    name: str
    token: str
    role: str
    jurisdiction_code: str
    header: str


class KioskToken(_Out):
    id: int
    name: str
    prefix: str
    active: bool
    jurisdiction_code: str
    created_at: str
    created_by: str | None


class KioskRevoked(_Out):
    id: int
    active: bool



class HotlineWebhook(_Out):
    id: int
    api_key_id: int
    api_key_name: str
    jurisdiction_code: str
    url: str
    active: bool
    secret: str | None = Field(None, description="Only in the answer that generated it")


class HotlineDelivery(_Out):
    id: int
    delivery_id: str
    type: str
    seq: int
    order_no: str
    state: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    history: list[dict]
    payload: dict


class HotlineDeliveries(_Out):
    total: int
    limit: int
    offset: int
    items: list[HotlineDelivery]


# --------------------------------------------------------------------------- planner (import, edits, staffing)


class GridImported(_Out):
    plan_id: int | None = Field(None, description="None for a dry run")
    report: dict


class PlanEdited(_Out):
    plan_id: int
    grids: list[dict]
    coverage: dict | None
    edits: int


class MoveOption(_Out):
    from_: str = Field(..., alias="from")
    to: str
    unit: str = Field(..., description="block (a street block) or buildings (a group of whole buildings)")
    lon: float
    lat: float
    ok: bool
    reason: str | None
    message: str | None
    people: int
    households: int
    after: dict[str, int] = Field(..., description="residents of both grids after the move")
    geometry: dict


class MoveOptions(_Out):
    plan_id: int
    grid: str
    options: list[MoveOption]
    movable: int


class PlanEdits(_Out):
    plan_id: int
    kind: str | None
    parent_id: int | None
    edits: list[dict] | None


class StaffingGrid(_Out):
    code: str
    name: str | None
    staff: list[dict] = Field(..., description="Only for grids inside the caller's subtree")
    has_chief: bool


class Staffing(_Out):
    plan_id: int
    published_plan_id: int | None
    grids: list[StaffingGrid]
    without_chief: list[dict]


class PublishCheck(_Out):
    plan_id: int
    published_plan_id: int | None
    warnings: list[dict]


class Published(_Out):
    published: int
    retired: int | None
    effective_at: str


SUCCESS: dict[tuple[str, str], Any] = {
    ("get", "/healthz"): Status,
    ("get", "/readyz"): _Out,
    ("post", "/v1/auth/token"): Token,
    ("get", "/v1/auth/me"): Me,
    ("get", "/v1/lookup"): GridAnswer,
    ("post", "/v1/lookup/batch"): BatchAnswer,
    ("get", "/v1/jurisdictions"): [JurisdictionItem],
    ("get", "/v1/jurisdictions/{code}"): JurisdictionDetail,
    ("get", "/v1/jurisdictions/{code}/plans"): [Plan],
    ("get", "/v1/plans/{plan_id}"): Plan,
    ("get", "/v1/plans/{a}/diff/{b}"): _Out,
    ("post", "/v1/plans/{plan_id}/publish"): _Out,
    ("get", "/v1/grids/{code}"): GridDetail,
    ("post", "/v1/jurisdictions/{code}/partition"): JobStarted,
    ("get", "/v1/jobs/{job_id}"): Job,
    ("get", "/v1/catalogue"): Catalogue,
    ("post", "/v1/events"): Event,
    ("get", "/v1/events"): EventList,
    ("get", "/v1/events/{event_id}"): EventDetail,
    ("post", "/v1/events/{event_id}/transitions"): Event,
    ("get", "/v1/workers"): [Worker],
    ("post", "/v1/workers"): Worker,
    ("patch", "/v1/workers/{worker_id}"): Worker,
    ("post", "/v1/workers/{worker_id}/positions"): PositionsAnswer,
    ("get", "/v1/workers/positions/latest"): [LatestPosition],
    ("get", "/v1/workers/{worker_id}/track"): Track,
    ("get", "/v1/grids/{code}/workers"): [GridWorker],
    ("get", "/v1/stats/kpis"): Kpis,
    ("get", "/v1/stats/heatmap"): Heatmap,
    ("get", "/v1/stats/trend"): [TrendDay],
    ("get", "/v1/stats/top-grids"): [TopGrid],
    ("get", "/v1/stats/open-by-grid"): {"type": "object", "additionalProperties": {"type": "integer"}},
    ("get", "/open311/v2/services.json"): [Open311Service],
    ("get", "/open311/v2/requests.json"): [Open311Request],
    ("post", "/open311/v2/requests.json"): [Open311Submitted],
    ("get", "/open311/v2/requests/{request_id}.json"): [Open311Request],
    ("post", "/v1/jobs/{job_id}/cancel"): Job,
    ("post", "/v1/jurisdictions/{code}/grid-imports"): GridImported,
    ("post", "/v1/plans/{plan_id}/edits"): PlanEdited,
    ("get", "/v1/plans/{plan_id}/edits"): PlanEdits,
    ("post", "/v1/plans/{plan_id}/undo"): PlanEdited,
    ("get", "/v1/plans/{plan_id}/move-options"): MoveOptions,
    ("get", "/v1/plans/{plan_id}/staffing"): Staffing,
    ("get", "/v1/plans/{plan_id}/publish-check"): PublishCheck,
    ("post", "/v1/plans/{plan_id}/rollback"): Published,
    ("post", "/v1/work-orders"): WorkOrder,
    ("get", "/v1/work-orders"): WorkOrderList,
    ("get", "/v1/work-orders/{order_no}"): WorkOrder,
    ("post", "/v1/work-orders/{order_no}/callback"): WorkOrder,
    ("get", "/v1/geocode"): GeocodeAnswer,
    ("post", "/v1/events/{event_id}/supervise"): Supervision,
    ("get", "/v1/events/{event_id}/supervisions"): [Supervision],
    ("post", "/v1/events/{event_id}/reopen"): Event,
    ("get", "/v1/calendar"): Calendar,
    ("put", "/v1/calendar/{day}"): CalendarDay,
    ("get", "/v1/emergency"): EmergencyMode,
    ("post", "/v1/emergency"): EmergencyMode,
    ("get", "/v1/emergency/grids"): EmergencyGrids,
    ("get", "/v1/feed"): Feed,
    ("get", "/v1/grids/{code}/panel"): GridPanel,
    ("get", "/v1/stats/patrol-coverage"): PatrolCoverage,
    ("get", "/v1/stats/ranking"): Ranking,
    ("get", "/v1/events/{event_id}/suggestions"): Suggestions,
    ("post", "/v1/kiosk-tokens"): KioskCreated,
    ("get", "/v1/kiosk-tokens"): [KioskToken],
    ("delete", "/v1/kiosk-tokens/{token_id}"): KioskRevoked,
    ("put", "/v1/hotline/webhooks/{key_id}"): HotlineWebhook,
    ("get", "/v1/hotline/webhooks"): [HotlineWebhook],
    ("delete", "/v1/hotline/webhooks/{key_id}"): HotlineWebhook,
    ("get", "/v1/hotline/deliveries"): HotlineDeliveries,
}


#: statuses any route may answer with the error body
ERROR_STATUSES = {
    "400": "Malformed request (body not parseable)",
    "401": "Not authenticated (Bearer token or X-API-Key)",
    "403": "Authenticated, but the role or jurisdiction does not allow it",
    "404": "Not found — or outside the caller's jurisdiction (no existence leak)",
    "405": "Method not allowed",
    "409": "Conflicts with the object's state",
    "413": "Request body over the route's size limit",
    "415": "Unsupported Content-Type",
    "422": "Invalid input; details name each field",
    "429": "Too many attempts",
    "503": "Database unavailable or busy; retry after Retry-After",
}

#: non-JSON success bodies: path → media type (or a tuple of them)
MEDIA = {
    "/v1/grids": "application/geo+json",
    "/v1/plans/{plan_id}/grids": "application/geo+json",
    "/v1/tiles/{z}/{x}/{y}.mvt": "application/vnd.mapbox-vector-tile",
    "/v1/tiles/basemap/{z}/{x}/{y}.mvt": "application/vnd.mapbox-vector-tile",
    "/v1/plans/{plan_id}/export": ("application/geopackage+sqlite3", "application/zip", "application/geo+json",
                                   "text/csv"),
    "/v1/plans/{plan_id}/print/{community}": ("application/pdf", "image/png"),
}


def _ref(schema: dict, model: type[BaseModel]) -> dict:
    """Add *model* (and its sub-models) to the components; return a $ref to it."""
    js = model.model_json_schema(ref_template="#/components/schemas/{model}")
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, sub in js.pop("$defs", {}).items():
        comps[name] = sub
    comps[model.__name__] = js
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Describe every error status and non-JSON media type on every operation of *schema* (in place)."""
    err = _ref(schema, ErrorBody)
    o311 = {"type": "array", "items": _ref(schema, Open311Error)}
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            body = o311 if path.startswith("/open311/") else err
            for status, desc in ERROR_STATUSES.items():
                responses[status] = {"description": desc, "content": {"application/json": {"schema": body}}}
            media = MEDIA.get(path)
            ok = next((s for s in responses if s.startswith("2")), None)
            model = SUCCESS.get((method, path))
            if model is not None and ok:
                if isinstance(model, dict):
                    js = model
                elif isinstance(model, list):
                    js = {"type": "array", "items": _ref(schema, model[0])}
                else:
                    js = _ref(schema, model)
                responses[ok]["content"] = {"application/json": {"schema": js}}
                if path == "/v1/events" and method == "post":  # an idempotent replay answers 200 with the same body
                    responses["200"] = {"description": "Idempotent replay",
                                        "content": {"application/json": {"schema": js}}}
            if media and ok:  # one media type, or a tuple of the types a route may answer (an export's formats)
                responses[ok]["content"] = {
                    m: {"schema": {"type": "object"} if m.endswith("json") else {"type": "string", "format": "binary"}}
                    for m in ((media,) if isinstance(media, str) else media)}
            if path == "/v1/lookup/batch" and ok:
                responses[ok].setdefault("content", {})["text/csv"] = {"schema": {"type": "string"}}
    comps = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        comps.pop(name, None)
    return schema
