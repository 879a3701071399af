"""Geocode benchmark: the in-memory CJK bigram index (geo.api.services.geocode) vs two peers, same run.

Data: the synthetic district's address points (``geo.demo.synthetic``; community names from its communities
layer), expanded with 单元/室 to ``--rows`` standard addresses (a city's 标准地址 goes down to the flat).
Labelled queries are generated from the building addresses with a fixed seed:

* ``misspelt``: one character of the road/estate name replaced by a look-alike/sound-alike (绣→秀, 路→露 …)
  or a random character of the corpus;
* ``abbreviated``: the community name plus the last part (estate/building or road number), or the road
  part dropped;
* ``numerals``: digits written as Chinese numerals (5栋 → 五栋), spaces and full-width digits.

A query is answered right when the candidate's building is the building the query was made from (a unit
or flat of it is the same place). Peers on the same rows and queries:

1. ``pg-bigram-gin``: a ``text[]`` of the same bigrams with a GIN index in PostgreSQL, ``&&`` then ranked
   by shared bigrams and ``levenshtein`` (fuzzystrmatch) — the "index of your own in PostgreSQL" option;
2. ``substring``: a plain ``LIKE '%q%'``-style match in memory (what a search box without fuzzy matching
   finds), shortest first.

Usage::

    python benchmarks/geocode.py [--rows 500000] [--queries 600] [--seed 7]
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LOOKALIKE = {"绣": "秀", "华": "化", "府": "符", "园": "圆", "路": "露", "道": "到", "大": "达", "中": "钟", "山": "三",
             "人": "仁", "民": "明", "新": "心", "苑": "院", "阳": "杨", "湾": "弯", "家": "佳", "花": "化", "城": "成",
             "锦": "景", "江": "将", "建": "健", "设": "社", "东": "冬", "西": "溪", "南": "男", "北": "贝", "光": "广",
             "明": "名", "和": "合", "平": "萍", "安": "按", "庄": "装", "村": "存", "里": "理", "街": "阶", "巷": "项"}
CN = "〇一二三四五六七八九"


def cn_number(m: str) -> str:
    n = int(m)
    if n < 10:
        return CN[n]
    if n < 20:
        return "十" + (CN[n % 10] if n % 10 else "")
    if n < 100:
        return CN[n // 10] + "十" + (CN[n % 10] if n % 10 else "")
    return "".join(CN[int(c)] for c in m)


def build_rows(scale: float, n_rows: int, seed: int):
    """Building rows of the demo district plus 单元/室 rows up to *n_rows* (dict of columns), and the buildings."""
    from geo.demo.synthetic import generate_district

    d = generate_district(seed=42, scale=scale)
    pop = d.population
    names = dict(zip(d.communities["code"], d.communities["name"]))
    b_addr = list(pop["address"])
    b_comm = [names.get(c, "") for c in pop["community"]]
    b_id = list(pop["building"])
    rows = {"id": [], "address": [], "building": [], "lon": [], "lat": [], "path": [], "community_code": [],
            "community_name": []}

    def add(addr, bld, comm, code):
        rows["id"].append(len(rows["id"]))
        rows["address"].append(addr)
        rows["building"].append(bld)
        rows["lon"].append(0.0)
        rows["lat"].append(0.0)
        rows["path"].append("/1/")
        rows["community_code"].append(code)
        rows["community_name"].append(comm)

    for a, c, b, code in zip(b_addr, b_comm, b_id, pop["community"]):
        add(a, b, c, code)
    per = max(1, (n_rows - len(b_addr)) // max(1, len(b_addr)))
    rng = random.Random(seed)
    for a, c, b, code in zip(b_addr, b_comm, b_id, pop["community"]):
        for k in range(per):
            u, r = k // 24 + 1, 101 + k % 24
            add(f"{a}{u}单元{r}室", b, c, code)
            if len(rows["id"]) >= n_rows:
                break
        if len(rows["id"]) >= n_rows:
            break
    while len(rows["id"]) < n_rows:  # top up with flats of random buildings
        i = rng.randrange(len(b_addr))
        add(f"{b_addr[i]}{rng.randint(7, 30)}单元{rng.randint(101, 3399)}室", b_id[i], b_comm[i], pop["community"].iloc[i])
    rows["lon"] = np.asarray(rows["lon"])
    rows["lat"] = np.asarray(rows["lat"])
    return rows, list(zip(b_addr, b_comm, b_id))


def make_queries(buildings, n: int, seed: int):
    """(kind, query, building) triples; see the module docstring."""
    import re

    rng = random.Random(seed)
    corpus = sorted({ch for a, _, _ in buildings for ch in a if "\u4e00" <= ch <= "\u9fff"})
    out = []
    kinds = ("misspelt", "abbreviated", "numerals")
    while len(out) < n:
        a, comm, b = buildings[rng.randrange(len(buildings))]
        kind = kinds[len(out) % 3]
        if kind == "misspelt":
            idx = [i for i, ch in enumerate(a) if "\u4e00" <= ch <= "\u9fff" and ch not in "号栋村"]
            if not idx:
                continue
            i = rng.choice(idx)
            rep = LOOKALIKE.get(a[i]) or rng.choice(corpus)
            q = a[:i] + rep + a[i + 1:]
        elif kind == "abbreviated":
            m = re.match(r"^(.+?\d+号)(.+)$", a)
            q = (comm + m.group(2)) if m and rng.random() < 0.6 else (comm + a[-6:] if len(a) > 6 else comm + a)
        else:
            q = re.sub(r"\d+", lambda m: cn_number(m.group(0)), a)
            if rng.random() < 0.5:
                q = " ".join(q[i:i + 3] for i in range(0, len(q), 3))
        if q != a or kind != "misspelt":
            out.append((kind, q, b))
    return out


def run_ours(rows, queries):
    from geo.api.services.geocode import GeocodeIndex

    t0 = time.perf_counter()
    idx = GeocodeIndex(rows)
    build_s = time.perf_counter() - t0
    for _, q, _ in queries[:20]:  # warm-up
        idx.search_rows(q, "/1/", 5)
    lat, hits1, hits5 = [], {}, {}
    for kind, q, b in queries:
        t = time.perf_counter()
        c = idx.search_rows(q, "/1/", 5)
        lat.append((time.perf_counter() - t) * 1000)
        got = [rows["building"][x.row] for x in c]
        hits1.setdefault(kind, []).append(bool(got) and got[0] == b)
        hits5.setdefault(kind, []).append(b in got)
    return {"build_s": build_s, "lat": lat, "p1": hits1, "p5": hits5}


def run_substring(rows, queries, sample: int = 60):
    from geo.api.services.geocode import normalise

    search = [normalise(f"{c}{a}") for c, a in zip(rows["community_name"], rows["address"])]
    lat, hits1, hits5 = [], {}, {}
    for kind, q, b in queries[:sample]:
        t = time.perf_counter()
        nq = normalise(q)
        found = sorted((len(s), i) for i, s in enumerate(search) if nq in s)[:5]
        lat.append((time.perf_counter() - t) * 1000)
        got = [rows["building"][i] for _, i in found]
        hits1.setdefault(kind, []).append(bool(got) and got[0] == b)
        hits5.setdefault(kind, []).append(b in got)
    return {"lat": lat, "p1": hits1, "p5": hits5}


def run_pg(rows, queries, tmp: Path, sample: int = 90):
    from benchmarks.lookup import private_cluster
    from geo.api.services.geocode import normalise, tokens
    from geo.db.session import get_engine, psycopg_dsn
    from geo.db.cluster import database_url

    cluster = private_cluster(tmp)
    try:
        import psycopg

        dsn = psycopg_dsn(database_url())
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")
            conn.execute("CREATE TABLE addr (id int PRIMARY KEY, building text, search text, grams text[])")
            t0 = time.perf_counter()
            with conn.cursor() as cur, cur.copy("COPY addr (id, building, search, grams) FROM STDIN") as cp:
                for i, (a, c, b) in enumerate(zip(rows["address"], rows["community_name"], rows["building"])):
                    s = normalise(f"{c}{a}")
                    cp.write_row((i, b, s, sorted(tokens(s))))
            conn.execute("CREATE INDEX ON addr USING gin (grams)")
            conn.execute("ANALYZE addr")
            load_s = time.perf_counter() - t0
            sql = """
                SELECT building FROM addr
                WHERE grams && %(g)s
                ORDER BY cardinality(ARRAY(SELECT unnest(grams) INTERSECT SELECT unnest(%(g)s::text[]))) DESC,
                         levenshtein(left(search, 255), left(%(q)s, 255)), length(search)
                LIMIT 5
            """
            lat, hits1, hits5 = [], {}, {}
            for kind, q, b in queries[:sample]:
                nq = normalise(q)
                t = time.perf_counter()
                got = [r[0] for r in conn.execute(sql, {"g": sorted(tokens(nq)), "q": nq}).fetchall()]
                lat.append((time.perf_counter() - t) * 1000)
                hits1.setdefault(kind, []).append(bool(got) and got[0] == b)
                hits5.setdefault(kind, []).append(b in got)
        get_engine().dispose()
        return {"build_s": load_s, "lat": lat, "p1": hits1, "p5": hits5}
    finally:
        cluster.down()


def pct(v, q):
    return float(np.percentile(v, q)) if v else float("nan")


def prec(h):
    allv = [x for v in h.values() for x in v]
    return sum(allv) / len(allv) if allv else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--queries", type=int, default=600)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL peer")
    a = ap.parse_args()
    rows, buildings = build_rows(a.scale, a.rows, a.seed)
    queries = make_queries(buildings, a.queries, a.seed)
    print(f"{len(rows['id']):,} addresses ({len(buildings):,} buildings), {len(queries)} labelled queries, "
          f"seed {a.seed}; {platform.processor() or platform.machine()}, python {platform.python_version()}")
    res = {"bigram index (ours)": run_ours(rows, queries)}
    res["substring (LIKE %q%)"] = run_substring(rows, queries)
    if not a.no_pg:
        with tempfile.TemporaryDirectory(prefix="geo-geocode-") as tmp:
            res["pg bigram GIN + levenshtein"] = run_pg(rows, queries, Path(tmp))
    ours = res["bigram index (ours)"]
    base_p50 = pct(ours["lat"], 50)
    print()
    print(f"| method | queries | p50 ms | p99 ms | p50 vs ours | P@1 | P@5 | P@1 misspelt | P@1 abbreviated | P@1 numerals |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in res.items():
        p1 = r["p1"]
        print(f"| {name} | {len(r['lat'])} | {pct(r['lat'], 50):.2f} | {pct(r['lat'], 99):.2f} | "
              f"{pct(r['lat'], 50) / base_p50:.1f}× | {prec(p1):.3f} | {prec(r['p5']):.3f} | "
              f"{prec({'k': p1.get('misspelt', [])}):.3f} | {prec({'k': p1.get('abbreviated', [])}):.3f} | "
              f"{prec({'k': p1.get('numerals', [])}):.3f} |")
    print(f"\nindex build (ours, in memory): {ours['build_s']:.1f} s"
          + (f"; PostgreSQL COPY + GIN: {res['pg bigram GIN + levenshtein']['build_s']:.1f} s" if not a.no_pg else ""))
    print("examples:", [(k, q) for k, q, _ in queries[:6]])


if __name__ == "__main__":
    main()
