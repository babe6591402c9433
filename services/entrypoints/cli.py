"""`redline`: the command line over the same service layer the HTTP API uses."""

from __future__ import annotations

import asyncio

import typer

from services.adapters.kafka import ensure_topics
from services.adapters.migrate import migrate as apply_migrations
from services.config import load_running_settings
from services.errors import RedlineError

app = typer.Typer(help="Redline: the joint-punishment bus for farmland protection.")


@app.command()
def migrate() -> None:
    """Apply pending database migrations (safe to run twice, or from two places at once)."""
    _, database = load_running_settings().require()
    applied = asyncio.run(apply_migrations(database))
    typer.echo("applied: " + (", ".join(applied) if applied else "nothing, already up to date"))


@app.command()
def topics() -> None:
    """Create any missing Redline topic with its settings."""
    settings = load_running_settings()
    kafka, _ = settings.require()
    created = asyncio.run(
        ensure_topics(kafka, replication_factor=settings.kafka_replication_factor)
    )
    typer.echo("created: " + (", ".join(created) if created else "nothing, all exist"))


def main() -> None:
    try:
        app()
    except RedlineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
