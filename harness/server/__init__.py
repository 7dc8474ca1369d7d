"""``harness serve``: the HTTP API over the application layer (FastAPI on uvicorn).

Importing this package imports nothing heavy: the thin client reads :mod:`harness.server.paths`
without FastAPI, pydantic or docker. :func:`harness.server.app.create_app` builds the app.
"""
