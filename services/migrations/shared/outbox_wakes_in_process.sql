-- This outbox's relay runs in the process that writes it, which wakes it after each
-- commit. A NOTIFY instead takes one database-wide lock at commit and holds it through the
-- WAL flush: with 21 departments and the builder notifying on every batch, commits across
-- the whole database queued on that lock, and the registry's filings waited behind them
-- (pg_stat_activity: COMMIT waiting on Lock/object). A relay that leads for another
-- process's writes finds them within its idle wait.
DROP TRIGGER outbox_wakes_relay ON {schema}.outbox;
DROP FUNCTION {schema}.outbox_notify();
