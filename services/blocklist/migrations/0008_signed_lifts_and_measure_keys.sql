-- #18 items 4 and 9: signed lifts, list heads, and one subject key per published list.
--
-- Every record the builder publishes (entry or signed lift) takes the next list version,
-- so a replica recognises a replayed older record of the same subject.
CREATE SEQUENCE {schema}.list_version;

-- What the builder last published under each key of each list, and in which partition
-- (Kafka's default partitioner), so the heads below change with each record.
CREATE TABLE {schema}.published (
    measure       text        NOT NULL,
    subject_hash  text        NOT NULL,
    kafka_partition integer   NOT NULL,
    version       bigint      NOT NULL,
    listed        boolean     NOT NULL,
    PRIMARY KEY (measure, subject_hash)
);

-- The signed head of each partition (events.blocklist_head): how many subjects it lists
-- and the XOR of their items. Every heartbeat carries its partition's head.
CREATE TABLE {schema}.list_heads (
    measure         text    NOT NULL,
    kafka_partition integer NOT NULL,
    entries         bigint  NOT NULL,
    digest          text    NOT NULL,
    PRIMARY KEY (measure, kafka_partition)
);

-- Each case's subject and site hashed under each published list's own key
-- (events.subject_keys): {"<measure>": {"subject": hash, "sites": [hash, ...]}}.
ALTER TABLE {schema}.cases ADD COLUMN list_hashes jsonb NOT NULL DEFAULT '{}';

-- The lists are rebuilt: hashes under the one deployment key cannot be turned into
-- per-measure hashes (the builder never keeps subject IDs), so the tables are emptied and
-- the builder reads the violation stream again from its start (kept for ever), which
-- publishes every list anew under its own key. Until it has caught up it vouches for
-- nothing, so the central check and every replica answer stale, never clear. The keys
-- published under the old key are tombstoned once (retired_keys), so compaction drops
-- them; subscribers never held them (another key id) and ignore tombstones anyway.
CREATE TABLE {schema}.retired_keys AS
    SELECT DISTINCT measure, subject_hash FROM {schema}.blocks WHERE lifted_at IS NULL;
CREATE TABLE {schema}.rebuild (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    requested_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {schema}.rebuild (singleton)
    SELECT true WHERE EXISTS (SELECT 1 FROM {schema}.consumed_events);
DELETE FROM {schema}.blocks;
DELETE FROM {schema}.cases;
DELETE FROM {schema}.consumed_events;
DELETE FROM {schema}.vouched;
