"""The printed 网格图 of a demo community, fetched through the API as the planner page does: an A3
landscape PDF whose text has the community, the plan version and every grid's code. With
``GEO_SCREENSHOTS_DIR`` set it is also rendered to PNG there (docs/screenshots/wanggetu.png)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.browser.helpers import auth

pytestmark = pytest.mark.browser


def test_wanggetu_pdf_of_a_demo_community(stack, tmp_path):
    if not shutil.which("pdftotext"):
        pytest.skip("needs poppler-utils (scripts/system-deps.sh)")
    api = stack.api_url
    h = auth(api, "planner")
    js = httpx.get(f"{api}/v1/jurisdictions", headers=h, timeout=10).json()
    street = next(j for j in js if j["level"] == "street" and j["published_plan_id"])
    comms = [j for j in js if j["level"] == "community" and j["parent_code"] == street["code"]]
    fc = httpx.get(f"{api}/v1/plans/{street['published_plan_id']}/grids", headers=h, timeout=30).json()
    counts = {}
    for f in fc["features"]:
        counts[f["properties"]["community_code"]] = counts.get(f["properties"]["community_code"], 0) + 1
    comm = max(comms, key=lambda c: counts.get(c["code"], 0))
    r = httpx.get(f"{api}/v1/plans/{street['published_plan_id']}/print/{comm['code']}", headers=h, timeout=120)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    pdf = tmp_path / "w.pdf"
    pdf.write_bytes(r.content)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    size = next(ln for ln in info.splitlines() if ln.startswith("Page size"))
    w, h = (float(v) for v in size.split(":")[1].split("pts")[0].split("x"))
    assert (round(w), round(h)) == (1191, 842), size  # A3 landscape in points
    txt = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert f"{comm['name']}网格图" in txt
    codes = [f["properties"]["code"] for f in fc["features"] if f["properties"]["community_code"] == comm["code"]]
    assert codes and all(c in txt for c in codes)
    out = os.environ.get("GEO_SCREENSHOTS_DIR")
    if out and shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf), str(Path(out) / "wanggetu")],
                       check=True)
