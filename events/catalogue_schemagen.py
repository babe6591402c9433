"""Generate `catalogue.schema.json`, the JSON Schema of the measures catalogue.

Run `python -m events.catalogue_schemagen` after changing the catalogue models;
`--check` (for CI) fails when the committed file differs from the models.
"""

from __future__ import annotations

import json
import sys

from events.catalogue import SCHEMA_FILE, Catalogue
from events.generated import Generator

COMMAND = "python -m events.catalogue_schemagen"


def render() -> str:
    """The catalogue's JSON Schema, as the committed file must hold it."""
    schema = Catalogue.model_json_schema()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    # Built at each call: SCHEMA_FILE is read when the command runs, not when it is imported.
    generator = Generator(
        COMMAND, __doc__, SCHEMA_FILE.parent, lambda: {SCHEMA_FILE.name: render()}, fix=COMMAND
    )
    return generator.main(argv)


if __name__ == "__main__":
    sys.exit(main())
