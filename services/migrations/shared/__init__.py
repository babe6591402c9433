"""SQL written once and included by several schemas' migrations (`-- include: <name>`)."""
