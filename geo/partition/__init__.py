"""Grid division (网格化管理): divide a jurisdiction into grids of 1000–2000 residents.

Public interface::

    from geo.partition import partition
    plan = partition(population=blocks_gdf, min_pop=1000, max_pop=2000)
    plan.grids      # GeoDataFrame: code, name, kind, level, people, households, community, flags, geometry
    plan.report     # verify(): counts, range, buildings, pieces from the final polygons (dict)
    plan.atoms      # atoms with the grid code of each

Modules: :mod:`.plan` (the pipeline), :mod:`.inputs` (input checks, street
classes), :mod:`.atoms` (blocks -> pieces with population; street blocks,
population and splitting in :mod:`.blocks`, :mod:`.population`, :mod:`.split`),
:mod:`.adjacency` (atom graph), :mod:`.regions` (the regionalization engine),
:mod:`.grids` (dissolve, codes via :mod:`.codes`), :mod:`.verify` (the
independent check that is the quality report; measures in :mod:`.quality`),
:mod:`.redraw` (stable re-draw).
"""

from __future__ import annotations

from .adjacency import Adjacency, build_adjacency
from .codes import assign_codes
from .inputs import VEHICLE_CLASSES, PartitionInputError
from .plan import Plan, atoms_from_polygons, partition, split_polygon_by_area
from .quality import quality_report, residents_moved
from .verify import verify
from .redraw import RedrawResult, redraw
from .regions import RegionBuilder

__all__ = [
    "Adjacency",
    "PartitionInputError",
    "Plan",
    "RedrawResult",
    "RegionBuilder",
    "VEHICLE_CLASSES",
    "assign_codes",
    "atoms_from_polygons",
    "build_adjacency",
    "partition",
    "quality_report",
    "redraw",
    "residents_moved",
    "split_polygon_by_area",
    "verify",
]
