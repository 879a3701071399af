"""Error bodies: every 4xx says what was wrong and where; no 500 for malformed input.

Body shape (all errors)::

    {"error": "validation_error", "message": "...", "request_id": "...",
     "details": [{"field": "lat", "row": 12, "message": "..."}]}
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from geo.api.core.responses import JSON
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo.api.core.context import request_id

log = logging.getLogger("geo.api")


class APIError(Exception):
    """An error with an HTTP status, a machine code, a message and optional details."""

    def __init__(self, status: int, code: str, message: str, details: list[dict] | None = None,
                 extra: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.extra = extra or {}
        self.headers = headers


def body(code: str, message: str, details: list[dict] | None = None, **extra) -> dict:
    out = {"error": code, "message": message, "request_id": request_id.get()}
    if details:
        out["details"] = details
    out.update(extra)
    return out


def api_error_response(exc: APIError) -> JSON:
    """The response for an :class:`APIError` (the app's handler, and paths that answer without routing)."""
    return JSON(body(exc.code, exc.message, exc.details, **exc.extra), status_code=exc.status, headers=exc.headers)


#: Chinese names of request fields, shown in validation messages and as ``details[].label``
FIELD_LABELS = {
    "order_no": "工单号", "called_at": "来电时间", "appeal_type": "诉求类型", "category": "大类", "subtype": "小类",
    "content": "诉求内容", "address": "地址", "lon": "经度", "lat": "纬度", "crs": "坐标系",
    "caller_name": "来电人姓名", "caller_phone": "来电人电话", "reporter_name": "上报人姓名",
    "reporter_phone": "上报人电话", "description": "描述", "source": "来源", "priority": "优先级",
    "satisfaction": "满意度", "reached": "是否联系到来电人", "note": "备注", "reason": "原因", "kind": "督办类型",
    "q": "地址", "limit": "条数", "active": "应急状态", "name": "名称", "day": "日期", "month": "月份",
    "from": "开始时间", "to": "结束时间", "updated_since": "更新时间起", "since": "起始时间",
    "workday": "是否工作日", "assignee_worker_id": "处置人", "department": "责任部门", "to_state": "目标状态",
    "url": "回调地址", "secret": "签名密钥", "key_id": "API 密钥", "state": "状态",
}


def _loc(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def _printable(s: str) -> str:
    """*s* as valid UTF-8: lone surrogates (which cannot be sent back) become ``\\udXXX`` escapes."""
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def install(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return api_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        details = []
        for e in exc.errors():
            loc = e.get("loc", ())
            d = {"field": _loc(loc), "in": loc[0] if loc else None, "message": e.get("msg")}
            label = FIELD_LABELS.get(d["field"].split(".")[-1])
            if label:
                d["label"] = label
            v = e.get("input")
            if isinstance(v, (str, int, float, bool)):
                d["input"] = _printable(v[:200]) if isinstance(v, str) else (
                    str(v) if isinstance(v, int) and abs(v) > 2**53 else v)
            details.append(d)
        where = "、".join(f"{d['label']}（{d['field']}）" if d.get("label") else d["field"] for d in details[:5])
        return JSON(body("validation_error", f"请求有误，请检查：{where}", details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                413: "too_large"}.get(exc.status_code, "http_error")
        return JSON(body(code, str(exc.detail)), status_code=exc.status_code,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    async def _db_down(request: Request, exc: OperationalError):
        log.warning("database unavailable: %s", exc.orig)
        return JSON(body("database_unavailable", "the database is unavailable; retry shortly"),
                              status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(request: Request, exc: PoolTimeout):
        log.warning("database pool exhausted: %s", exc)
        return JSON(body("busy", "the service is busy; retry shortly"), status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError):
        import psycopg

        if isinstance(exc.orig, psycopg.errors.DataError):
            # the input could not be stored or compared as given (NUL characters, out-of-range numbers, dates)
            msg = str(exc.orig).splitlines()[0]
            return JSON(body("invalid_value", f"a value in the request cannot be used: {msg}",
                             [{"field": None, "message": msg}]), status_code=422)
        if exc.connection_invalidated:
            return JSON(body("database_unavailable", "the database connection was lost; retry"),
                                  status_code=503, headers={"Retry-After": "2"})
        log.exception("database error")
        return JSON(body("internal_error", "internal database error"), status_code=500)
