"""One visibility and permission policy for every object kind, by role and jurisdiction subtree.

Every principal (a login or an API key — the two have exactly the same rights for the same role) has a
role and a jurisdiction. Its **subtree** is that jurisdiction and everything below it: jurisdictions carry
a materialised ``path`` of ids (``/district/street/community/``), so "inside the subtree" is a path prefix,
the same thing as a prefix of the 12-digit division code cut at the caller's level.

Roles
=====

========== ==========================================================
admin      everything inside its subtree, including users, keys, audit
planner    partition, compare and publish grid plans; read the rest
dispatcher create and move events, manage workers and their duty
worker     report events, move events assigned to itself, its own duty and GPS
leader     read-only: maps, events (personal data masked), KPIs
========== ==========================================================

Reads (:data:`RULES`): an object outside the caller's subtree does not exist for it (the API answers 404,
never 403, so existence does not leak), except

* the **public face of a grid** (code, name, kind, level, population, community/street/district, plan,
  geometry) which every reader sees; the grid's **staff** (names, phones) only inside the subtree;
* a **plan** (and its public grids) of a jurisdiction *above* the caller (a community reads its street's
  plan), since it is the grid map the caller works in.

Writes: the caller's role must allow the action, the object must lie in the subtree, and so must **every
object the request refers to** (each grid code, each linked username, each worker id). Roles in a rule's
``self_only`` (a worker) may act only on their own worker record; a principal that is not linked to a
worker (an API key) therefore cannot act for any worker.

Fields: reporters' names/phones are shown to :data:`MASKS` ``["reporter"]`` roles, staff phones to
``["staff_phone"]`` roles; everyone else gets the masked form (:func:`mask_phone`, :func:`mask_name`).

Adding a route: use an existing kind (or add a :class:`Rule` to :data:`RULES`), then call the API's
``deps.authorize`` with that kind; the matrix test (tests/api/test_matrix.py) needs one row for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

ROLES: tuple[str, ...] = ("admin", "planner", "dispatcher", "worker", "leader")

#: action → roles allowed to do it (anywhere in their subtree)
ACTIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "plan.write": frozenset({"admin", "planner"}),
    "event.create": frozenset({"admin", "dispatcher", "worker"}),
    "event.transition": frozenset({"admin", "dispatcher", "worker"}),
    "worker.write": frozenset({"admin", "dispatcher"}),
    "worker.duty": frozenset({"admin", "dispatcher", "worker"}),
    "position.write": frozenset({"admin", "dispatcher", "worker"}),
    "user.write": frozenset({"admin"}),
    "audit.read": frozenset({"admin"}),
    # dispatch (12345 hotline, closed loop, big screen)
    "work_order.write": frozenset({"admin", "dispatcher"}),  # intake and 回访; the hotline's key is a dispatcher key
    "event.supervise": frozenset({"admin", "dispatcher", "leader"}),  # 督办
    "event.reopen": frozenset({"admin", "dispatcher"}),  # 返工
    "event.suggest": frozenset({"admin", "dispatcher"}),  # whom to dispatch
    "calendar.write": frozenset({"admin"}),
    "emergency.switch": frozenset({"admin", "leader"}),  # 平急转换
    "kiosk.manage": frozenset({"admin", "leader"}),  # wall-display keys (leader role)
    "hotline.manage": frozenset({"admin"}),  # the hotline keys' webhooks and their delivery log
}

#: field class → roles that see it unmasked
MASKS: dict[str, frozenset[str]] = {
    "reporter": frozenset({"admin", "dispatcher"}),
    "staff_phone": frozenset({"admin", "dispatcher", "worker"}),
}

SUBTREE, OVERLAP, PUBLIC, SELF = "subtree", "overlap", "public", "self"


@dataclass(frozen=True)
class Rule:
    """Who may read and write one kind of object.

    Parameters
    ----------
    read : str
        ``subtree`` (inside the caller's subtree), ``overlap`` (inside, or an ancestor of the caller),
        ``public`` (every reader) or ``self`` (the caller's own record only).
    write : str or None
        The action (key of :data:`ACTIONS`) a change needs; None: never changed through the API.
    read_action : str
        The action a read needs (``read`` for all roles, ``audit.read`` for the audit log).
    self_only : frozenset
        Roles that may write only objects of their own worker record.
    masked : dict
        field → class in :data:`MASKS` (masked for roles outside the class).
    """

    read: str
    write: str | None
    read_action: str = "read"
    self_only: frozenset[str] = frozenset()
    masked: dict[str, str] = field(default_factory=dict)


RULES: dict[str, Rule] = {
    "jurisdiction": Rule(SUBTREE, "plan.write"),
    "grid": Rule(PUBLIC, "plan.write"),
    "grid_staff": Rule(SUBTREE, "worker.write", masked={"phone": "staff_phone"}),
    "worker": Rule(SUBTREE, "worker.write", masked={"phone": "staff_phone"}),
    "worker_duty": Rule(SUBTREE, "worker.duty", self_only=frozenset({"worker"})),
    "position": Rule(SUBTREE, "position.write", self_only=frozenset({"worker"})),
    "track": Rule(SUBTREE, None),
    "event": Rule(SUBTREE, "event.create",
                  masked={"reporter_name": "reporter", "reporter_phone": "reporter"}),
    "event_transition": Rule(SUBTREE, "event.transition", self_only=frozenset({"worker"})),
    "duplicate": Rule(SUBTREE, None),
    "plan": Rule(OVERLAP, "plan.write"),
    "job": Rule(SUBTREE, "plan.write"),
    "user": Rule(SELF, "user.write"),
    "api_key": Rule(SELF, "user.write"),
    "audit": Rule(SUBTREE, None, read_action="audit.read"),
    # dispatch
    "work_order": Rule(SUBTREE, "work_order.write",
                       masked={"caller_name": "reporter", "caller_phone": "reporter"}),
    "supervision": Rule(SUBTREE, "event.supervise"),
    "event_reopen": Rule(SUBTREE, "event.reopen"),
    "suggestion": Rule(SUBTREE, None, read_action="event.suggest", masked={"phone": "staff_phone"}),
    "calendar_day": Rule(PUBLIC, "calendar.write"),  # the city's working days: the same for every reader
    "emergency_mode": Rule(OVERLAP, "emergency.switch"),  # an ancestor's emergency applies to the caller too
    "kiosk_token": Rule(SUBTREE, "kiosk.manage", read_action="kiosk.manage"),
    "feed_item": Rule(SUBTREE, None),
    "grid_panel": Rule(SUBTREE, None),  # its chief's name is grid staff: in clear inside the subtree
    "patrol_coverage": Rule(SUBTREE, None),
    "basemap_tile": Rule(SUBTREE, None),  # layers cut to the caller's subtree
    "ranking": Rule(SUBTREE, None),
    "geocode": Rule(SUBTREE, None),  # standard addresses of the caller's subtree
    # status back to the 12345 hotline: a webhook belongs to its API key's jurisdiction, a delivery to its order's
    "hotline_webhook": Rule(SUBTREE, "hotline.manage", read_action="hotline.manage"),
    "hotline_delivery": Rule(SUBTREE, None, read_action="hotline.manage"),
}

#: the fields of a grid every reader sees (its public face)
GRID_PUBLIC_FIELDS = ("code", "name", "kind", "level", "population", "community", "street", "district", "plan",
                      "geometry")


class Caller(Protocol):
    """What the policy needs to know about a principal (``geo.api.core.security.Principal`` fits)."""

    kind: str
    role: str
    jurisdiction_path: str
    worker_id: int | None


def may(p: Caller, action: str) -> bool:
    """Does the caller's role allow *action* (anywhere in its subtree)?"""
    return p.role in ACTIONS[action]


def covers(p: Caller, path: str | None) -> bool:
    """Is a jurisdiction (by its path) inside the caller's subtree?"""
    return bool(path) and bool(p.jurisdiction_path) and path.startswith(p.jurisdiction_path)


def overlaps(p: Caller, path: str | None) -> bool:
    """Inside the caller's subtree, or one of the caller's ancestors."""
    return covers(p, path) or (bool(path) and p.jurisdiction_path.startswith(path))


def can_read(p: Caller, kind: str, path: str | None, *, owner_id: int | None = None) -> bool:
    """May the caller see an object of *kind* belonging to the jurisdiction at *path*?

    Parameters
    ----------
    path : str or None
        The object's jurisdiction path (None: unknown jurisdiction — only ``public`` kinds are readable).
    owner_id : int, optional
        For ``self`` kinds: the id of the principal the object belongs to.
    """
    rule = RULES[kind]
    if not may(p, rule.read_action):
        return False
    if rule.read == PUBLIC:
        return True
    if rule.read == SELF:
        return owner_id is not None and owner_id == getattr(p, "id", None)
    if rule.read == OVERLAP:
        return overlaps(p, path)
    return covers(p, path)


def write_refusal(p: Caller, kind: str, path: str | None, *, worker_id: int | None = None) -> str | None:
    """Why the caller may not change an object of *kind* at *path* (None when it may).

    Parameters
    ----------
    worker_id : int, optional
        The worker the object belongs to (a worker's duty, its GPS fixes, the assignee of an event): roles in
        the rule's ``self_only`` may act only when it is their own worker id.
    """
    rule = RULES[kind]
    if rule.write is None or not may(p, rule.write):
        return f"role '{p.role}' may not change {kind.replace('_', ' ')}s"
    if not covers(p, path):
        return "outside the caller's jurisdiction"
    if p.role in rule.self_only and not acts_for(p, worker_id):
        return (f"a {p.role} acts only for its own worker record"
                + (f" (worker {p.worker_id})" if p.worker_id else "; this credential is not linked to a worker"))
    return None


def acts_for(p: Caller, worker_id: int | None) -> bool:
    """Is *worker_id* the caller's own worker record? (API keys are never linked to a worker.)"""
    return p.worker_id is not None and worker_id is not None and p.worker_id == worker_id


def read_view(p: Caller) -> tuple[str, str]:
    """All that reads and masks of non-``self`` kinds look at: the caller's role and jurisdiction path.

    Two callers with the same view see the same objects of those kinds with the same fields masked
    (:func:`can_read`, :func:`sees`, :func:`mask_fields`, :func:`staff_view`), so an answer built for one
    may be served to the other (the lookup caches its answers per grid and view).
    """
    return p.role, p.jurisdiction_path


def lookup_view(p: Caller) -> tuple[str, str] | None:
    """:func:`read_view` of a caller who may read, else None (kept with each principal the lookup caches)."""
    return read_view(p) if may(p, "read") else None


def sees(p: Caller, mask_class: str) -> bool:
    """Does the caller see fields of *mask_class* (see :data:`MASKS`) unmasked?"""
    return p.role in MASKS[mask_class]


def mask_name(name: str | None) -> str | None:
    """``张三丰`` → ``张**``: the first character and one star per other character."""
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_phone(phone: str | None) -> str | None:
    """Mask a phone number, whatever its length.

    11+ digits keep the first 3 and last 4 (``139****5678``); shorter numbers keep at most a third of their
    characters, at the end (``12345`` → ``****5``, ``110`` → ``***``). The length is preserved.
    """
    if not phone:
        return phone
    s = phone.strip()
    n = len(s)
    if n >= 11:
        return s[:3] + "*" * (n - 7) + s[-4:]
    tail = n // 3 if n >= 5 else 0
    return "*" * (n - tail) + (s[-tail:] if tail else "")


def mask_fields(p: Caller, kind: str, row: dict) -> dict:
    """*row* with the fields of *kind* the caller may not see in clear masked (a new dict)."""
    out = dict(row)
    for f, cls in RULES[kind].masked.items():
        if f in out and not sees(p, cls):
            out[f] = mask_name(out[f]) if f.endswith("name") else mask_phone(out[f])
    return out


def staff_view(p: Caller, grid_path: str | None, staff: list[dict]) -> list[dict] | None:
    """A grid's staff as the caller may see them: None outside its subtree, phones masked per role."""
    if not can_read(p, "grid_staff", grid_path):
        return None
    return [mask_fields(p, "grid_staff", s) for s in staff]


def public_grid(d: dict) -> dict:
    """Only the public face of a grid (:data:`GRID_PUBLIC_FIELDS`)."""
    return {k: v for k, v in d.items() if k in GRID_PUBLIC_FIELDS}
