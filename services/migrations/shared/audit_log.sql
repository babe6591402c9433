-- The audit trail (also each department's, in its own schema): append-only, each entry
-- chained to the one before by its hash, so `redline audit verify` finds any edit or
-- deletion, even one made by someone who could switch the guard below off.
CREATE TABLE {schema}.audit_log (
    seq          bigint      PRIMARY KEY,
    at           timestamptz NOT NULL,
    actor        text        NOT NULL,
    action       text        NOT NULL,
    case_id      text        NOT NULL,
    reason       text        NOT NULL,
    legal_basis  text        NOT NULL,
    data         jsonb       NOT NULL,
    prev_hash    text        NOT NULL,
    hash         text        NOT NULL
);

CREATE FUNCTION {schema}.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {schema}.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.audit_append_only();
