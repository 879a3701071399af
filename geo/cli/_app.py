"""The root Typer app and the console helpers every command module shares."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(help="geo — grid division (网格化管理): load data, partition grids, serve the API.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(msg: str, code: int = 1) -> None:
    """Print ``msg`` as an error on stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def progress() -> Progress:
    """A transient progress bar on stderr (silent when stderr is not a terminal)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True, disable=not err.is_terminal)
