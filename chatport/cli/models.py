"""``chatport pull``, ``models`` and ``rm``: GGUF models in the Hugging Face cache."""

from __future__ import annotations

from typing import Annotated

import typer

from chatport.cli.errors import console
from chatport.hub import is_hub


def register(app: typer.Typer) -> None:
    app.command()(pull)
    app.command("models")(list_models)
    app.command("rm")(remove_model)


def pull(spec: Annotated[str, typer.Argument(help="hf:OWNER/REPO:QUANT or hf:OWNER/REPO/FILE.gguf")]) -> None:
    """Download a model from the Hugging Face Hub into its cache (resumes, uses HF_TOKEN)."""
    from chatport.hub import HubError, fetch, parse

    try:
        model = fetch(parse(spec if is_hub(spec) else "hf:" + spec))
    except HubError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    for path in model.files:
        typer.echo(path)


def list_models() -> None:
    """GGUF models in the Hugging Face cache, with their sizes (one file a line)."""
    from chatport.hub import cached_models

    for cached in cached_models():
        for name, size in cached.files:
            typer.echo(f"hf:{cached.repo}\t{name}\t{size_text(size)}")


def remove_model(spec: Annotated[str, typer.Argument(help="hf:OWNER/REPO[...] or OWNER/REPO")]) -> None:
    """Remove a repo's files from the Hugging Face cache."""
    from chatport.hub import HubError, parse, remove

    try:
        repo = parse(spec if is_hub(spec) else "hf:" + spec).repo
    except HubError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    freed = remove(repo)
    if not freed:
        console.print(f"[red]nothing of {repo} is cached[/]")
        raise typer.Exit(1)
    console.print(f"removed {repo} ({size_text(freed)})")


def size_text(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
