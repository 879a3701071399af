"""The single-point lookup (cell table + per-cell candidates) gives exactly the vectorised exact answer
(STRtree + covers, smallest code on shared edges), on irregular grids with shared edges and vertices."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geo.api.services.lookup_index import GridIndex, GridInfo


def voronoi_index(seed: int, n: int = 300) -> GridIndex:
    rng = np.random.default_rng(seed)
    pts = shapely.multipoints(rng.uniform(0, 1, (n, 2)) * [0.3, 0.2] + [114.1, 30.4])
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=shapely.box(114.0, 30.3, 114.5, 30.7)))
    frame = shapely.box(114.12, 30.42, 114.38, 30.58)
    geoms = np.array([g for g in shapely.intersection(cells, frame) if not g.is_empty], dtype=object)
    codes = np.array([f"4299010010{i:05d}" for i in rng.permutation(len(geoms))], dtype=object)  # codes ≠ order
    info = [GridInfo(c, c, "standard", 1, 1500, 1, 1, "429901001000", None, None, None) for c in codes]
    return GridIndex(codes=codes, geoms=geoms, info=info, plan_ids=(1,))


@pytest.mark.parametrize("seed", [1, 7, 2026])
def test_single_lookup_equals_exact_rule(seed):
    idx = voronoi_index(seed)
    rng = np.random.default_rng(seed + 100)
    x = rng.uniform(114.10, 114.40, 20_000)
    y = rng.uniform(30.40, 30.60, 20_000)
    v = shapely.get_coordinates(idx.geoms)  # grid vertices: shared by 2-3 grids
    pick = v[rng.integers(0, len(v), 3_000)]
    seg = shapely.get_coordinates(shapely.segmentize(shapely.boundary(idx.geoms), 0.0007))  # points on edges
    pick2 = seg[rng.integers(0, len(seg), 3_000)]
    x = np.concatenate([x, pick[:, 0], pick2[:, 0]])
    y = np.concatenate([y, pick[:, 1], pick2[:, 1]])
    exact = idx._exact(x, y)
    single = np.array([idx.lookup(a, b) for a, b in zip(x, y)])
    assert (single == exact).all(), np.flatnonzero(single != exact)[:10]
    assert (idx.lookup_many(x, y) == exact).all()
    assert (exact == -1).any() and (exact >= 0).sum() > 15_000  # outside points and shared edges were tested


def test_cells_with_holes_and_islands_are_exact():
    """A grid with a hole holding another grid, and an island grid smaller than a cell: the owner of each
    region of untouched cells is right, and only cells a boundary really touches are tested one by one."""
    outer = shapely.Polygon([(114.0, 30.0), (114.2, 30.0), (114.2, 30.2), (114.0, 30.2)],
                            holes=[[(114.05, 30.05), (114.15, 30.05), (114.15, 30.15), (114.05, 30.15)]])
    inner = shapely.box(114.05, 30.05, 114.15, 30.15)
    island = shapely.box(114.3, 30.1, 114.30001, 30.10001)
    codes = np.array(["2", "1", "3"], dtype=object)
    geoms = np.array([outer, inner, island], dtype=object)
    info = [GridInfo(c, c, "standard", 1, 1500, 1, 1, "429901001000", None, None, None) for c in codes]
    idx = GridIndex(codes=codes, geoms=geoms, info=info, plan_ids=(1,))
    rng = np.random.default_rng(3)
    x, y = rng.uniform(113.99, 114.31, 50_000), rng.uniform(29.99, 30.21, 50_000)
    x = np.concatenate([x, [114.300005, 114.05, 114.1]])
    y = np.concatenate([y, [30.100005, 30.1, 30.05]])
    exact = idx._exact(x, y)
    assert (np.array([idx.lookup(a, b) for a, b in zip(x, y)]) == exact).all()
    assert set(exact) == {-1, 0, 1, 2}
    x0, y0, inv, nx, ny, table = idx.cells[:6]
    jj, ii = np.nonzero(table <= -2)
    size = 1 / inv
    boxes = shapely.box(x0 + ii * size, y0 + jj * size, x0 + (ii + 1) * size, y0 + (jj + 1) * size)
    touched = shapely.intersects(shapely.union_all(shapely.boundary(geoms)), boxes)
    assert touched.all()  # no cell is tested point by point without a reason
