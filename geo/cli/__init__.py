"""The ``geo`` command line: thin Typer commands, one module per group.

``geo db …`` / ``geo doctor`` / ``geo summary`` (:mod:`geo.cli.db`), ``geo load …`` / ``geo demo-data``
(:mod:`geo.cli.load`), ``geo partition`` / ``geo plan …`` (:mod:`geo.cli.partition`), ``geo user …``
(:mod:`geo.cli.users`), ``geo serve`` / ``geo dashboard`` / ``geo demo`` (:mod:`geo.cli.serve`).
"""

from __future__ import annotations

from geo.cli._app import app
from geo.cli import db, load, partition, serve, users  # noqa: F401  (register the commands)
from geo.cli import grids  # noqa: F401,E402  (geo load grids, geo plan export/print)
from geo.cli.load import load_demo_files
from geo.cli.partition import _partition_many, _partition_one


__all__ = ["app", "load_demo_files", "main", "_partition_many", "_partition_one"]


def main() -> None:  # pragma: no cover
    app()
