"""The audit trail: every state change and block decision, append-only, chained by hashes."""
