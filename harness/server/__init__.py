"""``harness serve``: the HTTP API over a Unix socket (or TCP with a token).

Kept free of imports: the thin client imports ``harness.server.paths`` and must not load the server.
"""
