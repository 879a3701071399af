"""Request bodies (pydantic). Responses are plain JSON documented in each route."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

CRS = Literal["wgs84", "gcj02", "cgcs2000"]
SOURCES = Literal["worker_app", "hotline_12345", "patrol", "sensor", "resident"]
PRIORITIES = Literal["urgent", "normal", "routine"]
#: 网格长, 专职网格员, 辅助网格员, 兼职 (下沉干部)
WORKER_ROLES = Literal["chief", "full_time", "auxiliary", "part_time"]
STATES = Literal["reported", "accepted", "dispatched", "in_progress", "resolved", "closed", "returned", "rejected"]


#: Dates accepted anywhere in the API: [EARLIEST, LATEST).
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
#: How far in the future a device clock may be for a GPS fix.
MAX_CLOCK_SKEW = timedelta(minutes=5)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def _iso_only(v):
    """Only ISO 8601 text (pydantic would also take numbers such as ``0.5`` as Unix times)."""
    if isinstance(v, datetime):
        return v
    if not isinstance(v, str) or not _ISO.match(v.strip()):
        raise ValueError("expected an ISO 8601 date-time such as 2026-11-26T08:00:00Z")
    return v.strip()


def _bounded(v: datetime) -> datetime:
    """Aware (UTC when no offset is given) and between 2000 and 2100."""
    v = v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    if not (EARLIEST <= v < LATEST):
        raise ValueError(f"must be between {EARLIEST.date()} and {LATEST.date()}")
    return v


def _not_future(v: datetime) -> datetime:
    if v > datetime.now(timezone.utc) + MAX_CLOCK_SKEW:
        raise ValueError(f"is in the future (more than {int(MAX_CLOCK_SKEW.total_seconds())} s ahead of the server)")
    return v


#: A date-time parameter or field: ISO 8601 only, between 2000 and 2100.
Moment = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_bounded)]
#: A measured moment (a GPS fix): a :data:`Moment` not in the future beyond :data:`MAX_CLOCK_SKEW`.
PastMoment = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_bounded), AfterValidator(_not_future)]


def _text_ok(v):
    """Refuse text that cannot be stored or sent back as UTF-8 (lone surrogates such as ``\\ud800``)."""
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"contains an unpaired surrogate (\\u{ord(v[exc.start]):04x}) at character {exc.start}; "
                             "send valid UTF-8 text") from None
    elif isinstance(v, list):
        for x in v:
            _text_ok(x)
    return v


class Input(BaseModel):
    """Base of request bodies: unknown fields refused, every text field valid UTF-8."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _utf8(cls, v):
        return _text_ok(v)


class EventIn(Input):

    category: str = Field(..., description="Catalogue category: person 人 / house 房 / enterprise 企 / component 部件 / incident 事件",
                          max_length=40)
    subtype: str = Field(..., max_length=60, description="Sub-type code from GET /v1/catalogue")
    source: SOURCES
    lon: float = Field(..., ge=-180, le=180)
    lat: float = Field(..., ge=-90, le=90)
    crs: CRS = "wgs84"
    description: str = Field("", max_length=4000)
    address: str | None = Field(None, max_length=400)
    reporter_name: str | None = Field(None, max_length=100)
    reporter_phone: str | None = Field(None, max_length=40, pattern=r"^[0-9+\-() ]{3,40}$")
    anonymous: bool = False
    priority: PRIORITIES | None = Field(None, description="Override the sub-type's default priority (SLA)")


class TransitionIn(Input):

    to: STATES
    note: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=2000, description="Required for returned / rejected / reopening")
    assignee_worker_id: int | None = Field(None, ge=1)
    department: str | None = Field(None, max_length=100)
    satisfaction: int | None = Field(None, ge=1, le=5, description="Resident's rating when closing")


class WorkerIn(Input):

    name: str = Field(..., min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=40)
    role: WORKER_ROLES
    jurisdiction_code: str = Field(..., pattern=r"^\d{12}$")
    grid_codes: list[str] = Field(default_factory=list)
    on_duty: bool = False
    username: str | None = Field(None, description="Link to a login (users.username)")


class WorkerPatch(Input):

    on_duty: bool | None = None
    phone: str | None = Field(None, max_length=40)
    grid_codes: list[str] | None = None
    role: WORKER_ROLES | None = Field(None, description="chief / full_time / auxiliary / part_time (下沉干部)")


class Fix(Input):

    ts: PastMoment = Field(..., description="When the fix was taken (ISO 8601; 2000 … now + 5 min)")
    lon: float = Field(..., ge=-180, le=180)
    lat: float = Field(..., ge=-90, le=90)
    accuracy_m: float | None = Field(None, ge=0, le=100000)


class FixesIn(Input):

    crs: CRS = "wgs84"
    fixes: list[Fix] = Field(..., min_length=1, max_length=10000)


# --------------------------------------------------------------------------- dispatch / 12345 (docs/dispatch-api.md)

APPEALS = Literal["咨询", "求助", "投诉", "建议"]


class WorkOrderIn(BaseModel):
    """A 12345 work order: a point (lon/lat) or an address that the standard-address search resolves."""

    model_config = ConfigDict(extra="forbid")

    order_no: str = Field(..., min_length=1, max_length=64, pattern=r"^[0-9A-Za-z\-_]+$", description="工单号")
    called_at: datetime = Field(..., description="来电时间 (ISO 8601 with offset)")
    appeal_type: APPEALS = Field(..., description="诉求类型")
    category: str = Field(..., max_length=40)
    subtype: str = Field(..., max_length=60)
    content: str = Field(..., min_length=1, max_length=4000, description="诉求内容")
    address: str | None = Field(None, max_length=400)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    crs: CRS = "wgs84"
    caller_name: str | None = Field(None, max_length=100)
    caller_phone: str | None = Field(None, max_length=40, pattern=r"^[0-9+\-() ]{3,40}$")


class CallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    satisfaction: int | None = Field(None, ge=1, le=5, description="满意度 1–5 (required when reached)")
    reached: bool = Field(True, description="是否联系到来电人")
    note: str | None = Field(None, max_length=2000)


class SuperviseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["overdue", "disputed"]
    reason: str | None = Field(None, max_length=2000, description="Required for a disputed event")


class ReopenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(..., max_length=2000, description="返工原因 (required)")


class EmergencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool
    reason: str | None = Field(None, max_length=500, description="Required to switch on")


class CalendarDayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workday: bool
    name: str | None = Field(None, max_length=100)


class KioskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=60)


class HotlineWebhookIn(BaseModel):
    """The webhook of a hotline API key: where status changes of its work orders are POSTed, signed."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., min_length=8, max_length=2000, description="http(s) URL of the hotline's receiver")
    secret: str | None = Field(None, min_length=16, max_length=200,
                               description="HMAC-SHA256 signing secret; omitted: one is generated and shown once")
    active: bool = True
