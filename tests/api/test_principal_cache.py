"""The principal cache's raw-header maps (the lookup fast path) follow the same rules as the parsed maps."""

from __future__ import annotations

import time

from geo.access import policy
from geo.api.core.security import Principal, hash_api_key
from geo.api.services.principals import PrincipalCache


def principal(**kw) -> Principal:
    base = dict(kind="user", id=1, name="a", role="dispatcher", jurisdiction_id=1, jurisdiction_path="/1/",
                worker_id=None)
    return Principal(**(base | kw))


def live_cache() -> PrincipalCache:
    c = PrincipalCache()
    c.live = True
    return c


def test_raw_headers_resolve_like_the_parsed_ones():
    c = live_cache()
    p, q = principal(), principal(id=2, kind="api_key")
    c.put_token(c.generation, "tok", p, time.time() + 60)
    c.put_key(c.generation, hash_api_key("key"), q)
    assert c.from_headers(None, b"Bearer tok") is p
    assert c.from_headers(None, b"bearer   tok ") is p  # the scheme in any case, spaces as the route reads them
    assert c.from_headers(b"key", b"Bearer tok") is q  # an API key wins, as in deps.resolve_principal
    assert c.from_headers(None, b"Basic tok") is None and c.from_headers(None, b"Bearer other") is None
    assert c.from_headers(None, None) is None
    assert b"Bearer tok" in c.raw_tokens and b"key" in c.raw_keys  # remembered by raw value


def test_an_expired_token_is_refused_from_the_raw_map_too():
    c = live_cache()
    c.put_token(c.generation, "tok", principal(), time.time() + 0.05)
    assert c.from_headers(None, b"Bearer tok") is not None
    time.sleep(0.1)
    assert c.from_headers(None, b"Bearer tok") is None


def test_invalidation_drops_the_raw_maps_and_a_stale_read_cannot_come_back():
    c = live_cache()
    c.put_token(c.generation, "tok", principal(), time.time() + 60)
    assert c.from_headers(None, b"Bearer tok") is not None
    c.invalidate()  # a revocation notice
    assert c.from_headers(None, b"Bearer tok") is None and not c.raw_tokens
    # a reader that took the raw map before the notice and read the principal after it fills the old map only
    c.put_token(c.generation, "tok", principal(), time.time() + 60)
    old = c.raw_tokens
    c.invalidate()
    old[b"Bearer tok"] = (principal(), time.time() + 60)
    assert c.from_headers(None, b"Bearer tok") is None


def test_callers_with_the_same_read_view_see_the_same_staff():
    staff = [{"id": 1, "name": "张三", "role": "chief", "on_duty": True, "phone": "13912345678"}]
    for role in policy.ROLES:
        for path in ("/1/", "/1/2/", "/9/"):
            a = principal(role=role, jurisdiction_path=path)
            b = principal(role=role, jurisdiction_path=path, id=7, kind="api_key", name="other", worker_id=3)
            assert policy.read_view(a) == policy.read_view(b)
            assert policy.staff_view(a, "/1/2/", staff) == policy.staff_view(b, "/1/2/", staff)
