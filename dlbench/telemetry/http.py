"""A small threaded HTTP server for /metrics and /health, built on prometheus_client's WSGI app."""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import threading
from typing import Callable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
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


def _server_class(address: str):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    class Server(ThreadingWSGIServer):
        address_family = family
        daemon_threads = True

    return Server


class MetricsServer:
    """Serves `registry` on /metrics and `health()` (status, JSON body) on /health, in a daemon thread."""

    def __init__(self, registry: CollectorRegistry, listen: str, port: int,
                 health: Callable[[], tuple[int, dict]] | None = None):
        metrics_app = make_wsgi_app(registry)
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
