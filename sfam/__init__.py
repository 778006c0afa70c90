"""sfam."""
