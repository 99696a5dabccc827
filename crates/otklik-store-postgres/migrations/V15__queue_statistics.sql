-- Joint statistics for the columns queues filter on together. Without them the planner multiplies
-- the selectivity of `status IN (active)` by that of `assignee_id IS NULL` as if they were
-- independent, while every unassigned ticket is new: at a million tickets it expected 203
-- unassigned active tickets instead of 2,855, intersected two bitmaps (62k status entries) and
-- sorted, 12 ms, where walking the newest tickets needs 0.3 ms. Most-common-value lists of the
-- pairs give it the real counts.
CREATE STATISTICS tickets_status_assignee (mcv) ON status, assignee_id FROM tickets;
CREATE STATISTICS tickets_status_team (mcv) ON status, team_id FROM tickets;
ANALYZE tickets;
