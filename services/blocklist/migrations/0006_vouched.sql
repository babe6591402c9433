-- When the builder last vouched that these tables hold every violation event published by
-- then (its consumer caught up), recorded in the loop that sends the heartbeats. The
-- central check (GET /v1/checks) answers stale past its bound from it, as a subscriber's
-- replica does from the heartbeats: a stopped or lagging builder is never answered "clear".
-- One row; a second builder (a rolling update) only moves it forward.
CREATE TABLE {schema}.vouched (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    as_of        timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
