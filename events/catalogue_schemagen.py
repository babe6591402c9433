"""Generate `catalogue.schema.json`, the JSON Schema of the measures catalogue.

Run `python -m events.catalogue_schemagen` after changing the catalogue models;
`--check` (for CI) fails when the committed file differs from the models.
"""

from __future__ import annotations

import argparse
import json
import sys

from events.catalogue import SCHEMA_FILE, Catalogue

COMMAND = "python -m events.catalogue_schemagen"


def render() -> str:
    """The catalogue's JSON Schema, as the committed file must hold it."""
    schema = Catalogue.model_json_schema()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed schema is out of date"
    )
    args = parser.parse_args(argv)
    expected = render()
    if args.check:
        try:
            committed = SCHEMA_FILE.read_text(encoding="utf-8")
        except FileNotFoundError:
            committed = None
        if committed != expected:
            state = "missing" if committed is None else "out of date"
            print(f"{SCHEMA_FILE} is {state}: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    SCHEMA_FILE.write_text(expected, encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
