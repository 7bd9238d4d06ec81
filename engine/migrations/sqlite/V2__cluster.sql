-- Several daemons as one need a server all of them reach: PostgreSQL's V2 makes the
-- cluster's tables. An embedded state is held by one process; it has none. (The number
-- is kept so that both dialects count their migrations alike.)
CREATE TABLE cluster_note (note TEXT);
DROP TABLE cluster_note;
