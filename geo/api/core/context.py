"""Per-request context for the API: the request id lives in :mod:`geo.context` (below the API layer)."""

from geo.context import request_id

__all__ = ["request_id"]
