"""Export a plan in each format and CRS and import it again: the same grids (codes, names, types,
communities, residents, shapes); the printed 网格图 is an A3 landscape PDF."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import shapely

from tests.api.planner_world import C1, MAX, MIN, STREET, drawn_grids, pworld  # noqa: F401

TOL = {"wgs84": 1e-12, "cgcs2000": 1e-9, "gcj02": 1e-8}  # degrees; GCJ-02's inverse is iterative (~1 mm)


@pytest.fixture
def imported(pworld, engine, tmp_path):
    from geo.db.grid_import import import_grids
    from geo.io.grid_files import read_grid_file

    f = tmp_path / "clean.geojson"
    drawn_grids(faults=False).to_file(f, driver="GeoJSON")
    res = import_grids(engine, STREET, read_grid_file(f), actor="test", min_pop=MIN, max_pop=MAX)
    return res.plan_id


def _multi(g):
    return shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson", "csv"])
@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000", "gcj02"])
def test_export_import_round_trip(imported, engine, tmp_path, fmt, crs):
    from geo.db.export import plan_frame
    from geo.db.grid_import import import_grids
    from geo.io.grid_files import read_grid_file, write_grid_file

    frame, _ = plan_frame(engine, imported)
    out = write_grid_file(frame, tmp_path / f"grids.{'zip' if fmt == 'shp' else fmt}", fmt, crs)
    if fmt == "shp":
        import zipfile

        names = zipfile.ZipFile(out).namelist()
        assert {"grids.shp", "grids.dbf", "grids.cpg", "grids.prj", "grids.shx"} <= set(names)
        assert zipfile.ZipFile(out).read("grids.cpg").decode() == "GBK"
    gf = read_grid_file(out, crs=crs if crs == "gcj02" or fmt == "csv" else None)
    assert gf.problems == []
    back = import_grids(engine, STREET, gf, actor="test", min_pop=MIN, max_pop=MAX, dry_run=True).report
    assert back["codes"] == [] and back["names"] == [] and back["gaps"] == [] and back["overlaps"] == []
    a = frame.set_index("code")
    b = gf.frame.set_index("code")
    assert list(a.index) == list(b.index)
    assert list(a["name"]) == list(b["name"]) and list(a["kind"]) == list(b["kind"])
    assert list(b["chief"]) == [f"张{k}" for k in range(8)]
    for c in a.index:
        ga, gb = _multi(a.geometry[c]), _multi(b.geometry[c])
        assert len(shapely.get_coordinates(ga)) == len(shapely.get_coordinates(gb)), c  # no vertex lost or added
        assert shapely.hausdorff_distance(ga, gb) <= TOL[crs], c
    assert back["summary"]["people"] == int(frame["people"].sum())


def test_shapefile_without_cpg_in_gbk_and_utf8(pworld, tmp_path):
    """A zipped Shapefile with no .cpg is read right in either encoding (detected from the DBF bytes)."""
    import zipfile

    from geo.io.grid_files import read_grid_file

    g = drawn_grids(faults=False)
    for enc in ("GBK", "UTF-8"):
        d = tmp_path / enc
        d.mkdir()
        g.to_file(d / "w.shp", driver="ESRI Shapefile", encoding=enc, engine="pyogrio")
        (d / "w.cpg").unlink(missing_ok=True)
        z = tmp_path / f"{enc}.zip"
        with zipfile.ZipFile(z, "w") as zf:
            for f in d.iterdir():
                zf.write(f, f.name)
        gf = read_grid_file(z)
        assert gf.encoding == enc
        assert list(gf.frame["name"]) == list(g["网格名称"])


def test_wanggetu_pdf(imported, engine, tmp_path):
    from geo.db.wanggetu import community_map_pdf

    pdf = community_map_pdf(engine, imported, C1)
    assert pdf.startswith(b"%PDF")
    (tmp_path / "w.pdf").write_bytes(pdf)
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(tmp_path / "w.pdf")], capture_output=True, text=True).stdout
        size = [ln for ln in info.splitlines() if ln.startswith("Page size")][0]
        w, h = (float(v) for v in size.split(":")[1].split("pts")[0].split("x"))
        assert (round(w), round(h)) == (1191, 842)  # A3 landscape in points
    if shutil.which("pdftotext"):
        txt = subprocess.run(["pdftotext", str(tmp_path / "w.pdf"), "-"], capture_output=True, text=True).stdout
        assert "桂园社区网格图" in txt and f"{C1}001" in txt and "1,024人" in txt
