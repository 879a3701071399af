"""Per-request context (request id) shared by logging, errors and the audit log."""

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
