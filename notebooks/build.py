"""Build the walkthrough notebooks from the cell sources below (the single source of truth).

    python notebooks/build.py            # write the .ipynb files (unexecuted)
    python notebooks/build.py --execute  # and run them with nbclient, saving outputs

`make test` executes every notebook (tests/test_notebooks.py); each must finish in under 2 minutes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP_WORLD = '''\
import os, shutil, socket, subprocess, sys, tempfile, time
from pathlib import Path

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

# A private, throw-away world: its own PostGIS cluster under a temporary data dir.
WORK = Path(tempfile.mkdtemp(prefix="geo-notebook-"))
WORK.chmod(0o755)
ENV = os.environ | {"GEO_DATA_DIR": str(WORK), "GEO_PG_PORT": str(free_port()), "GEO_API_PORT": str(free_port()),
                    "GEO_DEMO": "1", "NO_COLOR": "1", "TERM": "dumb"}
ENV.pop("DATABASE_URL", None)
ENV.pop("FORCE_COLOR", None)
os.environ.update({k: ENV[k] for k in ("GEO_DATA_DIR", "GEO_PG_PORT", "GEO_API_PORT", "GEO_DEMO")})
GEO = [sys.executable, "-m", "geo.cli"]
'''

TEARDOWN = '''\
subprocess.run(GEO + ["db", "down"], env=ENV, check=False, capture_output=True)
shutil.rmtree(WORK, ignore_errors=True)
print("cleaned up the temporary world")
'''

NB_04 = [
    ("md", """\
# 04 · Using the API with httpx: lookup, batch lookup, events

This walkthrough talks to the geo API the way a dispatch system, a worker app or the 12345 hotline would.
It builds a small **synthetic** district (generated, labelled synthetic — not real data), partitions and
publishes it, starts `geo serve --demo` on a free port, and then only uses HTTP."""),
    ("code", SETUP_WORLD + '''
out = subprocess.run(GEO + ["demo", "--no-serve", "--scale", "0.1", "--events", "300"], env=ENV,
                     capture_output=True, text=True)
print(out.stdout[-600:] if out.returncode == 0 else out.stderr[-2000:])
API = subprocess.Popen(GEO + ["serve", "--demo"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
BASE = f"http://127.0.0.1:{ENV['GEO_API_PORT']}"

import httpx
for _ in range(100):
    try:
        if httpx.get(f"{BASE}/readyz", timeout=1).status_code == 200:
            break
    except httpx.HTTPError:
        time.sleep(0.2)
print(httpx.get(f"{BASE}/readyz").json())'''),
    ("md", "## Log in (OAuth2 password flow) — every role is scoped to a jurisdiction subtree"),
    ("code", '''\
tok = httpx.post(f"{BASE}/v1/auth/token", data={"username": "dispatcher", "password": "demo-only-change-me"}).json()
H = {"Authorization": f"Bearer {tok['access_token']}"}
print(tok["role"], tok["jurisdiction"])
jur = httpx.get(f"{BASE}/v1/jurisdictions", headers=H).json()
streets = [j for j in jur if j["level"] == "street"]
print(len(jur), "jurisdictions;", len(streets), "streets/towns, e.g.", streets[0]["name"], streets[0]["code"])'''),
    ("md", """\
## Which grid owns this point?

`GET /v1/lookup` answers from an in-memory index of the published plan. Coordinates may be WGS84, CGCS2000 or
**GCJ-02** (what Amap/Tencent return) — the same place gives the same grid."""),
    ("code", '''\
from geo.crs import wgs84_to_gcj02
g = httpx.get(f"{BASE}/v1/grids", params={"zoom": 13}, headers=H).json()["features"][0]
import shapely.geometry as sg
lon, lat = sg.shape(g["geometry"]).representative_point().coords[0]
a = httpx.get(f"{BASE}/v1/lookup", params={"lon": lon, "lat": lat}, headers=H).json()
glon, glat = map(float, wgs84_to_gcj02(lon, lat))
b = httpx.get(f"{BASE}/v1/lookup", params={"lon": glon, "lat": glat, "crs": "gcj02"}, headers=H).json()
print(a["code"], a["name"], "| community:", a["community"]["name"], "| chief:", (a["chief"] or {}).get("name"))
print("same grid from GCJ-02 input:", b["code"] == a["code"], f"(GCJ-02 shift here ≈ {abs(glon-lon)*96000:.0f} m east)")
far = httpx.get(f"{BASE}/v1/lookup", params={"lon": lon + 0.2, "lat": lat}, headers=H)
print(far.status_code, far.json()["error"], far.json()["nearest"])
assert a["code"] == g["properties"]["code"], "the grid's own interior point must be answered by that grid"
assert b["code"] == a["code"], "GCJ-02 input must give the same grid as WGS84"
assert far.status_code == 404'''),
    ("md", "## Batch lookup: one grid code per input row, in order, with per-row errors"),
    ("code", '''\
import numpy as np
rng = np.random.default_rng(0)
pts = np.column_stack([rng.normal(lon, 0.01, 20_000), rng.normal(lat, 0.01, 20_000)])
t = time.perf_counter()
r = httpx.post(f"{BASE}/v1/lookup/batch", json={"points": pts.tolist()}, headers=H, timeout=60).json()
print(f"{r['count']} points in {time.perf_counter() - t:.2f} s;", sum(c is not None for c in r["codes"]), "inside a grid")
assert r["count"] == len(pts) == len(r["codes"])
csv = "id,lon,lat\\n1,%f,%f\\n2,not-a-number,30.6\\n" % (lon, lat)
r = httpx.post(f"{BASE}/v1/lookup/batch", content=csv, headers=H | {"Content-Type": "text/csv"}).json()
print(r["codes"], r["errors"])
assert r["codes"][0] == a["code"] and r["codes"][1] is None and len(r["errors"]) == 1'''),
    ("md", """\
## Report an event and take it through the closed loop

`Idempotency-Key` makes a retried submission safe: the same key returns the same event."""),
    ("code", '''\
ev = {"category": "component", "subtype": "manhole_cover", "source": "hotline_12345", "lon": lon, "lat": lat,
      "description": "井盖缺失（演示）", "reporter_name": "张三", "reporter_phone": "13800001111"}
first = httpx.post(f"{BASE}/v1/events", json=ev, headers=H | {"Idempotency-Key": "call-0001"})
retry = httpx.post(f"{BASE}/v1/events", json=ev, headers=H | {"Idempotency-Key": "call-0001"})
e = first.json()
print(first.status_code, retry.status_code, "same event:", retry.json()["id"] == e["id"])
assert first.status_code == 201 and retry.json()["id"] == e["id"] and e["grid_code"] == a["code"]
print("grid", e["grid_code"], "→", e["department"], "| priority", e["priority"], "| due", e["due_at"])
staff = httpx.get(f"{BASE}/v1/grids/{e['grid_code']}/workers", params={"lon": lon, "lat": lat}, headers=H).json()
w = staff[0]["id"]
for step in ({"to": "accepted"}, {"to": "dispatched", "assignee_worker_id": w}, {"to": "in_progress"},
             {"to": "resolved", "note": "已补装井盖"}, {"to": "closed", "satisfaction": 5}):
    r = httpx.post(f"{BASE}/v1/events/{e['id']}/transitions", json=step, headers=H)
    print(step["to"], r.status_code)
    assert r.status_code == 200, r.text
bad = httpx.post(f"{BASE}/v1/events/{e['id']}/transitions", json={"to": "accepted"}, headers=H)
print("closed → accepted:", bad.status_code, bad.json()["message"])
log = httpx.get(f"{BASE}/v1/events/{e['id']}", headers=H).json()["transitions"]
print([(t["from_state"], t["to_state"], t["actor"]) for t in log])
assert bad.status_code == 409 and [t["to_state"] for t in log][-1] == "closed"'''),
    ("md", "## KPIs and an H3 heatmap, aggregated by the server"),
    ("code", '''\
k = httpx.get(f"{BASE}/v1/stats/kpis", headers=H).json()
print({x: k[x] for x in ("events", "events_today", "dispatch_rate", "resolution_rate", "on_time_rate", "satisfaction",
                         "overdue", "report_coverage", "workers_on_duty")})
hm = httpx.get(f"{BASE}/v1/stats/heatmap", params={"res": 9}, headers=H).json()
print(hm["total"], "events in", len(hm["cells"]), "H3 cells; busiest:", hm["cells"][:3])
assert 0 < hm["total"] <= k["events"] and hm["cells"]'''),
    ("code", "API.terminate(); API.wait(10)\n" + TEARDOWN),
]

NB_01 = [
    ("md", """\
# 01 · Partition walkthrough: a synthetic district into grids of 1,000–2,000 residents

The district is **synthetic** — generated by `geo.demo.synthetic` and labelled so in its metadata; nothing in
it is real. It has street centerlines (arterials, secondary roads, lanes with dead ends, estate roads),
社区 and 村 boundaries, one address point per building (楼栋) with households and residents, gated estates (小区)
of thousands of residents inside single street blocks, special units and a rural fringe.

Steps: load the files through the same loaders `geo load` uses (with the load report), partition, read the
quality report, look at the map."""),
    ("code", '''\
import tempfile, time
from pathlib import Path
import numpy as np
import geopandas as gpd
from geo.demo import write_demo

work = Path(tempfile.mkdtemp(prefix="geo-nb01-"))
info = write_demo(work, seed=42, scale=0.3)
print({k: info["totals"][k] for k in ("people", "households", "buildings", "communities", "estates", "special_areas")})
print("files:", sorted(Path(p).name for p in info["files"].values()))'''),
    ("md", "## Load with the load report (what `geo load population … --pop people` does before writing)"),
    ("code", '''\
from geo.io.readers import read_table
from geo.io.checks import ColumnMap, validate

raw = read_table(info["files"]["population"])
clean, report = validate(raw, "population", ColumnMap(id="id", people="people", households="households",
                                                      building="building"))
print(report.message())
print(f"{len(clean):,} buildings, {int(clean.people.sum()):,} people — CRS {clean.crs.to_epsg()}")
assert report.ok and int(clean.people.sum()) == info["totals"]["people"]
streets = read_table(info["files"]["streets"]).frame
communities = read_table(info["files"]["communities"]).frame
special = read_table(info["files"]["special_areas"]).frame
boundary = read_table(info["files"]["boundary"]).frame
print(streets.klass.value_counts().to_dict())'''),
    ("md", "## Partition"),
    ("code", '''\
from geo.partition import partition

population = clean.rename(columns={"source_id": "id"})[["people", "households", "building", "geometry"]]
t = time.perf_counter()
plan = partition(jurisdiction=boundary, population=population, streets=streets, communities=communities,
                 special=special, min_pop=1000, max_pop=2000, seed=0)
print(f"{len(plan.grids)} grids in {time.perf_counter() - t:.1f} s")
assert int(plan.grids.people.sum()) == int(population.people.sum()), "every resident is in exactly one grid"
plan.grids[["code", "name", "kind", "people", "households", "flags"]].head(8)'''),
    ("md", "## The quality report (also stored with every plan as JSON)"),
    ("code", '''\
r = plan.report
print(f"in range: {r['range']['in_range_share']:.1%}; out of range with a reason: {r['range']['reasons']}")
print(f"population min/median/max: {r['population']['min']:.0f} / {r['population']['median']:.0f} / "
      f"{r['population']['max']:.0f}, CV {r['population']['cv']:.3f}")
print(f"coverage {r['coverage']['covered_share']:.6%}, gaps {r['coverage']['gap_m2']:.2f} m², "
      f"overlaps {r['coverage']['overlap_m2']:.2f} m²; grids in several pieces: {r['contiguity']['noncontiguous_grids']}")
print(f"Polsby-Popper mean {r['compactness']['polsby_popper_mean']:.3f}; boundary on streets "
      f"{r['streets']['boundary_on_streets_share']:.1%}")
for g in r["range"]["grids"][:10]:
    print("  ", g)
assert r["n_grids"] == len(plan.grids)
assert r["range"]["out_of_range_unexplained"] == 0, "every grid outside the range has a reason"
assert r["contiguity"]["noncontiguous_grids"] == 0
assert r["coverage"]["gap_m2"] < 1 and r["coverage"]["overlap_m2"] < 1'''),
    ("code", '''\
import matplotlib.pyplot as plt

plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "DejaVu Sans"]
g = plan.grids
fig, ax = plt.subplots(1, 2, figsize=(14, 6))
ax[0].hist(g.loc[g.kind != "exclusive", "people"], bins=30, color="#4c72b0")
ax[0].axvline(1000, color="k", ls="--"); ax[0].axvline(2000, color="k", ls="--")
ax[0].set_title("residents per grid (exclusive units left out)")
g.plot(ax=ax[1], column="people", cmap="YlOrRd", edgecolor="#333", linewidth=0.3, legend=True)
g[g.kind == "exclusive"].boundary.plot(ax=ax[1], color="royalblue", linewidth=1.5)
ax[1].set_title("grids (blue outline: exclusive 专属网格)"); ax[1].set_axis_off()
plt.show()'''),
    ("md", "## On a map (folium; no basemap tiles, so it works offline)"),
    ("code", '''\
import folium

g4326 = plan.grids.to_crs(4326)
g4326["geometry"] = g4326.simplify(0.00002)
m = folium.Map(location=[g4326.union_all().centroid.y, g4326.union_all().centroid.x], zoom_start=13, tiles=None)
folium.GeoJson(
    g4326[["code", "name", "kind", "people", "geometry"]].to_json(),
    style_function=lambda f: {"color": "#1f4e79", "weight": 1,
                              "fillColor": "#6baed6" if f["properties"]["kind"] != "exclusive" else "#fd8d3c",
                              "fillOpacity": 0.35},
    tooltip=folium.GeoJsonTooltip(fields=["code", "name", "people"]),
).add_to(m)
m'''),
    ("code", "import shutil; shutil.rmtree(work, ignore_errors=True)"),
]

NB_03 = [
    ("md", """\
# 03 · Re-drawing after growth: keep what works, repair what broke

A published plan should stay put. When new buildings fill up, only the grids that left [1000, 2000] and their
neighbours should change — residents do not want a new grid worker every year. Here the **synthetic** district
grows (60% more people in the buildings of a random 10% of street blocks: new towers, a new estate phase) and
we compare the stable re-draw with a from-scratch partition (another seed, as a new planner would draw it)."""),
    ("code", '''\
import time
import numpy as np
import geopandas as gpd
from geo.demo import generate_district
from geo.partition import partition

d = generate_district(seed=42, scale=0.3)
kw = dict(jurisdiction=d.boundary, streets=d.streets, communities=d.communities, special=d.special_areas, seed=0)
v1 = partition(population=d.population, **kw)
print(f"published plan: {len(v1.grids)} grids, {v1.report['range']['in_range_share']:.1%} in range")
assert v1.report["range"]["out_of_range_unexplained"] == 0'''),
    ("code", '''\
rng = np.random.default_rng(7)
pop2 = d.population.copy()
blocks = v1.atoms.reset_index(names="atom")[["block", "geometry"]].to_crs(4326)
where = gpd.sjoin(pop2[["geometry"]], blocks, how="left", predicate="within")["block"]
where = where[~where.index.duplicated()]
grow = rng.choice(where.dropna().unique(), size=max(1, int(0.10 * where.nunique())), replace=False)
hit = where.isin(grow).reindex(pop2.index, fill_value=False).to_numpy()
pop2.loc[hit, "people"] = np.round(pop2.loc[hit, "people"] * 1.6).astype(int)
print(f"{hit.sum()} buildings in {len(grow)} blocks grow: +{int(pop2.people.sum() - d.population.people.sum()):,} people")'''),
    ("code", '''\
t = time.perf_counter()
stable = partition(population=pop2, previous=v1, stable=True, **kw)
t_stable = time.perf_counter() - t
t = time.perf_counter()
scratch = partition(population=pop2, previous=v1, stable=False, **(kw | {"seed": 1}))
t_scratch = time.perf_counter() - t
print("previous grids now out of range:", stable.report.get("redraw", {}).get("out_of_range_before"))

def moved(plan):
    a = plan.atoms.to_crs(4326)
    pts = a.representative_point()
    old = gpd.sjoin(gpd.GeoDataFrame(geometry=pts, crs=4326), v1.grids.to_crs(4326)[["code", "geometry"]],
                    how="left", predicate="within")["code"]
    old = old[~old.index.duplicated()]
    changed = (old.to_numpy() != a["grid"].to_numpy())
    return int(a.loc[changed, "people"].sum()), int(a["people"].sum())

result = {}
for name, p, t in (("stable re-draw", stable, t_stable), ("from scratch", scratch, t_scratch)):
    m, tot = moved(p)
    kept = len(set(p.grids.code) & set(v1.grids.code))
    result[name] = (m, kept, p.report["range"]["out_of_range_unexplained"])
    print(f"{name:15} {len(p.grids)} grids, {p.report['range']['in_range_share']:.1%} in range, "
          f"residents whose grid code changes: {m:,} of {tot:,} ({m / tot:.1%}); grid codes kept {kept}; {t:.1f} s")
assert result["stable re-draw"][2] == 0, "the re-draw leaves no grid out of range without a reason"
assert result["stable re-draw"][0] <= result["from scratch"][0], "a stable re-draw moves no more residents"
assert result["stable re-draw"][1] >= result["from scratch"][1], "and keeps at least as many grid codes"'''),
    ("code", '''\
import matplotlib.pyplot as plt

plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "DejaVu Sans"]
fig, ax = plt.subplots(1, 2, figsize=(14, 6))
for a, p, title in ((ax[0], stable, "stable re-draw"), (ax[1], scratch, "from scratch")):
    g = p.grids.to_crs(3857)
    old = v1.grids.to_crs(3857)
    same = g.geometry.apply(lambda x: bool((old.geom_equals_exact(x, tolerance=0.5)).any()))
    g.plot(ax=a, color=np.where(same, "#d9d9d9", "#e6550d"), edgecolor="white", linewidth=0.4)
    a.set_title(f"{title}: {int((~same).sum())} grids changed (orange)"); a.set_axis_off()
plt.show()'''),
    ("md", """\
**Reading the result.** The stable re-draw keeps every grid that is still within [1000, 2000] and re-divides
only the grids that left the range, together with neighbours it needs; codes of unchanged grids carry over.
In this synthetic district most grids are whole street blocks, so even a from-scratch run lands on nearly the
same grids. On census blocks (Denver, `benchmarks/partition_peers.py`) the difference is large: after 25% growth
in 5% of the blocks, the stable re-draw moves a few hundred residents where a from-scratch run moves about
200,000 (figures in `benchmarks/RESULTS.md`)."""),
]

NB_02 = [
    ("md", """\
# 02 · Real streets in GCJ-02: Wuhan 江汉区

The district boundary comes from Amap (高德) and is in **GCJ-02**, the obfuscated datum Chinese map providers
use; the file says EPSG:4326, which is wrong. The streets are OpenStreetMap (WGS84, here in UTM 50N). This
notebook shows the boundary missing the streets by the GCJ-02 offset before conversion and lining up after,
then divides the district into street blocks.

Data: `../shared/data/wuhan/` beside the checkout (see its README). Where it is absent the notebook says so and
skips the rest."""),
    ("code", '''\
import os
from pathlib import Path

candidates = [Path(os.environ["GEO_SHARED_DATA"])] if os.environ.get("GEO_SHARED_DATA") else []
candidates += [p / "shared" / "data" for p in (Path.cwd().parent.parent, Path.cwd().parent)]
SHARED = next((c for c in candidates if (c / "wuhan" / "wuhan_streets.parquet").exists()), None)
HAVE_DATA = SHARED is not None
print("data:", "found (../shared/data)" if HAVE_DATA else "NOT FOUND — ../shared/data is absent here; the rest of this notebook is skipped")'''),
    ("code", '''\
if HAVE_DATA:
    import geopandas as gpd
    import numpy as np
    import shapely
    from geo.crs import to_wgs84

    raw = gpd.read_file(SHARED / "wuhan" / "jianghan_boundary_gcj02.geojson")   # labelled 4326, really GCJ-02
    fixed = to_wgs84(raw, "gcj02")                                               # the real WGS84 outline
    streets = gpd.read_parquet(SHARED / "wuhan" / "wuhan_streets.parquet")
    utm = streets.crs
    b_raw, b_fix = raw.to_crs(utm).geometry.iloc[0], fixed.to_crs(utm).geometry.iloc[0]
    shift = shapely.get_coordinates(b_raw) - shapely.get_coordinates(b_fix)
    print(f"every vertex moves by {np.hypot(*shift.T).min():.0f}–{np.hypot(*shift.T).max():.0f} m "
          f"(mean dx {shift[:, 0].mean():+.0f} m, dy {shift[:, 1].mean():+.0f} m)")

    def near_streets(boundary, tol=30):
        ring = boundary.boundary
        pts = shapely.line_interpolate_point(ring, np.linspace(0, ring.length, 3000))
        _, d = shapely.STRtree(streets.geometry.values).query_nearest(pts, return_distance=True, all_matches=False)
        return float(np.mean(d < tol))

    print(f"share of the boundary within 30 m of a street: as given {near_streets(b_raw):.0%}, "
          f"converted {near_streets(b_fix):.0%}")
    assert near_streets(b_fix) > near_streets(b_raw) + 0.2, "converted, the boundary follows the streets"'''),
    ("code", '''\
if HAVE_DATA:
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "DejaVu Sans"]  # fonts-noto-cjk, installed by make
    xy = shapely.get_coordinates(b_fix)
    x0, y0 = xy[np.argmin(xy[:, 0])]
    win = shapely.box(x0 - 600, y0 - 900, x0 + 1400, y0 + 900)
    fig, ax = plt.subplots(figsize=(8, 7))
    streets.clip(win).plot(ax=ax, color="#999", linewidth=0.7)
    gpd.GeoSeries([b_raw.boundary], crs=utm).clip(win).plot(ax=ax, color="crimson", linewidth=2.5,
                                                             label="boundary as given (GCJ-02)")
    gpd.GeoSeries([b_fix.boundary], crs=utm).clip(win).plot(ax=ax, color="royalblue", linewidth=2.5,
                                                             label="converted to WGS84")
    ax.set_title("江汉区 western edge: the GCJ-02 outline misses the roads; converted, it follows them")
    ax.legend(loc="lower right"); ax.set_axis_off()
    plt.show()'''),
    ("md", "## Street blocks: the building bricks of grids"),
    ("code", '''\
if HAVE_DATA:
    import time
    from geo.partition.blocks import street_blocks

    t = time.perf_counter()
    inside = streets[streets.intersects(b_fix)]
    blocks = street_blocks(inside, gpd.GeoSeries([b_fix], crs=utm))
    dt = time.perf_counter() - t
    union = shapely.union_all(blocks.geometry.values)
    print(f"{len(inside):,} street segments → {len(blocks):,} blocks in {dt:.1f} s")
    print(f"district {b_fix.area / 1e6:.2f} km²; blocks cover {union.area / b_fix.area:.6%}; "
          f"sum of block areas / union = {blocks.area.sum() / union.area:.6f} (1 = no overlaps)")
    print(blocks["area_m2"].describe(percentiles=[0.1, 0.5, 0.9]).round(0).to_string())
    assert union.area / b_fix.area > 0.9999 and blocks.area.sum() / union.area < 1.0001'''),
    ("code", '''\
if HAVE_DATA:
    fig, ax = plt.subplots(figsize=(9, 8))
    blocks.plot(ax=ax, column="area_m2", cmap="viridis", scheme=None, edgecolor="white", linewidth=0.3)
    gpd.GeoSeries([b_fix.boundary], crs=utm).plot(ax=ax, color="black", linewidth=1)
    ax.set_title(f"江汉区: {len(blocks)} street blocks (colour = area)"); ax.set_axis_off()
    plt.show()'''),
]


def build(name: str, cells: list[tuple[str, str]]) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells]
    path = HERE / name
    nbformat.write(nb, path)
    return path


NOTEBOOKS = {
    "01_partition_walkthrough.ipynb": NB_01,
    "02_real_streets_gcj02.ipynb": NB_02,
    "03_redraw_after_growth.ipynb": NB_03,
    "04_api_client.ipynb": NB_04,
}


def execute(path: Path, timeout: int = 120) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, path)


if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        p = build(name, cells)
        if "--execute" in sys.argv:
            execute(p)
        print("wrote", p)
