"""Running grids: grids and cells (plan), one cell's fit/test (cell), launchers, the data config."""
