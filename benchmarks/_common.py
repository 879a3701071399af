"""Helpers shared by the benchmarks: data paths, timing, subprocess runs, metrics, tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import geopandas as gpd
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GEO_SHARED_DATA", REPO / ".." / "shared" / "data"))

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def shared(*parts: str) -> Path:
    """Path of a file under ../shared/data (may not exist)."""
    return SHARED.joinpath(*parts)


@contextmanager
def timer(out: dict, key: str = "seconds"):
    """Context manager storing the elapsed wall time (s) in ``out[key]``."""
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out[key] = time.perf_counter() - t0


@dataclass
class Run:
    """Outcome of one method run in a subprocess."""

    name: str
    dataset: str
    status: str  # "ok", "timeout", "error"
    seconds: float | None = None
    grids: gpd.GeoDataFrame | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def run_worker(script: Path, args: list[str], limit: float, name: str, dataset: str) -> Run:
    """Run ``python script --worker ... --out FILE`` with a time limit.

    The worker writes the grids (GeoParquet) to ``FILE`` and a JSON sidecar
    ``FILE.json`` with ``seconds`` and an optional ``note``.
    """
    with tempfile.TemporaryDirectory(prefix="geo_bench_") as tmp:
        out = Path(tmp) / "grids.parquet"
        cmd = [sys.executable, str(script), "--worker", *args, "--out", str(out)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            return Run(name, dataset, "timeout", seconds=time.perf_counter() - t0, note=f"> {limit:g} s limit")
        if proc.returncode != 0 or not out.exists():
            err = (proc.stderr or proc.stdout).strip().splitlines()
            return Run(name, dataset, "error", note=(err[-1] if err else f"exit {proc.returncode}")[:160])
        meta = json.loads(Path(str(out) + ".json").read_text())
        grids = gpd.read_parquet(out)
        return Run(name, dataset, "ok", seconds=meta.get("seconds"), grids=grids, note=meta.get("note", ""),
                   extra=meta.get("extra", {}))


def write_result(out: str | Path, grids: gpd.GeoDataFrame, seconds: float, note: str = "", extra: dict | None = None):
    """Worker side of :func:`run_worker`."""
    grids.to_parquet(out)
    Path(str(out) + ".json").write_text(json.dumps({"seconds": seconds, "note": note, "extra": extra or {}}))


def dissolve_labels(atoms: gpd.GeoDataFrame, labels: np.ndarray, by: str = "people") -> gpd.GeoDataFrame:
    """Grids (people, geometry) from atom labels; atoms with label < 0 are left out."""
    import shapely

    labels = np.asarray(labels)
    keep = labels >= 0
    lab = labels[keep]
    uniq, inv = np.unique(lab, return_inverse=True)
    geoms = np.asarray(atoms.geometry.values)[keep]
    pop = atoms[by].to_numpy(dtype=float)[keep]
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(uniq.size + 1))
    out = []
    for r in range(uniq.size):
        members = geoms[order[bounds[r]:bounds[r + 1]]]
        try:
            u = shapely.coverage_union_all(members)
            if not shapely.is_valid(u):
                u = shapely.union_all(members)
        except shapely.errors.GEOSException:
            u = shapely.union_all(members)
        out.append(u)
    return gpd.GeoDataFrame({"people": np.bincount(inv, weights=pop, minlength=uniq.size)}, geometry=out,
                            crs=atoms.crs)


def metrics(grids: gpd.GeoDataFrame, jurisdiction, min_pop: float, max_pop: float, gap_tol: float = 20.0) -> dict:
    """The benchmark columns, from :func:`geo.partition.quality.quality_report`."""
    from geo.partition.quality import quality_report

    rep = quality_report(grids, jurisdiction, min_pop, max_pop, gap_tol=gap_tol)
    p = rep["population"]
    return {
        "grids": rep["n_grids"],
        "in_range": rep["range"]["in_range_share"],
        "min": p["min"],
        "median": p["median"],
        "max": p["max"],
        "noncontig": rep["contiguity"]["noncontiguous_grids"],
        "pp": rep["compactness"]["polsby_popper_mean"],
        "coverage": rep["coverage"]["covered_share"],
        "overlap_m2": rep["coverage"]["overlap_m2"],
        "cv": p["cv"],
        "empty": p["empty_grids"],
        "out_unexplained": rep["range"]["out_of_range_unexplained"],
    }


def fmt(v: Any, kind: str = "") -> str:
    """Format a table cell."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "pct2":
        return f"{100 * v:.2f}%"
    if kind == "int":
        return f"{int(round(v)):,}"
    if kind == "f2":
        return f"{v:.2f}"
    if kind == "f3":
        return f"{v:.3f}"
    if kind == "x":
        return f"{v:.2f}×"
    return str(v)


def print_table(title: str, columns: list[tuple[str, str]], rows: Iterable[dict], notes: list[str] = ()) -> str:
    """Print a table with rich when available, else plain text. Returns the plain text."""
    rows = list(rows)
    cells = [[fmt(r.get(key), kind) for key, kind in [(c[0], c[1]) for c in columns]] for r in rows]
    headers = [c[2] if len(c) > 2 else c[0] for c in columns]
    widths = [max(len(h), *(len(row[i]) for row in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines += list(notes)
    text = "\n".join(lines)
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title, show_lines=False)
        for h in headers:
            t.add_column(h, overflow="fold")
        for row in cells:
            t.add_row(*row)
        console = Console(width=max(160, sum(widths) + 3 * len(widths)))
        console.print(t)
        for n in notes:
            console.print(n)
    except ImportError:  # pragma: no cover
        print(text)
    return text
