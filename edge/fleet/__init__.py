"""Tools for many boards at once, run on the monitoring host (not on a board)."""
