"""Stable re-draw (网格动态调整): repair a previous plan after population changes.

When population changes, most grids are still within ``[min_pop, max_pop]``
and should not move: residents know their grid worker, and codes are used in
case files. :func:`redraw` keeps every in-range grid and repairs only the
grids outside the range, together with their neighbours:

1. each atom is put in the previous grid that holds its representative point
   (or taken from its ``grid`` column when that names previous codes);
2. :class:`~geo.partition.regions.RegionBuilder` starts from these labels
   (``initial_labels``) and runs its *warm repair*: atom moves and pair
   re-cuts restricted to the out-of-range grids and their neighbours, each
   moved resident costing ``move_cost / target``, then merges / splits /
   local re-solves of what is still out of range;
3. codes of unchanged grids are carried; adjusted grids keep the code of the
   previous grid they clearly succeed (see :mod:`geo.partition.codes`).

The result reports residents whose grid changed and grids changed, and the
same figures for a from-scratch run on the same atoms, so the benefit of the
stable re-draw is visible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import geopandas as gpd
import numpy as np
import shapely

from .adjacency import Adjacency, build_adjacency
from .atoms import _ensure_contract
from .codes import DEFAULT_PREFIX
from .grids import build_grids
from .quality import residents_moved
from .regions import EXEMPT_FLAGS, RegionBuilder
from .verify import metric_crs

__all__ = ["redraw", "RedrawResult", "previous_labels"]


def previous_labels(atoms: gpd.GeoDataFrame, previous: gpd.GeoDataFrame) -> np.ndarray:
    """Row position in *previous* of the grid each atom belongs to (-1: none).

    Uses the atoms' ``grid`` column when every value is a code of
    *previous*; otherwise the previous grid containing the atom's
    representative point (:func:`shapely.point_on_surface`).

    Parameters
    ----------
    atoms : GeoDataFrame
        Atoms (any CRS).
    previous : GeoDataFrame
        Previous grids (any CRS), optionally with ``code``.

    Returns
    -------
    ndarray of int64
    """
    prev = previous.reset_index(drop=True)
    if "grid" in atoms.columns and "code" in prev.columns:
        pos = {str(c): k for k, c in enumerate(prev["code"].astype(str))}
        vals = atoms["grid"].astype(str).to_numpy()
        if all(v in pos for v in vals):
            return np.array([pos[v] for v in vals], dtype=np.int64)
    crs = atoms.crs
    pg = prev.to_crs(crs) if prev.crs is not None and crs is not None else prev
    pts = shapely.point_on_surface(np.asarray(atoms.geometry.values))
    ai, gi = shapely.STRtree(np.asarray(pg.geometry.values)).query(pts, predicate="within")
    out = np.full(len(atoms), -1, dtype=np.int64)
    order = np.lexsort((gi, ai))  # first (lowest) grid wins for points on shared edges
    ai, gi = ai[order], gi[order]
    first = np.ones(ai.size, dtype=bool)
    first[1:] = ai[1:] != ai[:-1]
    out[ai[first]] = gi[first]
    return out


@dataclass
class RedrawResult:
    """Outcome of :func:`redraw`.

    Attributes
    ----------
    grids : GeoDataFrame
        New grids (metric CRS of the atoms), codes carried.
    atoms : GeoDataFrame
        Atoms with their new ``grid`` code.
    labels : ndarray
        New region per atom (row in *grids* before sorting is not implied;
        use ``atoms["grid"]``).
    previous : ndarray
        Previous grid position of each atom.
    report : dict
        ``residents_moved``, ``moved_share``, ``grids_changed``,
        ``out_of_range_before`` (previous grids now outside the range),
        ``out_of_range_after``, ``repaired`` (their codes), and with
        ``compare_scratch`` the ``scratch_*`` figures and
        ``moved_vs_scratch`` (ratio of residents moved).
    """

    grids: gpd.GeoDataFrame
    atoms: gpd.GeoDataFrame
    labels: np.ndarray
    previous: np.ndarray
    report: dict = field(default_factory=dict)


def redraw(
    previous_grids: gpd.GeoDataFrame,
    atoms: gpd.GeoDataFrame,
    min_pop: float = 1000,
    max_pop: float = 2000,
    by: str = "people",
    seed: int = 0,
    *,
    adjacency: Adjacency | None = None,
    gap_tol: float = 20.0,
    target: float | None = None,
    move_cost: float = 4.0,
    compare_scratch: bool = True,
    communities: gpd.GeoDataFrame | None = None,
    prefix: str = DEFAULT_PREFIX,
    jurisdiction_name: str = "",
    progress: Callable[[str, float], None] | None = None,
) -> RedrawResult:
    """Re-draw grids after a population change, keeping in-range grids.

    Parameters
    ----------
    previous_grids : GeoDataFrame
        Previous plan's grids with ``code`` (any CRS).
    atoms : GeoDataFrame
        Atoms with the new population (atoms contract); projected to a
        metric CRS when needed.
    min_pop, max_pop, by, seed, target, gap_tol
        As for :func:`geo.partition.partition`.
    adjacency : Adjacency, optional
        Precomputed adjacency of *atoms*.
    move_cost : float
        Cost of moving ``target`` residents, in objective units.
    compare_scratch : bool
        Also solve from scratch and report its residents moved.
    communities : GeoDataFrame, optional
        ``code``/``name``/``rural`` of the communities, for names and kinds.
    prefix, jurisdiction_name : str
        Code prefix / name where no community is known.
    progress : callable(stage, fraction), optional

    Returns
    -------
    RedrawResult
    """
    t0 = time.perf_counter()
    crs = metric_crs(atoms)
    atoms = _ensure_contract(atoms.to_crs(crs))
    prev = previous_grids.reset_index(drop=True)
    if "code" not in prev.columns:
        raise ValueError("previous grids need a 'code' column")
    adj = adjacency if adjacency is not None else build_adjacency(atoms, gap_tol=gap_tol)
    init = previous_labels(atoms, prev)
    pop = atoms[by].to_numpy(dtype=float)

    # previous grids now out of range (standard ones only)
    kinds = prev["kind"].astype(str).to_numpy() if "kind" in prev.columns else np.full(len(prev), "standard")
    flags = prev["flags"].fillna("").astype(str).to_numpy() if "flags" in prev.columns else np.full(len(prev), "")
    ok = init >= 0
    gpop = np.bincount(init[ok], weights=pop[ok], minlength=len(prev))
    exempt = [bool({x.strip() for x in f.split(";")} & EXEMPT_FLAGS) for f in flags]
    out_before = [str(prev["code"].iat[k]) for k in range(len(prev))
                  if kinds[k] != "exclusive" and not exempt[k] and not (min_pop <= gpop[k] <= max_pop)]

    rb = RegionBuilder(atoms, adj, min_pop=min_pop, max_pop=max_pop, by=by, target=target, seed=seed,
                       initial_labels=init, move_cost=move_cost, progress=progress).solve()
    t_redraw = time.perf_counter() - t0
    grids = build_grids(atoms, rb.labels_, rb.region_kind_, rb.region_flags_, communities, prev, prefix,
                        jurisdiction_name)
    atoms = atoms.copy()
    atoms["grid"] = grids["code"].to_numpy()[rb.labels_]
    grids = grids.drop(columns="_label").sort_values("code", kind="stable").reset_index(drop=True)

    moved = residents_moved(pop, init, rb.labels_)
    checked = [k == "standard" and not (set(f) & EXEMPT_FLAGS) for k, f in zip(rb.region_kind_, rb.region_flags_)]
    rp = rb.region_pop_
    out_after = int(sum(1 for r, c in enumerate(checked) if c and not (min_pop <= rp[r] <= max_pop)))
    report = {
        "residents_moved": moved["moved"],
        "moved_share": moved["share"],
        "grids_changed": moved["grids_changed"],
        "out_of_range_before": len(out_before),
        "repaired": out_before,
        "out_of_range_after": out_after,
        "n_grids": int(len(grids)),
        "runtime_s": t_redraw,
    }
    if compare_scratch:
        t1 = time.perf_counter()
        sc = RegionBuilder(atoms, adj, min_pop=min_pop, max_pop=max_pop, by=by, target=target, seed=seed).solve()
        ms = residents_moved(pop, init, sc.labels_)
        report.update({
            "scratch_residents_moved": ms["moved"],
            "scratch_moved_share": ms["share"],
            "scratch_grids_changed": ms["grids_changed"],
            "scratch_runtime_s": time.perf_counter() - t1,
            "moved_vs_scratch": (moved["moved"] / ms["moved"]) if ms["moved"] > 0 else (0.0 if moved["moved"] == 0
                                                                                      else float("inf")),
        })
    return RedrawResult(grids=grids, atoms=atoms, labels=rb.labels_, previous=init, report=report)
