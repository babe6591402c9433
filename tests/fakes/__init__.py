"""In-memory stores, one per storage port, for handler tests without PostgreSQL.

Each subclasses the real port and keeps what the handlers rely on from PostgreSQL: a
transaction commits whole or not at all, sequences do not roll back, unique keys refuse
a second row with DatabaseError (as the adapters wrap asyncpg's refusals). The contract
suites in tests/contracts run against both these and the PostgreSQL adapters.
"""
