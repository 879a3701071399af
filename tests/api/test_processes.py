"""Two real API processes: idempotent submissions across them; a killed process loses no acknowledged event."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import text

from tests.api.conftest import COMM_A, PASSWORD, centre
from tests.conftest import free_port


def start_api(env_extra: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = os.environ | {k: v for k, v in env_extra.items() if not k.startswith("__")} | {
        "GEO_API_PORT": str(port), "GEO_DEMO": "1"}
    # the JSON request log goes to a file: an unread pipe would fill up and stall the server
    log = tempfile.NamedTemporaryFile(prefix=f"geo-api-{port}-", suffix=".log", delete=False)
    from geo.supervise import spawn

    # dies with the test session even if pytest is killed before its teardown (PR_SET_PDEATHSIG)
    p = spawn([sys.executable, "-m", "geo.cli", "serve", "--demo"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return p, base
        except httpx.HTTPError:
            if p.poll() is not None:
                raise RuntimeError(open(log.name).read()[-3000:])
        time.sleep(0.2)
    p.kill()
    raise RuntimeError("API did not start")


@pytest.fixture
def two_apis(world, pg_env):
    procs = [start_api(pg_env), start_api(pg_env)]
    yield [b for _, b in procs], procs
    for p, _ in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(10)


def _token(base):
    r = httpx.post(f"{base}/v1/auth/token", data={"username": "dispatcher", "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.mark.slow
def test_1000_submissions_with_retries_across_two_processes(two_apis, engine):
    bases, _ = two_apis
    heads = {b: _token(b) for b in bases}
    rng = random.Random(5)
    lon, lat = centre(COMM_A, 6)
    plan = []
    for i in range(1000):
        body = {"category": "incident", "subtype": "noise", "source": "hotline_12345",
                "lon": lon + rng.uniform(-0.01, 0.01), "lat": lat + rng.uniform(-0.02, 0.02),
                "description": f"来电 {i}"}
        tries = 1 + (rng.random() < 0.4) * rng.randint(1, 3)  # 40% are retried 1–3 more times
        for _ in range(tries):
            plan.append((f"call-{i}", body, rng.choice(bases)))
    rng.shuffle(plan)  # retries race with the first attempt, on either process

    # one client per sender thread: a new httpx.Client per request costs ~25 ms of CPU (it builds an SSL
    # context), which for ~1,700 requests was most of this test's time
    local, clients = threading.local(), []

    def send(item):
        key, body, base = item
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=30)
            clients.append(local.client)
        r = local.client.post(f"{base}/v1/events", json=body, headers=heads[base] | {"Idempotency-Key": key})
        return key, r.status_code, r.json().get("id")

    try:
        with ThreadPoolExecutor(16) as ex:
            results = list(ex.map(send, plan))
    finally:
        for c in clients:
            c.close()
    assert {s for _, s, _ in results} <= {200, 201}
    ids_per_key: dict[str, set] = {}
    for key, _, eid in results:
        ids_per_key.setdefault(key, set()).add(eid)
    assert len(ids_per_key) == 1000 and all(len(v) == 1 for v in ids_per_key.values())
    assert sum(s == 201 for _, s, _ in results) == 1000
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM events")).scalar() == 1000
        assert c.execute(text("SELECT count(DISTINCT idempotency_key) FROM events")).scalar() == 1000


@pytest.mark.slow
def test_killed_process_loses_no_acknowledged_event(two_apis, engine):
    bases, procs = two_apis
    victim, victim_base = procs[0]
    h = _token(victim_base)
    lon, lat = centre(COMM_A, 3)
    acked: list[int] = []
    errors: list[str] = []
    answers: Counter = Counter()  # every HTTP answer by status: none may be anything but 201
    stop = threading.Event()

    def submit(k):
        i = 0
        with httpx.Client(timeout=5) as c:
            while not stop.is_set():
                i += 1
                try:
                    r = c.post(f"{victim_base}/v1/events", headers=h | {"Idempotency-Key": f"w{k}-{i}"},
                               json={"category": "incident", "subtype": "garbage", "source": "worker_app",
                                     "lon": lon, "lat": lat, "description": f"{k}-{i}"})
                    answers[r.status_code] += 1
                    if r.status_code == 201:
                        acked.append(r.json()["id"])
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)
                    time.sleep(0.05)

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    time.sleep(3)
    victim.send_signal(signal.SIGKILL)  # no shutdown, no flush: like a power cut of the API host
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 50 and errors  # it was busy and it really died mid-stream
    assert set(answers) == {201}, answers  # up to the kill, every answer was an acknowledgement
    with engine.connect() as c:
        stored = set(c.execute(text("SELECT id FROM events WHERE id = ANY(:ids)"), {"ids": acked}).scalars())
    assert stored == set(acked)
