"""Adapters: the only modules that talk to Kafka, PostgreSQL and HTTP."""
