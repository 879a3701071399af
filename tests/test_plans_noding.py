"""Plans are stored with shared vertices on common edges (no T-junctions), so GEOS and PostGIS agree."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import box

from geo.db.plans import node_shared_edges


def _has_vertex(poly, xy) -> bool:
    return any(np.allclose(c, xy) for c in shapely.get_coordinates(poly))


def test_t_junction_vertex_is_inserted_into_the_neighbour():
    left = box(0, 0, 1, 1)  # its right edge runs from (1, 0) to (1, 1): no vertex at (1, 0.5)
    low, high = box(1, 0, 2, 0.5), box(1, 0.5, 2, 1)  # the two right neighbours meet at (1, 0.5)
    far = box(5, 5, 6, 6)
    out = node_shared_edges(np.array([left, low, high, far], dtype=object))
    assert not _has_vertex(left, (1, 0.5)) and _has_vertex(out[0], (1, 0.5))
    assert all(o.area == g.area for o, g in zip(out, (left, low, high, far)))  # shapes unchanged
    assert out[3].equals_exact(far, 0)  # a grid without neighbours is left alone
    # the point at the junction is now a vertex of all three: covered by each, whatever the rounding
    assert all(shapely.covers(g, shapely.Point(1, 0.5)) for g in out[:3])


def test_grids_already_noded_stay_the_same():
    grid = np.array([box(x, y, x + 1, y + 1) for x in range(3) for y in range(3)], dtype=object)
    out = node_shared_edges(grid)
    assert all(shapely.get_num_coordinates(o) == shapely.get_num_coordinates(g) for o, g in zip(out, grid))
