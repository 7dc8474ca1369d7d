"""Runs distributed to ``harness worker`` processes through Celery with a Redis broker.

``jobs`` is the wire format (an HMAC-authenticated job, the Redis key names), ``worker`` the
Celery side that runs jobs on a local DockerBackend, and ``submit`` the ``RemoteBackend`` a
submitter uses in place of the local engine. Celery is imported by ``worker`` and ``submit``
only, and those only when a broker is configured.
"""
