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
                    "GEO_DEMO": "1"}
ENV.pop("DATABASE_URL", None)
os.environ.update({k: ENV[k] for k in ("GEO_DATA_DIR", "GEO_PG_PORT", "GEO_API_PORT", "GEO_DEMO")})
GEO = [sys.executable, "-m", "geo.cli"]
'''

TEARDOWN = '''\
subprocess.run(GEO + ["db", "down"], env=ENV, check=False, capture_output=True)
shutil.rmtree(WORK, ignore_errors=True)
print("cleaned up", WORK)
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
print(far.status_code, far.json()["error"], far.json()["nearest"])'''),
    ("md", "## Batch lookup: one grid code per input row, in order, with per-row errors"),
    ("code", '''\
import numpy as np
rng = np.random.default_rng(0)
pts = np.column_stack([rng.normal(lon, 0.01, 20_000), rng.normal(lat, 0.01, 20_000)])
t = time.perf_counter()
r = httpx.post(f"{BASE}/v1/lookup/batch", json={"points": pts.tolist()}, headers=H, timeout=60).json()
print(f"{r['count']} points in {time.perf_counter() - t:.2f} s;", sum(c is not None for c in r["codes"]), "inside a grid")
csv = "id,lon,lat\\n1,%f,%f\\n2,not-a-number,30.6\\n" % (lon, lat)
r = httpx.post(f"{BASE}/v1/lookup/batch", content=csv, headers=H | {"Content-Type": "text/csv"}).json()
print(r["codes"], r["errors"])'''),
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
print("grid", e["grid_code"], "→", e["department"], "| priority", e["priority"], "| due", e["due_at"])
staff = httpx.get(f"{BASE}/v1/grids/{e['grid_code']}/workers", params={"lon": lon, "lat": lat}, headers=H).json()
w = staff[0]["id"]
for step in ({"to": "accepted"}, {"to": "dispatched", "assignee_worker_id": w}, {"to": "in_progress"},
             {"to": "resolved", "note": "已补装井盖"}, {"to": "closed", "satisfaction": 5}):
    r = httpx.post(f"{BASE}/v1/events/{e['id']}/transitions", json=step, headers=H)
    print(step["to"], r.status_code)
bad = httpx.post(f"{BASE}/v1/events/{e['id']}/transitions", json={"to": "accepted"}, headers=H)
print("closed → accepted:", bad.status_code, bad.json()["message"])
log = httpx.get(f"{BASE}/v1/events/{e['id']}", headers=H).json()["transitions"]
print([(t["from_state"], t["to_state"], t["actor"]) for t in log])'''),
    ("md", "## KPIs and an H3 heatmap, aggregated by the server"),
    ("code", '''\
k = httpx.get(f"{BASE}/v1/stats/kpis", headers=H).json()
print({x: k[x] for x in ("events", "events_today", "dispatch_rate", "resolution_rate", "on_time_rate", "satisfaction",
                         "overdue", "report_coverage", "workers_on_duty")})
hm = httpx.get(f"{BASE}/v1/stats/heatmap", params={"res": 9}, headers=H).json()
print(hm["total"], "events in", len(hm["cells"]), "H3 cells; busiest:", hm["cells"][:3])'''),
    ("code", "API.terminate(); API.wait(10)\n" + TEARDOWN),
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
print("data:", SHARED if HAVE_DATA else "NOT FOUND — ../shared/data is absent here; the rest of this notebook is skipped")'''),
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
          f"converted {near_streets(b_fix):.0%}")'''),
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
    print(blocks["area_m2"].describe(percentiles=[0.1, 0.5, 0.9]).round(0).to_string())'''),
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
    "02_real_streets_gcj02.ipynb": NB_02,
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
