-- Several daemons on one database (`switchboard daemon --cluster`).

-- Who runs each flow: the holder (one process), its node's name, the fencing number
-- of this holding (every new holding gets a higher one; writes of a run carry it and
-- are refused once another holding replaced it), until when the holding stands without
-- being renewed (the database's clock), and a trigger another node left while the flow
-- ran (run once more after it: coalescing across nodes). `holder` is NULL once given
-- back.
CREATE SEQUENCE fences;
CREATE TABLE leases (
    flow    text        PRIMARY KEY,
    holder  text,
    node    text        NOT NULL,
    fence   bigint      NOT NULL,
    expires timestamptz NOT NULL,
    pending text
);

-- The scheduled fires of each flow, each won by one node: (flow, due) is the claim.
CREATE TABLE fires (
    flow text        NOT NULL,
    due  timestamptz NOT NULL,
    node text        NOT NULL,
    PRIMARY KEY (flow, due)
);
