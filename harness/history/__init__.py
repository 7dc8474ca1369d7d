"""History that learns: every request's outcome, for stats and dispatch."""
