"""SYNTHETIC workers, GPS fixes and events for the demo and for benchmarks (flagged ``synthetic = true``).

Nothing here is real: names are drawn from generic pools, events are placed
where the (synthetic) population lives and moved through the closed loop with
plausible delays. Use it on the demo district or on benchmark databases only.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import h3
import numpy as np
from sqlalchemy import Engine, text

from geo.access import audit

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬斌宇浩凯鹏辉晨欣怡婷雪琳晶")


def _name(rng: np.random.Generator) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN, size=rng.integers(1, 3)))


def _phone(rng: np.random.Generator) -> str:
    return "1" + str(rng.choice([3, 5, 7, 8, 9])) + "".join(map(str, rng.integers(0, 10, 9)))


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


def seed_workers(engine: Engine, plan_ids: list[int], *, seed: int = 0, per_grid: int = 3, part_time_share: float = 0.5,
                 actor: str = "seed:synthetic", with_positions: bool = True) -> int:
    """One chief and *per_grid* workers per grid (plus part-time 下沉干部 on some grids), with latest fixes.

    Returns the number of workers created. Existing synthetic workers are removed first.
    """
    rng = np.random.default_rng(seed)
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM workers WHERE synthetic"))
        grids = conn.execute(text("""
            SELECT g.code, coalesce(c.id, gp.jurisdiction_id) AS jid,
                   ST_X(ST_PointOnSurface(g.geom)) AS x, ST_Y(ST_PointOnSurface(g.geom)) AS y,
                   ST_XMin(g.geom) AS x0, ST_YMin(g.geom) AS y0, ST_XMax(g.geom) AS x1, ST_YMax(g.geom) AS y1
            FROM grids g JOIN grid_plans gp ON gp.id = g.plan_id
            LEFT JOIN jurisdictions c ON c.code = g.community_code
            WHERE g.plan_id = ANY(:p) ORDER BY g.code
        """), {"p": list(plan_ids)}).all()
        rows, links, fixes = [], [], []
        for g in grids:
            roles = ["chief"] + ["full_time"] * max(per_grid - 1, 0) + ["auxiliary"]
            if rng.random() < part_time_share:
                roles.append("part_time")
            for role in roles:
                rows.append((_name(rng), _phone(rng), role, g.jid, bool(rng.random() < 0.75), g.code, g))
        ids = []
        for name, phone, role, jid, on_duty, code, g in rows:
            wid = conn.execute(text("""
                INSERT INTO workers (name, phone, role, jurisdiction_id, on_duty, duty_changed_at, synthetic, created_by)
                VALUES (:n, :p, :r, :j, :d, now(), true, :a) RETURNING id
            """), {"n": name, "p": phone, "r": role, "j": jid, "d": on_duty, "a": actor}).scalar_one()
            ids.append(wid)
            links.append({"w": wid, "c": code})
            if with_positions and on_duty:
                inside = rng.random() < 0.93  # a few are outside their own grid
                if inside:
                    x, y = g.x + rng.normal(0, (g.x1 - g.x0) / 10), g.y + rng.normal(0, (g.y1 - g.y0) / 10)
                else:
                    x, y = g.x1 + (g.x1 - g.x0) * 0.6, g.y
                fixes.append({"w": wid, "ts": now - timedelta(seconds=int(rng.integers(5, 900))), "x": float(x),
                              "y": float(y)})
        if links:
            conn.execute(text("INSERT INTO worker_grids (worker_id, grid_code) VALUES (:w, :c)"), links)
        if with_positions:
            fixes += _patrol_tracks(conn, rng, plan_ids, fixes, links, now)
        if fixes:
            conn.execute(text("""
                INSERT INTO worker_positions (worker_id, ts, geom) VALUES (:w, :ts, ST_SetSRID(ST_MakePoint(:x, :y), 4326))
                ON CONFLICT (worker_id, ts) DO NOTHING
            """), fixes)
            _classify_positions(conn, plan_ids)
        audit.record(conn, actor, "seed.workers", "workers",
                     detail={"plans": list(plan_ids), "workers": len(ids), "synthetic": True})
    return len(ids)


TRACK_STEP_S = 30  # seconds between synthetic patrol fixes
TRACK_FIXES = 80  # 40 minutes of patrol before the latest fix


def _patrol_tracks(conn, rng, plan_ids, latest: list[dict], links: list[dict], now: datetime) -> list[dict]:
    """SYNTHETIC patrol tracks for the replay and 巡查覆盖率: each on-duty worker whose latest fix is inside a
    grid walks along one of the grid's longest streets (with GPS noise) for 40 minutes before that fix.
    Grids without streets get no track. Returns fixes like *latest*."""
    import shapely

    by_worker = {f["w"]: f for f in latest}
    grid_of = {lk["w"]: lk["c"] for lk in links}
    codes = sorted({grid_of[w] for w in by_worker})
    if not codes:
        return []
    streets: dict[str, list] = {}
    for code, wkb in conn.execute(text("""
        SELECT g.code, ST_AsBinary(s.geom) FROM grids g
        CROSS JOIN LATERAL (
            SELECT ST_LineMerge(ST_Intersection(st.geom, g.geom)) AS geom FROM streets st
            WHERE st.geom && g.geom AND ST_Intersects(st.geom, g.geom)
            ORDER BY ST_Length(ST_Intersection(st.geom, g.geom)) DESC LIMIT 3) s
        WHERE g.plan_id = ANY(:p) AND g.code = ANY(:c)
    """), {"p": list(plan_ids), "c": codes}).all():
        line = shapely.from_wkb(bytes(wkb))
        parts = [g for g in getattr(line, "geoms", [line]) if g.geom_type == "LineString" and g.length > 0]
        if parts:
            streets.setdefault(code, []).append(max(parts, key=lambda g: g.length))
    out = []
    for w, last in by_worker.items():
        lines = streets.get(grid_of[w])
        if not lines:
            continue
        line = lines[int(rng.integers(len(lines)))]
        start = float(rng.uniform(0, 0.5))
        span = float(rng.uniform(0.3, 0.5))
        for i in range(TRACK_FIXES):
            pt = line.interpolate(start + span * i / (TRACK_FIXES - 1), normalized=True)
            out.append({"w": w, "ts": last["ts"] - timedelta(seconds=TRACK_STEP_S * (TRACK_FIXES - i)),
                        "x": float(pt.x + rng.normal(0, 0.00003)), "y": float(pt.y + rng.normal(0, 0.00003))})
    return out


def _classify_positions(conn, plan_ids: list[int]) -> None:
    conn.execute(text("""
        UPDATE worker_positions wp SET grid_code = (
            SELECT g.code FROM grids g WHERE g.plan_id = ANY(:p) AND ST_Covers(g.geom, wp.geom) ORDER BY g.code LIMIT 1)
        WHERE wp.grid_code IS NULL
    """), {"p": list(plan_ids)})
    conn.execute(text("""
        UPDATE worker_positions wp SET outside_own_grids = NOT EXISTS (
            SELECT 1 FROM worker_grids wg WHERE wg.worker_id = wp.worker_id AND wg.grid_code = wp.grid_code)
    """))


def _daytime(c: datetime, hour: int, now: datetime) -> datetime:
    """*c* moved to *hour* of its day, a day earlier where that would be after *now*; *c* itself when recent.

    Events older than 14 hours get the daily rhythm (reported between 07:00 and 21:59). Moving the hour can
    push a time from this morning to tonight, past *now*; those go back one day, so no event is created in
    the future whatever time of day the seed runs.
    """
    if c >= now - timedelta(hours=14):
        return c
    moved = c.replace(hour=hour)
    return moved - timedelta(days=1) if moved > now else moved


def seed_events(engine: Engine, plan_ids: list[int], catalogue, *, n: int = 5000, days: int = 30, seed: int = 0,
                actor: str = "seed:synthetic", now: datetime | None = None) -> int:
    """*n* events over the last *days* days, placed where people live, moved through the loop.

    Parameters
    ----------
    catalogue : geo.api.core.config.Catalogue-like
        Needs ``services()`` (sub-types with ``category``, ``code``, ``priority``, ``department``) and
        ``sla_hours``.

    Returns
    -------
    int : events inserted.
    """
    rng = np.random.default_rng(seed)
    now = now or datetime.now(timezone.utc)
    subs = catalogue.services()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE synthetic"))
        pts = conn.execute(text("""
            SELECT ST_X(ST_PointOnSurface(u.geom)), ST_Y(ST_PointOnSurface(u.geom)), u.people
            FROM population_units u
            WHERE u.people > 0 AND EXISTS (SELECT 1 FROM grids g WHERE g.plan_id = ANY(:p) AND ST_Covers(g.geom, u.geom))
        """), {"p": list(plan_ids)}).all()
        if not pts:
            raise ValueError(f"plans {plan_ids} cover no population units; load population first")
        xy = np.array([(a, b) for a, b, _ in pts])
        w = np.array([c for *_, c in pts], dtype=float)
        pick = rng.choice(len(xy), size=n, p=w / w.sum())
        jitter = rng.normal(0, 0.0004, size=(n, 2))  # ~40 m
        loc = xy[pick] + jitter
        # more events recently; a daily rhythm
        age_days = rng.power(0.6, size=n) * days
        created = [_daytime(now - timedelta(days=float(a)), int(rng.choice(range(7, 22))), now) for a in age_days]
        records = []
        for i in range(n):
            s = subs[int(rng.integers(len(subs)))]
            c0 = created[i]
            due = c0 + timedelta(hours=catalogue.sla_hours[s.priority])
            age = (now - c0).total_seconds() / 3600
            sla = catalogue.sla_hours[s.priority]
            # how far along the loop it is: older events got further
            stage = min(6, int(rng.binomial(6, min(0.98, 0.25 + age / (2 * sla + 1)))))
            if rng.random() < 0.03:
                stage = -1  # rejected
            t = c0
            ts = {}
            for st in ("accepted", "dispatched", "in_progress", "resolved", "closed")[:max(stage - 1, 0)]:
                t = t + timedelta(hours=float(rng.exponential(sla / 6)))
                if t > now:
                    break
                ts[st] = t
            state = "rejected" if stage == -1 else (list(ts)[-1] if ts else "reported")
            lon, lat = float(loc[i, 0]), float(loc[i, 1])
            cells = {f"h3_{r}": _signed(h3.str_to_int(h3.latlng_to_cell(lat, lon, r))) for r in (7, 8, 9, 10)}
            records.append({
                "category": s.category, "subtype": s.code, "priority": s.priority,
                "source": str(rng.choice(["worker_app", "hotline_12345", "patrol", "sensor", "resident"],
                                         p=[0.55, 0.2, 0.12, 0.05, 0.08])),
                "state": state, "description": f"{s.name}（合成数据）", "dept": s.department,
                "rname": _name(rng), "rphone": _phone(rng), "created": c0, "due": due,
                "acc": ts.get("accepted"), "dis": ts.get("dispatched"), "res": ts.get("resolved"),
                "clo": ts.get("closed"), "updated": max([c0, *ts.values()]),
                "sat": int(rng.choice([3, 4, 5, 5, 5, 4, 2])) if "closed" in ts else None,
                "lon": lon, "lat": lat, "actor": actor, **cells,
            })
        conn.execute(text("""
            INSERT INTO events (category, subtype, priority, source, state, description, department, reporter_name,
                reporter_phone, created_at, created_by, updated_at, accepted_at, dispatched_at, resolved_at, closed_at,
                due_at, satisfaction, synthetic, h3_7, h3_8, h3_9, h3_10, geom)
            VALUES (:category, :subtype, :priority, :source, :state, :description, :dept, :rname, :rphone, :created,
                :actor, :updated, :acc, :dis, :res, :clo, :due, :sat, true, :h3_7, :h3_8, :h3_9, :h3_10,
                ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
        """), records)
        conn.execute(text("""
            UPDATE events e SET grid_code = g.code, plan_id = g.plan_id, jurisdiction_id = j.id, jurisdiction_path = j.path
            FROM grids g JOIN grid_plans gp ON gp.id = g.plan_id
            JOIN jurisdictions j ON j.id = coalesce((SELECT id FROM jurisdictions WHERE code = g.community_code),
                                                    gp.jurisdiction_id)
            WHERE e.synthetic AND e.grid_code IS NULL AND g.plan_id = ANY(:p) AND ST_Covers(g.geom, e.geom)
        """), {"p": list(plan_ids)})
        conn.execute(text("DELETE FROM events WHERE synthetic AND grid_code IS NULL"))
        conn.execute(text("""
            INSERT INTO event_transitions (event_id, event_created_at, from_state, to_state, actor, at, note)
            SELECT id, created_at, NULL, 'reported', created_by, created_at, 'synthetic' FROM events WHERE synthetic
        """))
        for frm, to, col in (("reported", "accepted", "accepted_at"), ("accepted", "dispatched", "dispatched_at"),
                             ("in_progress", "resolved", "resolved_at"), ("resolved", "closed", "closed_at")):
            conn.execute(text(f"""
                INSERT INTO event_transitions (event_id, event_created_at, from_state, to_state, actor, at, note)
                SELECT id, created_at, '{frm}', '{to}', created_by, {col}, 'synthetic' FROM events
                WHERE synthetic AND {col} IS NOT NULL
            """))
        count = conn.execute(text("SELECT count(*) FROM events WHERE synthetic")).scalar_one()
        audit.record(conn, actor, "seed.events", "events",
                     detail={"plans": list(plan_ids), "events": count, "synthetic": True})
    return count
