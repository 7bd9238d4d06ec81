-- The embedded state (SQLite): the same tables as PostgreSQL's (../postgres/, under the
-- same numbers), in SQLite's dialect. Stored values are JSON text with a version, so
-- newer binaries read older rows. Tables keyed by (flow, …) are WITHOUT ROWID: the key is
-- the row, stored once.

-- Each run's summary (`status` beside it, to find runs under way).
CREATE TABLE runs (
    flow    TEXT    NOT NULL,
    id      INTEGER NOT NULL,
    status  TEXT    NOT NULL,
    summary TEXT    NOT NULL,
    PRIMARY KEY (flow, id)
) WITHOUT ROWID;
CREATE INDEX runs_running ON runs (flow, id) WHERE status = 'running';

-- Each record's outcome in a run.
CREATE TABLE rows (
    flow    TEXT    NOT NULL,
    run     INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    outcome TEXT    NOT NULL,
    PRIMARY KEY (flow, run, seq)
) WITHOUT ROWID;

-- The keys handled: the run that handled each last, how, and a failed one's digest.
CREATE TABLE seen (
    flow   TEXT    NOT NULL,
    key    TEXT    NOT NULL,
    run    INTEGER NOT NULL,
    status TEXT    NOT NULL,
    digest TEXT,
    PRIMARY KEY (flow, key)
) WITHOUT ROWID;
CREATE INDEX seen_run ON seen (flow, run);

-- Sends in flight: marked before they start, removed once their outcomes are stored.
CREATE TABLE ledger (
    flow    TEXT NOT NULL,
    mark    TEXT NOT NULL,
    entries TEXT NOT NULL,
    PRIMARY KEY (flow, mark)
) WITHOUT ROWID;

-- Pushed events waiting for their run, in the order they arrived (a key queued again
-- replaces its event and arrives anew: a new row number, past every row there is).
CREATE TABLE queue (
    arrived INTEGER PRIMARY KEY,
    flow    TEXT NOT NULL,
    key     TEXT NOT NULL,
    fields  TEXT NOT NULL,
    UNIQUE (flow, key)
);

-- Small values kept for a flow (primed, the armed schedule, a pause, the index mark);
-- the flow '' holds the state's own (its identity, the flows directory it serves).
CREATE TABLE meta (
    flow  TEXT NOT NULL,
    name  TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (flow, name)
) WITHOUT ROWID;

-- The search index: one row per term of each outcome of an ended run. BINARY collation
-- (byte order), so that a term's prefix is a range of the index.
CREATE TABLE found (
    term TEXT    NOT NULL,
    flow TEXT    NOT NULL,
    run  INTEGER NOT NULL,
    seq  INTEGER NOT NULL,
    PRIMARY KEY (term, flow, run, seq)
) WITHOUT ROWID;
CREATE INDEX found_run ON found (flow, run);
