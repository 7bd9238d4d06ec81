-- Chunks of a flow's source found to hold nothing new: read again unchanged, their keys
-- are not looked up one by one. A note is taken while the flow's chunk epoch is the one
-- it was found at; the epoch moves on whenever a handled key may have become new again
-- (forgotten by pruning, or judged again: failed or filtered with other data).
CREATE TABLE settled_chunks (
    flow  text   NOT NULL,
    print bytea  NOT NULL,
    epoch bigint NOT NULL,
    run   bigint NOT NULL,
    PRIMARY KEY (flow, print)
);

CREATE TABLE chunk_epochs (
    flow  text   PRIMARY KEY,
    epoch bigint NOT NULL
);
