"""The ``chatport`` command. It only parses options, prints, and turns a ``ConfigError``
into typer's error for the option it names: serving is ``chatport.server.serve``, the
benchmarks are ``chatport.bench``, the store's administration ``chatport.store``.

- ``serve``: the API (``serve.py``, over ``chatport.config.ServeConfig``)
- ``pull``, ``models``, ``rm``: models in the Hugging Face cache (``models.py``)
- ``db``, ``keys``: the store and its API keys (``admin.py``)
- ``bench``: throughput by default, and one subcommand per other measurement (``bench.py``)
"""

from __future__ import annotations

import typer

from chatport.cli import admin, bench, models
from chatport.cli.serve import serve

app = typer.Typer(add_completion=False, no_args_is_help=True, help="OpenAI Chat Completions on local GGUF models.")
app.command()(serve)
models.register(app)
app.add_typer(admin.db_app, name="db")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(bench.app, name="bench")


@app.callback()
def _root() -> None:
    """chatport: the OpenAI Chat Completions API on your own machine."""


def main() -> None:
    app()
