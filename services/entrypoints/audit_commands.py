"""`redline audit verify`: walk every audit chain and name each edited or deleted entry,
and hold each chain to its latest signed checkpoint on the checkpoint topic, so a tail
deleted by someone who controls the database is named too."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Annotated

import asyncpg
import typer

from events.errors import EventError
from events.signing import TrustStore
from services.adapters.audit import audited_schemas, read_audit
from services.adapters.audit_anchor import read_checkpoint_values
from services.audit.anchor import Checkpoint, anchor_problems, latest_checkpoints
from services.audit.domain import verify_chain
from services.config import load_running_settings
from services.errors import ConfigError, DatabaseError, InvalidInput, RedlineError
from services.runtime.devkeys import ensure_dev_keys

audit_app = typer.Typer(help="The audit trail of state changes and block decisions.")


async def verify_trails(
    database_url: str, schema: str | None, anchors: Mapping[str, Checkpoint] | None = None
) -> dict[str, tuple[int, list[str]]]:
    """Per audited schema: how many entries, and every break in its chain, and (given the
    anchored checkpoints) every way it falls short of or disagrees with its checkpoint."""
    try:
        conn = await asyncpg.connect(database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"cannot reach the database: {exc}") from exc
    try:
        schemas = await audited_schemas(conn)
        anchors = anchors or {}
        if schema is not None:
            if schema not in schemas:
                known = ", ".join(schemas)
                raise InvalidInput("--schema", f"no audit trail in {schema!r}; known: {known}")
            schemas = [schema]
        found: dict[str, tuple[int, list[str]]] = {}
        for name in schemas:
            rows = await read_audit(conn, name)
            problems = verify_chain(rows)
            if name in anchors:
                problems += anchor_problems(rows, anchors[name])
            found[name] = (len(rows), problems)
        for name, checkpoint in anchors.items():
            if name not in found and schema in (None, name):
                found[name] = (0, [f"the whole trail is gone: {checkpoint.seq} entries anchored"])
        return found
    finally:
        await conn.close()


async def anchored_heads(
    database_url: str, values: Sequence[bytes | None], trust: TrustStore
) -> tuple[dict[str, Checkpoint], list[str]]:
    """The latest valid checkpoint per schema of this database, and the refused records."""
    try:
        conn = await asyncpg.connect(database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"cannot reach the database: {exc}") from exc
    try:
        database = await conn.fetchval("SELECT current_database()")
    finally:
        await conn.close()
    return latest_checkpoints(values, trust, database)


@audit_app.command("verify")
def verify(
    schema: Annotated[
        str | None,
        typer.Option("--schema", help="public (registry) or dept_<code>; all if omitted"),
    ] = None,
) -> None:
    """Exit 0 when every trail is whole and reaches its anchored checkpoint, 1 naming each
    entry edited or deleted and each missing range. Unreachable checkpoints fail too."""
    settings = load_running_settings()
    kafka, database = settings.require()
    if settings.trust_store_path is None and not settings.trust_store.exists():
        ensure_dev_keys(settings.home)  # development only: trust_store refused otherwise
    try:
        trust = TrustStore.load(settings.trust_store)
    except EventError as exc:
        raise ConfigError(f"REDLINE_TRUST_STORE: {exc}") from exc

    async def check() -> tuple[dict[str, tuple[int, list[str]]], dict[str, Checkpoint], list[str]]:
        values = await read_checkpoint_values(kafka, settings.kafka_auth)
        anchors, refused = await anchored_heads(database, values, trust)
        return await verify_trails(database, schema, anchors), anchors, refused

    try:
        trails, anchors, refused = asyncio.run(check())
    except InvalidInput:
        raise
    except RedlineError as exc:
        typer.echo(f"cannot verify: {exc}", err=True)
        raise typer.Exit(1) from None
    for reason in refused:
        typer.echo(f"checkpoint topic: refused a record: {reason}")
    broken = False
    for name, (count, problems) in trails.items():
        anchor = anchors.get(name)
        where = f"anchored at entry {anchor.seq}" if anchor else "not anchored yet"
        verdict = "intact" if not problems else "BROKEN"
        typer.echo(f"{name}: {count} entries, {verdict} ({where})")
        for problem in problems:
            typer.echo(f"  {problem}")
        broken = broken or bool(problems)
    if broken:
        raise typer.Exit(1)
