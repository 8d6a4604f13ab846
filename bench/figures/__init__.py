"""One module per figure; each ``measure(rig)`` returns its results as plain JSON data."""
