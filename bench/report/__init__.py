"""Reports from the results store: leaderboard tables, plots, HTML pages (reads the store only)."""
