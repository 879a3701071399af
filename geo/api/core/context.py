"""Per-request context (request id) shared by logging, errors and the audit log.

The variable itself lives beside the audit writer (:mod:`geo.access.audit`), which sits below the API.
"""

from geo.access.audit import request_id  # noqa: F401  (re-exported)
