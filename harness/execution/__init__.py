"""Running scripts: backends, the Docker sandbox, limits, the warm pool, the image."""
