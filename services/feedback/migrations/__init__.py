"""The feedback tracker's own schema (its outbox), applied with {schema} = feedback."""
