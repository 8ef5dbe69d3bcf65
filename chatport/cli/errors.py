"""What the commands share: the console they print to, and configuration errors as typer's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from chatport.config import ConfigError, StartError

console = Console(stderr=True)


@contextmanager
def as_usage_errors() -> Iterator[None]:
    """A ConfigError is the option's usage error (exit code 2, the option named); a
    StartError is printed and exits 1."""
    try:
        yield
    except ConfigError as exc:
        raise typer.BadParameter(exc.message, param_hint=exc.param) from None
    except StartError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
