"""The ``geo`` command line: thin Typer commands, one module per group.

``geo db …`` / ``geo doctor`` / ``geo summary`` (:mod:`geo.cli.db`), ``geo load …`` / ``geo demo-data``
(:mod:`geo.cli.load`), ``geo partition`` / ``geo plan …`` (:mod:`geo.cli.partition`), ``geo user …``
(:mod:`geo.cli.users`), ``geo serve`` / ``geo dashboard`` / ``geo demo`` (:mod:`geo.cli.serve`), ``geo worker`` (:mod:`geo.cli.worker`).
The commands are thin: the work is done by service functions (:mod:`geo.services`, :mod:`geo.db`, :mod:`geo.jobs`).
"""

from __future__ import annotations

from geo.cli._app import app
from geo.cli import db, load, partition, serve, users, worker  # noqa: F401  (register the commands)
from geo.cli import grids  # noqa: F401,E402  (geo load grids, geo plan export/print)

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app()
