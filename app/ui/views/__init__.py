"""One view per feature area, shown in the main window's stacked area."""
