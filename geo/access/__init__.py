"""Who may see and change what: the visibility/permission policy and the audit writer.

Sits below :mod:`geo.db` and :mod:`geo.api` (imports neither), so both use the same rules:

* :mod:`geo.access.policy` — roles, actions, jurisdiction subtrees, per-kind read/write rules, field masking.
* :mod:`geo.access.audit` — the one writer of ``audit_log`` rows (every write and every refusal).
"""
