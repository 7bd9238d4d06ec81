-- The keys remembered as failed, by run: the console's "Failed 24 h" counts them on every
-- redraw of the flows page, and reads only these, not every key a day of runs handled.
CREATE INDEX seen_failed ON seen (flow, run) WHERE status = 'failed';
