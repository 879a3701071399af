"""Grid division (网格化管理): divide a jurisdiction into grids of 1000–2000 residents.

Public interface::

    from geo.partition import partition
    plan = partition(population=blocks_gdf, min_pop=1000, max_pop=2000)
    plan.grids      # GeoDataFrame: code, name, kind, level, people, households, community, flags, geometry
    plan.report     # quality report (dict, JSON-serialisable)
    plan.atoms      # atoms with the grid code of each

Modules: :mod:`.adjacency` (atom graph), :mod:`.regions` (the regionalization
engine), :mod:`.quality` (report), :mod:`.codes` (15-digit codes and names),
:mod:`.redraw` (stable re-draw), :mod:`.plan` (the pipeline); street blocks,
population and splitting live in :mod:`.blocks`, :mod:`.population` and
:mod:`.split`.
"""

from __future__ import annotations

from .adjacency import Adjacency, build_adjacency
from .codes import assign_codes
from .plan import Plan, atoms_from_polygons, partition, split_polygon_by_area
from .quality import quality_report, residents_moved
from .redraw import RedrawResult, redraw
from .regions import RegionBuilder

__all__ = [
    "Adjacency",
    "Plan",
    "RedrawResult",
    "RegionBuilder",
    "assign_codes",
    "atoms_from_polygons",
    "build_adjacency",
    "partition",
    "quality_report",
    "redraw",
    "residents_moved",
    "split_polygon_by_area",
]
