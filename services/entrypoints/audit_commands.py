"""`redline audit verify`: walk every audit chain and name each edited or deleted entry."""

from __future__ import annotations

import asyncio
from typing import Annotated

import asyncpg
import typer

from services.adapters.audit import audited_schemas, read_audit
from services.audit.domain import verify_chain
from services.config import load_running_settings
from services.errors import DatabaseError, InvalidInput

audit_app = typer.Typer(help="The audit trail of state changes and block decisions.")


async def verify_trails(database_url: str, schema: str | None) -> dict[str, tuple[int, list[str]]]:
    """Per audited schema: how many entries, and every break in its chain."""
    try:
        conn = await asyncpg.connect(database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"cannot reach the database: {exc}") from exc
    try:
        schemas = await audited_schemas(conn)
        if schema is not None:
            if schema not in schemas:
                known = ", ".join(schemas)
                raise InvalidInput("--schema", f"no audit trail in {schema!r}; known: {known}")
            schemas = [schema]
        found: dict[str, tuple[int, list[str]]] = {}
        for name in schemas:
            rows = await read_audit(conn, name)
            found[name] = (len(rows), verify_chain(rows))
        return found
    finally:
        await conn.close()


@audit_app.command("verify")
def verify(
    schema: Annotated[
        str | None,
        typer.Option("--schema", help="public (registry) or dept_<code>; all if omitted"),
    ] = None,
) -> None:
    """Exit 0 when every trail is whole, 1 naming each entry edited or deleted."""
    _, database = load_running_settings().require()
    broken = False
    for name, (count, problems) in asyncio.run(verify_trails(database, schema)).items():
        typer.echo(f"{name}: {count} entries, " + ("intact" if not problems else "BROKEN"))
        for problem in problems:
            typer.echo(f"  {problem}")
        broken = broken or bool(problems)
    if broken:
        raise typer.Exit(1)
