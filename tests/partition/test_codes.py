"""Grid codes beyond 999 grids under one prefix: overflow sub-prefixes, stability, fail-fast before the solve."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.partition import partition
from geo.partition.codes import (
    DEFAULT_PREFIX,
    GridCodeCapacityError,
    assign_codes,
    check_code_capacity,
    code_capacity,
    overflow_prefixes,
)
from geo.partition.regions import RegionBuilder

CRS = "EPSG:32650"
X0, Y0 = 500_000.0, 3_380_000.0


def boxes(n: int, cols: int = 60, size: float = 50.0, shift: float = 0.0) -> gpd.GeoDataFrame:
    g = [shapely.box(X0 + (k % cols) * size + shift, Y0 - (k // cols) * size,
                     X0 + (k % cols + 1) * size + shift, Y0 - (k // cols) * size + size) for k in range(n)]
    return gpd.GeoDataFrame({"people": np.full(n, 10)}, geometry=g, crs=CRS)


def test_overflow_prefixes_only_below_street_or_county_codes():
    assert overflow_prefixes("420103001001") == ["420103001001"]
    fam = overflow_prefixes("420103001000")
    assert fam[0] == "420103001000" and fam[1] == "420103001901" and fam[-1] == "420103001999"
    assert len(fam) == 100 and len(set(fam)) == 100
    assert code_capacity("420103001001") == 999
    assert code_capacity(DEFAULT_PREFIX) == 999 * 100


@pytest.mark.parametrize("n", [999, 1000, 2500])
def test_more_than_999_grids_get_unique_15_digit_codes_and_names(n):
    g = boxes(n)
    out = assign_codes(g, prefix="420103001000", jurisdiction_name="J")
    codes = out["code"].tolist()
    assert len(set(codes)) == n and all(len(c) == 15 and c.isdigit() for c in codes)
    base = [c for c in codes if c[:12] == "420103001000"]
    assert len(base) == min(n, 999)
    over = sorted(c for c in codes if c[:12] != "420103001000")
    assert len(over) == max(0, n - 999)
    if over:
        assert over[0] == "420103001901001"
        assert all(c[:9] == "420103001" and 901 <= int(c[9:12]) <= 999 for c in over)
    # names keep counting through the sub-prefixes: 第1网格 … 第n网格, no repeats
    assert sorted(out["name"]) == sorted(f"J第{i}网格" for i in range(1, n + 1))


def test_overflow_codes_are_stable_and_never_reused():
    rng = np.random.default_rng(7)
    g = boxes(1500)
    first = assign_codes(g, prefix=DEFAULT_PREFIX)
    prev = g.assign(code=first["code"].to_numpy())
    again = assign_codes(g, previous=prev, prefix=DEFAULT_PREFIX, carry="unchanged")
    assert (again["code"].to_numpy() == first["code"].to_numpy()).all() and again["carried"].all()
    # retire 40 random grids (some in the overflow range), add 60 new ones elsewhere
    drop = rng.choice(1500, 40, replace=False)
    keep = np.setdiff1d(np.arange(1500), drop)
    new = gpd.GeoDataFrame(gpd.pd.concat([g.iloc[keep], boxes(60, shift=10_000.0)], ignore_index=True), crs=CRS)
    third = assign_codes(new, previous=prev, prefix=DEFAULT_PREFIX, carry="unchanged")
    assert (third["code"].to_numpy()[: keep.size] == first["code"].to_numpy()[keep]).all()
    fresh = set(third["code"].to_numpy()[keep.size:])
    assert len(fresh) == 60 and not fresh & set(first["code"])  # retired codes are not handed out again


def test_capacity_check_names_prefix_estimate_and_fix():
    v = np.full(2000, 600.0)  # 1.2 M people: about 800 grids of 1,000-2,000 — fine
    assert check_code_capacity(v, prefix="420103001001") == {"420103001001": 800}
    with pytest.raises(GridCodeCapacityError, match=r"420103001001.*999.*communities"):
        check_code_capacity(v, min_pop=500, max_pop=800, prefix="420103001001")
    # a street-level prefix numbers the overflow in sub-prefixes: no error
    assert check_code_capacity(v, min_pop=500, max_pop=800, prefix="420103001000")["420103001000"] > 999
    # per community: each numbers its own grids
    comm = np.where(np.arange(2000) < 1000, "420103001001", "420103001002")
    est = check_code_capacity(v, community=comm, min_pop=500, max_pop=800, prefix="420103001001")
    assert set(est) == {"420103001001", "420103001002"} and max(est.values()) <= 999


def test_partition_fails_before_the_solve(monkeypatch):
    """> 999 grids under a community-level prefix: the error comes before any region is built."""
    def no_solve(self):
        raise AssertionError("the solve ran")

    monkeypatch.setattr(RegionBuilder, "solve", no_solve)
    atoms = boxes(1200)
    with pytest.raises(GridCodeCapacityError, match="420103001001"):
        partition(population=atoms, min_pop=8, max_pop=12, prefix="420103001001")


def test_partition_numbers_more_than_999_grids_in_overflow_sub_prefixes():
    atoms = boxes(1100, cols=40)
    plan = partition(population=atoms, min_pop=10, max_pop=10, prefix="420103001000")
    g = plan.grids
    assert len(g) == 1100 and g["code"].is_unique
    assert (g["code"].str.len() == 15).all()
    assert (g["code"].str[:12] == "420103001000").sum() == 999
    assert (g["code"].str[:12] == "420103001901").sum() == 101
