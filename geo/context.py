"""Per-request context (request id) shared by logging (:mod:`geo.logs`), the API's errors and the audit log.

It lives below the API layer so that logging, the worker and the CLI can read it without importing the API.
"""

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
