"""Generated scripts awaiting review, and their promotion into the scaffold library."""
