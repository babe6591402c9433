"""Contract suites: each store port's behaviour the handlers rely on, written once and run
against the in-memory fake (tests/unit) and the PostgreSQL adapter (tests/integration)."""
