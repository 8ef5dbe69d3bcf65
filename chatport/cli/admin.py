"""``chatport db`` and ``chatport keys``: the store's migrations and its API keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from chatport.cli.errors import console

if TYPE_CHECKING:
    from chatport.store.database import Database

T = TypeVar("T")

StoreOption = Annotated[
    str | None, typer.Option("--store", help="sqlite:///PATH or postgresql://... (default: the local SQLite file)")
]

db_app = typer.Typer(help="The stored-completions database.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys and the projects they belong to.", no_args_is_help=True)


def _run(coro_fn: Callable[[Database], Awaitable[T]], url: str | None) -> T:
    import asyncio

    from chatport.store.database import StoreUnavailable, database_at, redacted_url

    try:
        database = database_at(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--store") from None

    async def main() -> T:
        try:
            return await coro_fn(database)
        finally:
            await database.close()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        console.print(f"[red]database unavailable[/] ({redacted_url(database.url)}): {exc}")
        raise typer.Exit(1) from None


@db_app.command("upgrade")
def db_upgrade(store: StoreOption = None) -> None:
    """Apply the database migrations (serve does this at start-up too)."""

    async def go(database: Database) -> None:
        await database.upgrade()

    _run(go, store)
    console.print("database is up to date")


@keys_app.command("create")
def keys_create(
    project: Annotated[str, typer.Option(help="The project the key belongs to (created if new).")],
    store: StoreOption = None,
    rpm: Annotated[int | None, typer.Option(help="The project's requests per minute.", min=1)] = None,
    tpm: Annotated[int | None, typer.Option(help="The project's tokens per minute.", min=1)] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="The project's requests at once.", min=1)] = None,
) -> None:
    """Create a key; it is printed once and stored only as a hash. --rpm, --tpm and
    --max-concurrent set the project's rate limits (for all its keys)."""
    from chatport.protocol.limits import RateLimits
    from chatport.store.keys import KeyStore, check_project_name

    try:
        check_project_name(project)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--project") from None
    given = RateLimits(rpm, tpm, max_concurrent)
    key, info = _run(lambda db: KeyStore(db).create(project, given if given.any else None), store)
    console.print(f"created {info.id} for project [bold]{project}[/]; this is the only time the key is shown:")
    typer.echo(key)


@keys_app.command("list")
def keys_list(store: StoreOption = None) -> None:
    """List keys (redacted) with their projects."""
    from rich.table import Table

    from chatport.store.keys import KeyStore

    rows = _run(lambda db: KeyStore(db).all_keys(), store)
    table = Table("id", "project", "key", "created", "revoked")
    for k in rows:
        table.add_row(k.id, k.project, k.redacted, str(k.created_at), str(k.revoked_at or ""))
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, store: StoreOption = None) -> None:
    """Revoke a key by id; it stops working within seconds."""
    from chatport.store.keys import KeyStore

    if not _run(lambda db: KeyStore(db).revoke(key_id), store):
        console.print(f"[red]no live key {key_id}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")
