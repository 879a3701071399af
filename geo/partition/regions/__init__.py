"""Contiguous, compact, population-balanced regions from atoms.

:class:`RegionBuilder` groups atoms (street blocks, census blocks, cells) into
grids of ``min_pop``–``max_pop`` residents. Each grid is one contiguous piece
on the adjacency graph (see :mod:`geo.partition.adjacency`), compact, close to
the target size, and the grids cover every atom exactly once.

Algorithm (chosen by measurement, see ``benchmarks/partition_peers.py``)
-------------------------------------------------------------------------
1. **Constraints first.** Every ``special`` id is its own exclusive region and
   every ``building_split`` atom its own region. The remaining atoms are cut
   into independent *components*: connected pieces of the adjacency graph
   that stay inside one ``community``. A component below ``min_pop`` becomes
   one flagged region; an uninhabited component is absorbed by the
   neighbouring region of the same community it shares most boundary with
   (else it is a flagged region of its own).
2. **Initial partition: recursive balanced bisection.** A component that must
   hold ``k = round(pop / target)`` regions is cut into parts holding
   ``k//2`` and ``k - k//2`` regions' worth of population. Atoms are ordered
   along 8 directions (every 22.5°); every split position whose population
   lies within ``bisect_tol * target`` of the ideal is scored with
   cumulative sums (population, area, perimeter and cut length of both sides
   for all positions of all orders at once) and the shortest cut wins; the
   last level (two regions) maximises the objective below directly.
3. **Improvement**, alternating until nothing improves:

   * *atom moves*: a boundary atom moves to a neighbouring region when that
     lowers ``sum_r(-PP_r + w * ((p_r - T) / T)**2)`` plus a large penalty
     outside ``[min_pop, max_pop]``, where ``PP_r = 4 pi A_r / P_r**2``.
     With ``off_street`` the perimeter counts every metre of boundary that
     cuts through a street block ``1 + off_street_weight`` times, so grids
     meet along streets wherever the balance allows.
     Area, population and perimeter of a region are updated incrementally
     (``P' = P - perim_a + 2 * shared(a, r)``), so a move costs O(degree).
     The donor region must stay connected (BFS inside the region from one
     of the atom's neighbours, stopped as soon as all are reached).
   * *pair re-cuts* (large neighbourhood): the union of two adjacent regions
     is re-cut by the best balanced straight cut (same cumulative-sum
     scoring, exact objective), accepted when the objective drops and both
     sides are connected. Only pairs touching a region changed in the last
     round are re-examined.

   Measured on Denver (10,149 census blocks): single-atom moves alone stall
   at mean PP 0.60 (from 0.53 after bisection); with pair re-cuts the mean
   PP reaches 0.66 with population CV 0.13. Simulated annealing over atom
   moves added < 0.002 PP per grid and was dropped. Seeding by population
   weighted k-means++ with capacitated multi-source growth and Lloyd
   re-centring, followed by the same improvement, gave 95.6 % of grids in
   range, CV 0.28 and PP 0.63 (bisection: 99.6 % before repair, CV 0.13,
   PP 0.66), so bisection is the initialisation.
4. **Range repair.** Regions still outside the range are merged with a
   neighbour (too small) or split (too large); failing that, the region is
   re-divided together with one or two neighbours, then with whole rings of
   neighbours up to three away — only areas whose total some number of
   in-range regions can hold. Each area is re-divided by bisection, then by
   exact dynamic programming over random spanning trees
   (:mod:`.treecut`: a tree is divided so that *every* part is in range
   whenever that tree allows it), every other tree drawn along the current
   regions so that the cuts can shift from region to region (an ejection
   chain single moves cannot make); the result is improved with everything
   else frozen and kept only when all its regions are in range. The work of
   a re-solve is proportional to its area (local edges, local sums).
   Regions that cannot be brought into range are flagged ``"infeasible"``
   (on Denver at 1,000–1,200 these are areas of a few coarse blocks of
   600–900 people for which no tree of up to three rings can be divided:
   the pipeline then cuts their blocks, see
   :func:`geo.partition.plan.refine_infeasible`). A region enclosed by a
   single other region is re-cut with it; if that is impossible (one block
   with a hole holding other blocks) it is flagged.
5. **Warm start** (``initial_labels``, used by :mod:`geo.partition.redraw`):
   the previous grids are kept and only out-of-range ones are repaired,
   each moved resident costing ``move_cost / target``.

All choices are deterministic for a given ``seed`` (it only shuffles the
order in which atoms and pairs are visited).

Results are plain attributes in the scikit-learn / spopt style: ``labels_``,
``n_regions_``, ``region_pop_``, ``region_kind_``, ``region_flags_``,
``region_special_``, ``region_community_``, ``timings_``.

Modules (one concern each): :mod:`.builder` (:class:`RegionBuilder`: constraints, components, stages),
:mod:`.state` (:class:`RegionState`: labels and incremental sums), :mod:`.grow` (initial partition by
bisection), :mod:`.search` (atom moves, pair re-cuts), :mod:`.repair` (contiguity, range repair,
enclosures, warm starts), :mod:`.treecut` (exact range-feasible cuts of a spanning tree),
:mod:`.common` (flags, region metadata, helpers).
"""

from __future__ import annotations

from .builder import RegionBuilder
from .common import (EXEMPT_FLAGS, FLAG_BUILDING, FLAG_COMMUNITY_BELOW_MIN, FLAG_ENCLOSED, FLAG_EXCLUSIVE,
                     FLAG_INFEASIBLE, FLAG_ISLAND_BELOW_MIN, FLAG_PART_BELOW_MIN, FLAG_UNINHABITED, RegionMeta,
                     region_count)
from .state import RegionState

__all__ = [
    "RegionBuilder",
    "RegionState",
    "RegionMeta",
    "region_count",
    "FLAG_EXCLUSIVE",
    "FLAG_BUILDING",
    "FLAG_COMMUNITY_BELOW_MIN",
    "FLAG_ISLAND_BELOW_MIN",
    "FLAG_PART_BELOW_MIN",
    "FLAG_UNINHABITED",
    "FLAG_INFEASIBLE",
    "FLAG_ENCLOSED",
    "EXEMPT_FLAGS",
]
