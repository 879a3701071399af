"""Login flood and revocation delay: the API's memory under 100 concurrent failed logins, and how fast a
revocation reaches two API worker processes.

Builds its own world in a temporary embedded PostGIS (one jurisdiction, 50 users). Then, in one run:

1. **Flood**: 100 concurrent failed logins (50 existing users with a wrong password, 50 unknown names; one
   attempt each, so the per-user limiter does not shield the hashing) against ``geo serve --demo`` on one
   uvicorn worker, sampling the server's RSS every 20 ms. Three configurations, each on a fresh server:

   * *today*: argon2id at 19 MiB (stored hashes) and at most ``GEO_HASH_CONCURRENCY=2`` checks at once;
   * *unbounded*: the same hashes, ``GEO_HASH_CONCURRENCY=100`` (every login hashes at once);
   * *before*: the old parameters (64 MiB, t=3, p=4) in the stored hashes and unbounded checks — the
     configuration that took the API from 286 MiB to 1.4 GiB with 40 logins.

   The median answer time of existing vs unknown users is printed (constant-time failure).
2. **Revocation**: ``geo serve --workers 2``; a token and an API key are used until both processes cache
   them, then the user is disabled / the key revoked in the database, and fresh connections poll until 40
   consecutive requests are refused. Printed: time from the commit to the first refusal and to the last
   acceptance (the bound on "still accepted somewhere").

Usage::

    python benchmarks/login_flood.py [--logins 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.lookup import child_pids, private_cluster  # noqa: E402
from benchmarks.lookup import start_api as lookup_start_api  # noqa: E402

PASSWORD = "flood-password-1"
CODE = "429901000000"


def setup_world(tmp: Path, users: int):
    cluster = private_cluster(tmp, GEO_DEMO="1")
    from sqlalchemy import text

    from geo.db import migrate
    from geo.db.loads import rebuild_paths
    from geo.db.session import get_engine
    from geo.db.users import add_api_key, add_user

    migrate.upgrade()
    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO jurisdictions (code, name, level, urban, geom, created_by)
            VALUES (:c, '示范区', 'district', true,
                    ST_Multi(ST_GeomFromText('POLYGON((114 30,114.1 30,114.1 30.1,114 30.1,114 30))', 4326)), 'bench')
        """), {"c": CODE})
        rebuild_paths(conn)
    for i in range(users):
        add_user(engine, f"user{i:03d}", PASSWORD, "leader", CODE, actor="bench")
    key = add_api_key(engine, "bench-key", "dispatcher", CODE, actor="bench")
    return cluster, engine, key


def set_hash_parameters(engine, old: bool) -> None:
    """Store every user's hash with today's or the old (64 MiB, t=3, p=4) argon2 parameters."""
    from argon2 import PasswordHasher
    from sqlalchemy import text

    ph = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4) if old else \
        PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    h = ph.hash(PASSWORD)  # one hash for all: the cost is in verifying, not in the value
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET password_hash = :h"), {"h": h})


def start_api(workers: int, **env_extra: str) -> tuple[subprocess.Popen, str]:
    """The API (:func:`benchmarks.lookup.start_api`) without access-log lines; returns its base URL."""
    p, port = lookup_start_api(workers, GEO_ACCESS_LOG="off", **env_extra)
    return p, f"http://127.0.0.1:{port}"


def rss_mib(pid: int) -> float:
    """Resident memory of *pid* and its children (MiB)."""
    total = 0
    for q in child_pids(pid):
        try:
            for line in Path(f"/proc/{q}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def flood(base: str, pid: int, logins: int) -> dict:
    import httpx

    names = [f"user{i:03d}" if i % 2 == 0 else f"ghost{i:03d}" for i in range(logins)]
    peak, stop = [rss_mib(pid)], threading.Event()
    before = peak[0]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.02)

    async def one(client, name):
        t = time.perf_counter()
        r = await client.post(f"{base}/v1/auth/token", data={"username": name, "password": "wrong-password"})
        return name, r.status_code, time.perf_counter() - t

    async def run():
        limits = httpx.Limits(max_connections=logins, max_keepalive_connections=logins)
        async with httpx.AsyncClient(timeout=300, limits=limits) as client:
            return await asyncio.gather(*(one(client, n) for n in names))

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    res = asyncio.run(run())
    wall = time.perf_counter() - t0
    time.sleep(0.3)
    stop.set()
    th.join()
    existing = [s for n, _, s in res if n.startswith("user")]
    unknown = [s for n, _, s in res if n.startswith("ghost")]
    return {"before": before, "peak": peak[0], "after": rss_mib(pid), "wall": wall,
            "n401": sum(c == 401 for _, c, _ in res), "other": sorted({c for _, c, _ in res if c != 401}),
            "existing_ms": statistics.median(existing) * 1000, "unknown_ms": statistics.median(unknown) * 1000}


def _stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


def revocation(engine, key: str, rounds: int) -> list[dict]:
    """Disable a user / revoke a key while both processes cache them; time until refused everywhere."""
    import httpx
    from sqlalchemy import text

    from geo.db.users import revoke_api_key, set_user_active

    p, base = start_api(2)
    out = []
    try:
        for r in range(rounds):
            for kind in ("user", "key"):
                name = f"user{r:03d}"
                if kind == "user":
                    tok = httpx.post(f"{base}/v1/auth/token", data={"username": name, "password": PASSWORD}).json()
                    headers = {"Authorization": f"Bearer {tok['access_token']}"}
                else:
                    from geo.db.users import add_api_key

                    k = add_api_key(engine, f"rev-{r}", "dispatcher", CODE, actor="bench")
                    headers = {"X-API-Key": k}
                for _ in range(40):  # both processes resolve and cache it
                    with httpx.Client() as c:
                        assert c.get(f"{base}/v1/auth/me", headers=headers).status_code == 200
                t0 = time.perf_counter()
                if kind == "user":
                    set_user_active(engine, name, False, actor="bench")
                else:
                    revoke_api_key(engine, f"rev-{r}", actor="bench")
                t_commit = time.perf_counter()
                first_refusal = last_ok = None
                streak = 0
                while streak < 40 and time.perf_counter() - t_commit < 60:
                    with httpx.Client() as c:
                        code = c.get(f"{base}/v1/auth/me", headers=headers).status_code
                    now = time.perf_counter()
                    if code == 401:
                        first_refusal = first_refusal or now
                        streak += 1
                    else:
                        last_ok, streak = now, 0
                out.append({"kind": kind, "commit_ms": (t_commit - t0) * 1000,
                            "first_refusal_ms": (first_refusal - t_commit) * 1000 if first_refusal else None,
                            "last_accept_ms": (last_ok - t_commit) * 1000 if last_ok else 0.0,
                            "refused_everywhere": streak >= 40})
    finally:
        _stop(p)
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET active = true"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logins", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="revocation rounds (each: a user and a key)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="geo-bench-login-"))
    tmp.chmod(0o755)
    cluster, engine, key = setup_world(tmp, max(a.logins // 2, a.rounds) + 1)
    rows = []
    try:
        for name, old, conc in (("today: 19 MiB, 2 at once", False, "2"),
                                ("unbounded: 19 MiB, all at once", False, "1000"),
                                ("before: 64 MiB, all at once", True, "1000")):
            set_hash_parameters(engine, old)
            p, base = start_api(1, GEO_HASH_CONCURRENCY=conc)
            try:
                time.sleep(1.0)
                rows.append((name, flood(base, p.pid, a.logins)))
            finally:
                _stop(p)
        set_hash_parameters(engine, False)
        rev = revocation(engine, key, a.rounds)
    finally:
        from geo.db.session import dispose_engines

        dispose_engines()
        cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{a.logins} concurrent failed logins (half existing users, half unknown), one uvicorn worker, "
          f"{os.cpu_count()} cores")
    print(f"{'':34} {'RSS before':>10} {'peak':>8} {'growth':>8} {'after':>8} {'wall s':>7} {'401s':>5} "
          f"{'existing ms':>11} {'unknown ms':>10} {'peak vs today':>13}")
    base_peak = rows[0][1]["peak"]
    for name, r in rows:
        print(f"{name:34} {r['before']:10.0f} {r['peak']:8.0f} {r['peak'] - r['before']:8.0f} {r['after']:8.0f} "
              f"{r['wall']:7.2f} {r['n401']:5d} {r['existing_ms']:11.0f} {r['unknown_ms']:10.0f} "
              f"{r['peak'] / base_peak:13.2f}")
        if r["other"]:
            print(f"   (other statuses: {r['other']})")
    print("(RSS in MiB; existing/unknown: median answer time of each half — equal costs mean the answer time "
          "does not tell which usernames exist)")
    print("\nrevocation reaching 2 API worker processes (fresh connection per request, 40 consecutive refusals)")
    print(f"{'kind':6} {'commit ms':>10} {'first refusal ms':>17} {'last acceptance ms':>19} {'refused everywhere':>19}")
    for r in rev:
        fr = f"{r['first_refusal_ms']:.1f}" if r["first_refusal_ms"] is not None else "never"
        print(f"{r['kind']:6} {r['commit_ms']:10.1f} {fr:>17} {r['last_accept_ms']:19.1f} "
              f"{str(r['refused_everywhere']):>19}")
    worst = max(r["last_accept_ms"] for r in rev)
    print(f"worst last acceptance after the commit: {worst:.1f} ms (target ≤ 1000 ms)")


if __name__ == "__main__":
    main()
