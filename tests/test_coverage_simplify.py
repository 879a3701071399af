"""Grid outlines simplified as one coverage keep shared edges: no gaps, no overlaps (per-grid simplification
opens both — the failure this replaces)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geo.api.services.coverage import simplify_coverage


def staircase_coverage(seed: int, n_regions: int = 12, cells: int = 60):
    """Regions of a raster (nearest of random seeds): staircase borders with many vertices, exactly shared."""
    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, cells, (n_regions, 2))
    xs, ys = np.meshgrid(np.arange(cells) + 0.5, np.arange(cells) + 0.5)
    d = ((xs[..., None] - seeds[:, 0]) ** 2 + (ys[..., None] - seeds[:, 1]) ** 2)
    label = d.argmin(axis=2)
    step = 0.0005  # degrees per cell, like a city block raster
    polys = []
    for k in range(n_regions):
        boxes = [shapely.box(114 + i * step, 30 + j * step, 114 + (i + 1) * step, 30 + (j + 1) * step)
                 for j, i in zip(*np.nonzero(label == k))]
        if boxes:
            polys.append(shapely.union_all(boxes))
    return np.array(polys, dtype=object)


def gaps_and_overlaps(geoms) -> tuple[float, float]:
    """Area of overlaps between pieces and of holes inside the union that the input did not have."""
    total = shapely.union_all(geoms)
    overlap = sum(shapely.area(geoms)) - total.area
    hull = shapely.Polygon(shapely.get_exterior_ring(total)) if total.geom_type == "Polygon" else total
    gap = hull.area - total.area
    return gap, overlap


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_coverage_simplify_keeps_shared_edges(seed):
    geoms = staircase_coverage(seed)
    tol = 360 / (256 * 2 ** 10) / 2  # half a pixel at zoom 10 (a district on one screen)
    out = simplify_coverage(geoms, tol)
    assert shapely.get_num_coordinates(out).sum() < 0.75 * shapely.get_num_coordinates(geoms).sum()
    assert all(shapely.is_valid(out))
    gap, overlap = gaps_and_overlaps(out)
    assert gap < 1e-12 and abs(overlap) < 1e-12
    # neighbours still share a boundary line (not a sliver and not a point)
    tree = shapely.STRtree(geoms)
    pairs = [(i, j) for i, j in zip(*tree.query(geoms, predicate="touches")) if i < j
             and shapely.intersection(geoms[i], geoms[j]).length > 3 * 0.0005]
    assert pairs
    for i, j in pairs:
        assert shapely.intersection(out[i], out[j]).area < 1e-14
        assert shapely.intersection(out[i], out[j]).length > 0
    # the per-grid way opens gaps or overlaps on the same data (so this test can tell the two apart)
    naive = shapely.simplify(geoms, tol, preserve_topology=True)
    g2, o2 = gaps_and_overlaps(naive)
    assert g2 > 1e-10 or abs(o2) > 1e-10


def test_zero_tolerance_and_empty():
    geoms = staircase_coverage(5, 4, 20)
    assert simplify_coverage(geoms, 0) is geoms
    assert len(simplify_coverage(np.array([], dtype=object), 0.001)) == 0
