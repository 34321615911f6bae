"""The HTTP face: Handle REST API, proxy resolution for QR codes and browsers, lookup pages.

Public API, for the composition root::

    options = HttpOptions(max_body_bytes=3 << 20, cache_bytes=256 << 20)
    app = HttpApp(registry, follower, authenticator, resolver_service.answer, options)
    server = HttpServer(app, options)              # one per worker process
    bound = server.start(["127.0.0.1:8000", "[::1]:8000"])   # -> [(host, port), ...]
    server.stop()                                  # drain: finish in-flight requests
    app.close()

`resolve` is the gRPC face's `ResolverService.answer`, so all faces share one
change-log-invalidated cache of records; the HTTP face keeps its own cache of
encoded responses in front of it. `HttpOptions` fields bound the request line,
headers, body, head and body time, idle keep-alive, connections per worker and the
cache in entries and bytes; a bad value raises HttpConfigError naming the field.
"""

from __future__ import annotations

from resolver.http.app import HttpApp
from resolver.http.config import HttpConfigError, HttpOptions
from resolver.http.server import HttpServer

__all__ = ["HttpApp", "HttpConfigError", "HttpOptions", "HttpServer"]
