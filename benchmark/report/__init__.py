"""Leaderboards: markdown pages and figures rendered from the score store alone."""
