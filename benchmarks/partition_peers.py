"""Peer benchmark of the regionalization engine (``geo.partition``).

Denver County 2020 census blocks (10,149 blocks, 715,522 people) as units,
no streets, grids of 1,000–2,000 people, all methods in one table:

* ``geo.partition`` — this engine, end to end (atoms, split of the two blocks
  above 2,000, adjacency, regions, dissolve, codes, report), and its
  ``RegionBuilder`` alone on the peers' atoms and graph (like for like);
* spopt ``MaxPHeuristic`` (threshold 1,000; one construction and one
  annealing round, as the defaults did not finish in 10 min);
* pymetis ``part_graph`` (k = round(total / 1500), population vertex
  weights, shared-border-length edge weights, contiguity on, ufactor 333);
* greedy region growing (baseline, written here);
* gerrychain ``recursive_tree_part`` (target 1,500, epsilon 0.33).

Peers get the same atoms as the engine (the blocks with the two blocks above
2,000 split in pieces, see ``geo.partition.plan``) and the same adjacency
(shared border > 1 m, gaps < 20 m bridged). Each runs in a subprocess with a
time limit; their time covers building their graph, solving and dissolving.
Every grid set is measured by ``geo.partition.quality.quality_report``.

Further rows (this engine only): Porto Alegre H3 cells (resolution 9) as
atoms, and with OSM streets (street blocks) when ``geo.partition.blocks``
exists; the synthetic demo district when ``geo.demo.synthetic`` exists.

Usage::

    python benchmarks/partition_peers.py [--limit 120] [--only engine,greedy,pymetis]
"""

from __future__ import annotations

import argparse
import heapq
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import dissolve_labels, metrics, print_table, run_worker, shared, write_result  # noqa: E402

MIN_POP, MAX_POP, TARGET = 1000, 2000, 1500
DENVER = ("denver", "denver_blocks_2020.parquet")
METHODS = ["engine", "engine_core", "spopt", "pymetis", "greedy", "gerrychain"]
EXTRA = ["poa_h3", "poa_streets", "synthetic"]


# =========================================================================== data


def load_denver_blocks():
    import geopandas as gpd

    d = gpd.read_parquet(shared(*DENVER))
    return d.rename(columns={"TOTPOP20": "people"})[["GEOID20", "people", "geometry"]]


def denver_atoms():
    """Denver atoms as the engine makes them (metric CRS, oversized blocks split)."""
    from geo.partition.plan import _split, atoms_from_polygons

    atoms = atoms_from_polygons(load_denver_blocks())
    atoms, _, _ = _split(atoms, None, MIN_POP, MAX_POP, TARGET, None)
    return atoms.reset_index(drop=True)


def poa_hexagons():
    import geopandas as gpd
    import h3
    import pandas as pd
    import shapely

    df = pd.read_csv(shared("porto_alegre", "poa_hexgrid.csv"))
    polys = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in df["id"]]
    return gpd.GeoDataFrame({"id": df["id"], "people": df["population"].fillna(0).astype(int)}, geometry=polys,
                            crs="EPSG:4326")


def poa_streets():
    import geopandas as gpd

    from geo.partition.blocks import NON_BLOCK_HIGHWAYS

    lines = gpd.read_file(shared("porto_alegre", "poa_osm.pbf"), layer="lines", engine="pyogrio")
    lines = lines[lines["highway"].notna() & ~lines["highway"].isin(NON_BLOCK_HIGHWAYS)]
    return lines[["highway", "geometry"]]


def _graph(atoms):
    from geo.partition.adjacency import build_adjacency

    return build_adjacency(atoms, gap_tol=20.0)


# =========================================================================== methods (worker side)


def run_engine(dataset: str):
    """This engine end to end; returns (grids, note)."""
    from geo.partition import partition

    if dataset == "denver":
        plan = partition(population=load_denver_blocks())
        return plan.grids, ""
    if dataset == "poa_h3":
        plan = partition(population=poa_hexagons())
        r = plan.report["range"]
        return plan.grids, (f"{plan.report['atoms']['n_atoms']} atoms; out of range: "
                            + (", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items())) or "none"))
    if dataset == "poa_streets":
        hexes = poa_hexagons()
        import shapely

        jur = shapely.union_all(np.asarray(hexes.geometry.values))
        plan = partition(jurisdiction=jur, population=hexes, streets=poa_streets())
        s = plan.report.get("streets", {})
        r = plan.report["range"]
        return plan.grids, (f"{plan.report['atoms']['n_atoms']} atoms; boundary on streets "
                            f"{s.get('boundary_on_streets_share', float('nan')):.1%}; out of range: "
                            + (", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items())) or "none"))
    if dataset == "synthetic":
        from geo.demo.synthetic import generate_district

        d = generate_district(seed=42, scale=1.0)
        com = d.communities.copy()
        com["rural"] = ~com["urban"].astype(bool)
        # every street, estate roads included (they end inside their block: cut lines, not block edges)
        plan = partition(jurisdiction=d.boundary, population=d.population, streets=d.streets, communities=com,
                         special=d.special_areas)
        r = plan.report["range"]
        s = plan.report["streets"]
        off = ", ".join(f"{k} {v / 1000:.1f} km" for k, v in s["off_street_m_by_cause"].items() if v > 0)
        return plan.grids, (f"{plan.report['atoms']['n_atoms']} atoms; out of range: "
                            + ", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items()))
                            + f"; boundary on streets {s['boundary_on_streets_share']:.1%} (off: {off or 'none'})"
                            + f"; buildings split {plan.report['buildings']['split_between_grids']}")
    raise ValueError(dataset)


def greedy_labels(atoms, adj, min_pop=MIN_POP, max_pop=MAX_POP):
    """Baseline: grow regions west to east until they reach min_pop.

    A region starts at the westernmost unassigned atom and takes the
    unassigned neighbour closest to its seed while it is below *min_pop*
    (skipping atoms that would push it above *max_pop*). Regions left below
    *min_pop* are merged into the smallest neighbouring region.
    """
    from geo.partition.adjacency import atom_geometry_arrays

    g = atom_geometry_arrays(atoms)
    x, y = g["x"], g["y"]
    pop = atoms["people"].to_numpy(dtype=float)
    n = len(atoms)
    nb = adj.neighbour_lists()
    lab = np.full(n, -1, dtype=np.int64)
    order = np.argsort(x, kind="stable")
    rpop = []
    k = 0
    for seed in order:
        if lab[seed] >= 0:
            continue
        lab[seed] = k
        p = pop[seed]
        heap = []
        for b, _ in nb[seed]:
            if lab[b] < 0:
                heapq.heappush(heap, ((x[b] - x[seed]) ** 2 + (y[b] - y[seed]) ** 2, b))
        while p < min_pop and heap:
            _, a = heapq.heappop(heap)
            if lab[a] >= 0 or p + pop[a] > max_pop:
                continue
            lab[a] = k
            p += pop[a]
            for b, _ in nb[a]:
                if lab[b] < 0:
                    heapq.heappush(heap, ((x[b] - x[seed]) ** 2 + (y[b] - y[seed]) ** 2, b))
        rpop.append(p)
        k += 1
    rpop = np.array(rpop)
    # merge regions below min into their smallest neighbour
    for r in np.argsort(rpop):
        if rpop[r] >= min_pop or rpop[r] == 0 and not (lab == r).any():
            continue
        members = np.flatnonzero(lab == r)
        nbrs = {int(lab[b]) for a in members for b, _ in nb[a]} - {int(r)}
        if not nbrs:
            continue
        s = min(nbrs, key=lambda s: (rpop[s], s))
        lab[members] = s
        rpop[s] += rpop[r]
        rpop[r] = 0
    return lab


def run_peer(method: str, subset: float = 1.0):
    """A peer on Denver atoms; returns (grids, seconds, note)."""
    atoms = denver_atoms()
    note = ""
    if subset < 1.0:
        atoms, note = _subset(atoms, subset)
    t0 = time.perf_counter()
    adj = _graph(atoms)
    pop = atoms["people"].to_numpy()
    k = max(1, int(round(pop.sum() / TARGET)))
    if method == "engine_core":
        from geo.partition.regions import RegionBuilder

        lab = RegionBuilder(atoms, adj, min_pop=MIN_POP, max_pop=MAX_POP, seed=0).solve().labels_
    elif method == "greedy":
        lab = greedy_labels(atoms, adj)
    elif method == "pymetis":
        import pymetis

        csr = adj.csr()
        ew = np.maximum(1, np.rint(np.asarray(csr.data) - 1e-9)).astype(np.int64)
        opts = pymetis.Options(ufactor=333, contig=1, seed=0)
        _, parts = pymetis.part_graph(k, xadj=csr.indptr.tolist(), adjncy=csr.indices.tolist(),
                                      vweights=pop.astype(np.int64).tolist(), eweights=ew.tolist(), options=opts)
        lab = np.asarray(parts)
    elif method == "spopt":
        import libpysal
        from spopt.region import MaxPHeuristic

        nbrs = {i: [] for i in range(len(atoms))}
        for a, b in zip(adj.i.tolist(), adj.j.tolist()):
            nbrs[a].append(b)
            nbrs[b].append(a)
        w = libpysal.weights.W(nbrs, silence_warnings=True)
        gdf = atoms.copy()
        c = gdf.geometry.centroid
        gdf["cx"], gdf["cy"] = c.x, c.y
        model = MaxPHeuristic(gdf, w, ["cx", "cy"], "people", MIN_POP, top_n=2, max_iterations_construction=1,
                              max_iterations_sa=1)
        model.solve()
        lab = np.asarray(model.labels_)
        note = (note + "; " if note else "") + "1 construction + 1 SA round"
    elif method == "gerrychain":
        import random

        import networkx as nx
        from gerrychain import Graph
        from gerrychain.tree import recursive_tree_part

        G = nx.Graph()
        G.add_nodes_from((i, {"pop": int(p)}) for i, p in enumerate(pop))
        G.add_edges_from(zip(adj.i.tolist(), adj.j.tolist()))
        graph = Graph.from_networkx(G)
        random.seed(0)  # gerrychain draws its spanning trees with the random module
        assign = recursive_tree_part(graph, range(k), TARGET, "pop", 0.33, node_repeats=1)
        lab = np.array([assign[i] for i in range(len(atoms))])
    else:
        raise ValueError(method)
    grids = dissolve_labels(atoms, lab)
    return grids, time.perf_counter() - t0, note


def _subset(atoms, frac: float):
    """A connected part of Denver around its most central atom holding *frac* of the atoms."""
    from scipy.sparse.csgraph import breadth_first_order

    adj = _graph(atoms)
    c = atoms.geometry.centroid
    cx, cy = c.x.to_numpy(), c.y.to_numpy()
    start = int(np.argmin((cx - cx.mean()) ** 2 + (cy - cy.mean()) ** 2))
    order = breadth_first_order(adj.csr(), start, directed=False, return_predecessors=False)
    keep = np.sort(order[: int(frac * len(atoms))])
    sub = atoms.iloc[keep].reset_index(drop=True)
    return sub, f"subset: {len(sub):,} of {len(atoms):,} atoms, {int(sub['people'].sum()):,} people"


def worker(args) -> None:
    if args.method == "engine":
        t0 = time.perf_counter()
        grids, note = run_engine(args.dataset)
        seconds = time.perf_counter() - t0
    else:
        grids, seconds, note = run_peer(args.method, args.subset)
    write_result(args.out, grids[["people", "geometry"]].copy(), seconds, note)


# =========================================================================== driver


def jurisdiction_for(dataset: str, subset_note: str = ""):
    """Area the grids must cover (None: the union of the grids)."""
    import geopandas as gpd
    import shapely

    if dataset == "denver" and not subset_note.startswith("subset"):
        d = load_denver_blocks()
        return gpd.GeoSeries([shapely.union_all(np.asarray(d.geometry.values))], crs=d.crs)
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=float, default=120.0, help="time limit per method run (s)")
    ap.add_argument("--only", default="", help="comma-separated names: " + ",".join(METHODS + EXTRA))
    ap.add_argument("--json", default="", help="also write the rows to this JSON file")
    ap.add_argument("--subsets", default="0.5,0.25,0.1",
                    help="fractions of Denver tried (largest first) when a peer fails or times out on the county; "
                         "'' to skip")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", default="", help=argparse.SUPPRESS)
    ap.add_argument("--dataset", default="denver", help=argparse.SUPPRESS)
    ap.add_argument("--subset", type=float, default=1.0, help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    if not shared(*DENVER).exists():
        print(f"Denver data not found at {shared(*DENVER)}; nothing to benchmark.")
        return 1
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(METHODS) - set(EXTRA)
    if unknown:
        ap.error(f"unknown names: {', '.join(sorted(unknown))}")
    todo = [m for m in METHODS if not only or m in only]
    subsets = [float(x) for x in args.subsets.split(",") if x.strip()]
    extra = [e for e in EXTRA if not only or e in only]
    script = Path(__file__).resolve()

    rows = []
    for m in todo:
        label = "geo.partition (this engine)" if m == "engine" else {
            "engine_core": "geo.partition RegionBuilder only",
            "spopt": "spopt MaxPHeuristic", "pymetis": "pymetis part_graph", "greedy": "greedy region growing",
            "gerrychain": "gerrychain recursive_tree_part"}[m]
        print(f"running {label} on Denver (limit {args.limit:g} s)…", flush=True)
        run = run_worker(script, ["--method", m, "--dataset", "denver"], args.limit, label, "Denver blocks")
        if run.status != "ok" and m not in ("engine", "engine_core"):
            # report the full run as it went, then the largest subset that works, labelled as such
            full = _row(run, "denver")
            rows.append(full)
            tried = []
            for frac in subsets:
                print(f"  {label}: {run.note}; trying a {frac:.0%} subset…", flush=True)
                sub = run_worker(script, ["--method", m, "--dataset", "denver", "--subset", str(frac)], args.limit,
                                 label, f"Denver {frac:.0%} subset")
                if sub.status == "ok":
                    run = sub
                    break
                tried.append(f"{frac:.0%} subset: {sub.note}")
            else:
                if tried:
                    full["note"] += "; " + "; ".join(tried)
                continue
            if tried:
                run.note = "; ".join(tried) + "; " + run.note
        rows.append(_row(run, "denver"))

    datasets = {
        "poa_h3": ("Porto Alegre H3 r9", shared("porto_alegre", "poa_hexgrid.csv").exists()),
        "poa_streets": ("Porto Alegre H3 + OSM streets",
                        shared("porto_alegre", "poa_osm.pbf").exists()
                        and importlib.util.find_spec("geo.partition.blocks") is not None),
        "synthetic": ("synthetic district (300k)", importlib.util.find_spec("geo.demo.synthetic") is not None),
    }
    for e in extra:
        name, ok = datasets[e]
        if not ok:
            print(f"skipping {name}: data or module missing")
            continue
        print(f"running geo.partition on {name}…", flush=True)
        run = run_worker(script, ["--method", "engine", "--dataset", e], args.limit, "geo.partition (this engine)",
                         name)
        rows.append(_row(run, e))

    greedy = next((r for r in rows if r["method"].startswith("greedy") and r.get("seconds")), None)
    for r in rows:
        if greedy and r.get("seconds") and r["dataset"] == greedy["dataset"]:
            r["t_ratio"] = r["seconds"] / greedy["seconds"]
            r["pp_ratio"] = r["pp"] / greedy["pp"] if r.get("pp") else None
            r["inr_ratio"] = r["in_range"] / greedy["in_range"] if r.get("in_range") is not None else None
    columns = [
        ("dataset", "", "dataset"), ("method", "", "method"), ("seconds", "f2", "wall s"),
        ("grids", "int", "grids"), ("in_range", "pct", "in [1000,2000]"), ("min", "int", "min"),
        ("median", "int", "median"), ("max", "int", "max"), ("noncontig", "int", "non-contig"),
        ("pp", "f3", "PP mean"), ("coverage", "pct2", "coverage"), ("cv", "f3", "pop CV"),
        ("t_ratio", "x", "time/greedy"), ("pp_ratio", "x", "PP/greedy"), ("note", "", "note"),
    ]
    notes = [
        "wall s: peers and 'RegionBuilder only' = graph + solve + dissolve on the same atoms, in a subprocess; "
        "engine = partition() end to end (atoms, split, adjacency, solve, dissolve, codes, report).",
        "non-contig: grids in more than one piece after bridging gaps < 20 m. coverage: union of grids / "
        "jurisdiction (Denver: union of the blocks).",
    ]
    print_table(f"Grid division peers — {MIN_POP:,}–{MAX_POP:,} people per grid", columns, rows, notes)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=float))
    return 0


def _row(run, dataset_key: str) -> dict:
    row = {"dataset": run.dataset, "method": run.name, "status": run.status, "seconds": run.seconds,
           "note": run.note}
    if run.status != "ok":
        row["seconds"] = None
        row["note"] = run.note if run.status == "error" else f"did not finish: {run.note}"
        return row
    row.update(metrics(run.grids, jurisdiction_for(dataset_key, run.note), MIN_POP, MAX_POP))
    return row


if __name__ == "__main__":
    sys.exit(main())
