-- Chunks of a flow's source found to hold nothing new: read again unchanged, their keys
-- are not looked up one by one. A note is taken while the flow's chunk epoch is the one
-- it was found at; the epoch moves on whenever a handled key may have become new again
-- (forgotten by pruning, or judged again: failed or filtered with other data).
CREATE TABLE settled_chunks (
    flow  TEXT    NOT NULL,
    print BLOB    NOT NULL,
    epoch INTEGER NOT NULL,
    run   INTEGER NOT NULL,
    PRIMARY KEY (flow, print)
) WITHOUT ROWID;

CREATE TABLE chunk_epochs (
    flow  TEXT    PRIMARY KEY,
    epoch INTEGER NOT NULL
) WITHOUT ROWID;
