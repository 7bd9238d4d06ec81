-- The state of runs in PostgreSQL: what engine/src/state/embedded.rs keeps in sled trees,
-- as tables. Stored values are JSON with a version, as in sled, so newer binaries read
-- older rows.

-- Each run's summary (`status` beside it, to find runs under way).
CREATE TABLE runs (
    flow    text   NOT NULL,
    id      bigint NOT NULL,
    status  text   NOT NULL,
    summary jsonb  NOT NULL,
    PRIMARY KEY (flow, id)
);
CREATE INDEX runs_running ON runs (flow, id) WHERE status = 'running';

-- Each record's outcome in a run.
CREATE TABLE rows (
    flow    text   NOT NULL,
    run     bigint NOT NULL,
    seq     bigint NOT NULL,
    outcome jsonb  NOT NULL,
    PRIMARY KEY (flow, run, seq)
);

-- The keys handled: the run that handled each last, how, and a failed one's digest.
CREATE TABLE seen (
    flow   text   NOT NULL,
    key    text   NOT NULL,
    run    bigint NOT NULL,
    status text   NOT NULL,
    digest text,
    PRIMARY KEY (flow, key)
);
CREATE INDEX seen_run ON seen (flow, run);

-- Sends in flight: marked before they start, removed once their outcomes are stored.
CREATE TABLE ledger (
    flow    text  NOT NULL,
    mark    text  NOT NULL,
    entries jsonb NOT NULL,
    PRIMARY KEY (flow, mark)
);

-- Pushed events waiting for their run, in the order they arrived.
CREATE TABLE queue (
    flow    text      NOT NULL,
    key     text      NOT NULL,
    arrived bigserial NOT NULL,
    fields  jsonb     NOT NULL,
    PRIMARY KEY (flow, key)
);

-- Small values kept for a flow (primed, the armed schedule, a pause, the index mark).
CREATE TABLE meta (
    flow  text  NOT NULL,
    name  text  NOT NULL,
    value jsonb NOT NULL,
    PRIMARY KEY (flow, name)
);

-- The search index: one row per term of each outcome of an ended run. Byte order (C),
-- so that a term's prefix is a range of the index.
CREATE TABLE found (
    term text COLLATE "C" NOT NULL,
    flow text   NOT NULL,
    run  bigint NOT NULL,
    seq  bigint NOT NULL,
    PRIMARY KEY (term, flow, run, seq)
);
CREATE INDEX found_run ON found (flow, run);
