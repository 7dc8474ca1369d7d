"""Making scripts: the scaffold library, safe rendering, and (with a key) the LLM."""
