"""Request bodies (pydantic). Responses are plain JSON documented in each route."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CRS = Literal["wgs84", "gcj02", "cgcs2000"]
SOURCES = Literal["worker_app", "hotline_12345", "patrol", "sensor", "resident"]
PRIORITIES = Literal["urgent", "normal", "routine"]
STATES = Literal["reported", "accepted", "dispatched", "in_progress", "resolved", "closed", "returned", "rejected"]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: STATES
    note: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=2000, description="Required for returned / rejected / reopening")
    assignee_worker_id: int | None = Field(None, ge=1)
    department: str | None = Field(None, max_length=100)
    satisfaction: int | None = Field(None, ge=1, le=5, description="Resident's rating when closing")


class WorkerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=40)
    role: Literal["chief", "full_time", "auxiliary", "part_time"]
    jurisdiction_code: str = Field(..., pattern=r"^\d{12}$")
    grid_codes: list[str] = Field(default_factory=list)
    on_duty: bool = False
    username: str | None = Field(None, description="Link to a login (users.username)")


class WorkerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_duty: bool | None = None
    phone: str | None = Field(None, max_length=40)
    grid_codes: list[str] | None = None


class Fix(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ts: datetime
    lon: float = Field(..., ge=-180, le=180)
    lat: float = Field(..., ge=-90, le=90)
    accuracy_m: float | None = Field(None, ge=0, le=100000)


class FixesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
