"""The audit writer, re-exported for API modules: the one copy is :mod:`geo.access.audit`."""

from geo.access.audit import record, record_denied  # noqa: F401  (re-exported)
