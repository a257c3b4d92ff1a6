"""A small threaded HTTP server for /metrics and /health, built on prometheus_client's WSGI app."""

from __future__ import annotations

import errno
import gzip
import ipaddress
import json
import socket
import threading
from typing import Callable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder, gzip_accepted
from prometheus_client.registry import CollectorRegistry

from dlbench.errors import UserError


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per scrape would drown the operator's log
        pass


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


# what Prometheus 2.x sends; pre-rendered so that its scrapes are answered from memory
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


class PrerenderedMetrics:
    """/metrics rendered once per sample instead of once per scrape.

    The exposition only changes when the sampler takes a sample, so the sampler thread renders it right after each
    sample (`refresh`) and scrapes copy bytes. Formats nobody asked for yet are rendered on first request and kept
    until the next sample. Requests with `name[]` filters go to prometheus_client's own app.
    """

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self._fallback = make_wsgi_app(registry)
        self._cache: dict[tuple[str, bool], bytes] = {}

    def _render(self, cache: dict, accept: str, compress: bool) -> tuple[str, bytes]:
        encoder, content_type = choose_encoder(accept)
        key = (content_type, compress)
        body = cache.get(key)
        if body is None:
            plain = cache.get((content_type, False))
            if plain is None:
                plain = cache[(content_type, False)] = encoder(self.registry)
            body = cache[key] = gzip.compress(plain, compresslevel=1) if compress else plain
        return content_type, body

    def refresh(self, *_) -> None:
        cache: dict = {}
        self._render(cache, PROMETHEUS_ACCEPT, True)
        self._render(cache, "", False)
        self._cache = cache  # one assignment: a scrape sees the old cache or the new, never a mix

    def __call__(self, environ, start_response):
        if "name[]" in environ.get("QUERY_STRING", ""):
            return self._fallback(environ, start_response)
        compress = gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", ""))
        content_type, body = self._render(self._cache, environ.get("HTTP_ACCEPT", ""), compress)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if compress:
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]


def _server_class(address: str):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    class Server(ThreadingWSGIServer):
        address_family = family
        daemon_threads = True

    return Server


class MetricsServer:
    """Serves `registry` on /metrics and `health()` (status, JSON body) on /health, in a daemon thread.

    `metrics_app` replaces prometheus_client's WSGI app for /metrics (the exporter passes PrerenderedMetrics).
    """

    def __init__(self, registry: CollectorRegistry, listen: str, port: int,
                 health: Callable[[], tuple[int, dict]] | None = None, metrics_app=None):
        metrics_app = metrics_app or make_wsgi_app(registry)
        self._health = health or (lambda: (200, {"status": "ok"}))

        def app(environ, start_response):
            path = environ.get("PATH_INFO", "/")
            if path == "/metrics":
                return metrics_app(environ, start_response)
            if path == "/health":
                status, body = self._health()
                start_response(f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                               [("Content-Type", "application/json")])
                return [json.dumps(body).encode()]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics or /health\n"]

        try:
            self.server = make_server(listen, port, app, _server_class(listen), handler_class=_QuietHandler)
        except OSError as error:
            reason = {errno.EADDRINUSE: "address already in use", errno.EACCES: "permission denied",
                      errno.EADDRNOTAVAIL: "address not available on this host"}.get(error.errno)
            if isinstance(error, socket.gaierror):
                reason = "not a valid address"
            raise UserError(f"cannot listen on {listen}:{port}: {reason or error.strerror or error}") from None
        except OverflowError:
            raise UserError(f"cannot listen on {listen}:{port}: port must be 0-65535") from None
        self.port = self.server.server_port
        self.listen = listen
        self._thread = threading.Thread(target=self.server.serve_forever, name="dlbench-metrics-http", daemon=True)

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def close(self) -> None:
        self.server.shutdown() if self._thread.is_alive() else None
        self.server.server_close()
