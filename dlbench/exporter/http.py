"""A small threaded HTTP server for /metrics and /health, built on prometheus_client's WSGI app."""

from __future__ import annotations

import errno
import gzip
from collections import OrderedDict
import io
import ipaddress
import json
import socket
import sys
import threading
import time
from typing import Callable
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder, gzip_accepted
from prometheus_client.registry import CollectorRegistry

from dlbench.errors import UserError


# A client that connects and then says nothing (half-open, slowloris) is dropped after this long; Prometheus sends
# its request at once. Without it every such connection would hold a thread forever.
SOCKET_TIMEOUT_SECONDS = 5.0
# Requests answered at once, counted from the moment a request's line and headers have arrived, as Go exporters count
# them (promhttp.HandlerOpts.MaxRequestsInFlight, node_exporter's --web.max-requests); more get 503 at once. A few
# Prometheus servers, a blackbox probe and a curl need a handful. Idle connections take no slot: a client holding
# sockets open without asking anything must not lock Prometheus out.
MAX_REQUESTS_IN_FLIGHT = 32
# Connections whose request has not arrived yet (each waits in its own thread, for SOCKET_TIMEOUT_SECONDS at most).
# Beyond this many the oldest is closed to make room: a scraper's connection waits only the milliseconds its request
# takes to arrive, so a flood of idle sockets pushes out its own, not the scraper's.
MAX_PENDING_CONNECTIONS = 256
# Credentials are checked before a request takes a slot, as exporter-toolkit's auth wrapper (web/handler.go) runs
# outside promhttp's in-flight limit: requests with wrong passwords, each a bcrypt check run one at a time, must not
# hold the slots a scraper whose password was checked before needs. Credentials not seen before wait for bcrypt in
# at most this many threads; beyond that they get 503 at once, so a flood of guesses cannot pile up threads either.
MAX_PASSWORD_CHECKS = 8
SERVER_NAME = "dlbench"  # the Server header: no Python or library versions for a scanner to match


class _RequestDeadlineReader(io.RawIOBase):
    """The connection's reads, each allowed only what is left of one deadline for the whole request.

    A socket timeout alone bounds each read, so a client that sends a byte every few seconds (slowloris) would
    hold its connection, and a thread, for ever.
    """

    def __init__(self, connection: socket.socket, deadline: float):
        self._connection, self._deadline = connection, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("the request was not complete within the socket timeout")
        self._connection.settimeout(left)
        return self._connection.recv_into(buffer)


class _QuietHandler(WSGIRequestHandler):
    timeout = SOCKET_TIMEOUT_SECONDS  # StreamRequestHandler sets it on the connection before reading

    def setup(self) -> None:
        super().setup()
        deadline = time.monotonic() + SOCKET_TIMEOUT_SECONDS
        self.rfile.close()  # the plain socket file setup() made; the request is read through the deadline instead
        self.rfile = io.BufferedReader(_RequestDeadlineReader(self.connection, deadline))

    def parse_request(self) -> bool:
        parsed = super().parse_request()  # request line and headers read: writing the answer gets a fresh timeout
        self.server.request_arrived()
        if not parsed:
            return False
        self.connection.settimeout(SOCKET_TIMEOUT_SECONDS)
        authenticated = self.server.authenticate(self.headers.get("Authorization"))
        if not authenticated:
            self.close_connection = True
            if authenticated is None:
                self.send_error(503, "too many password checks in progress")
            else:
                body = b"unauthorized\n"
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="dlbench"')
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
            return False
        self._in_flight = self.server.admit()
        if not self._in_flight:
            self.close_connection = True
            self.send_error(503, "too many requests in flight")
            return False
        return True

    def handle(self) -> None:
        self._in_flight = False
        try:
            super().handle()
        finally:
            if self._in_flight:
                self.server.release()

    def log_message(self, format, *args):  # one line per scrape would drown the operator's log
        pass

    def version_string(self) -> str:  # error pages written by http.server itself (400, 414)
        return SERVER_NAME


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


# what Prometheus 2.x sends; pre-rendered so that its scrapes are answered from memory
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


class _Collected:
    """One collection of a registry's families, handed to several encoders (they only call collect())."""

    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return iter(self.families)


class PrerenderedMetrics:
    """/metrics rendered once per sample instead of once per scrape.

    The exposition only changes when the sampler takes a sample, so the sampler thread renders it right after each
    sample (`refresh`) and scrapes copy bytes. Only forms asked for in the last ASKED_WITHIN_SECONDS are rendered
    ahead (Prometheus's gzipped OpenMetrics always): encoding is most of a render, so a text form nobody reads is
    not encoded every sample. Other forms are rendered on first request and kept until the next sample. Requests
    with `name[]` filters are rendered for themselves, through the same encoder choice and counter types.
    """

    ASKED_WITHIN_SECONDS = 600.0  # a few scrape intervals of the slowest usual scraper

    def __init__(self, registry: CollectorRegistry, counters_without_total: frozenset[str] = frozenset()):
        """counters_without_total: gauge families to serve typed counter, names that lack _total (dcgm-exporter's
        DCGM_FI_* counters). OpenMetrics requires a counter's samples to end in _total, so with any such family
        every scrape is answered in the Prometheus text format, as dcgm-exporter answers."""
        self.registry = registry
        self._cache: dict[tuple[str, bool], bytes] = {}
        self._asked: dict[tuple[str, bool], float] = {}  # (Accept header, gzip) -> when last asked
        self._retype = [
            (f"# TYPE {name} gauge\n".encode(), f"# TYPE {name} counter\n".encode())
            for name in sorted(counters_without_total)
        ]

    def _render(self, cache: dict, accept: str, compress: bool, source=None) -> tuple[str, bytes]:
        encoder, content_type = choose_encoder("" if self._retype else accept)
        key = (content_type, compress)
        body = cache.get(key)
        if body is None:
            plain = cache.get((content_type, False))
            if plain is None:
                plain = encoder(source or self.registry)
                for gauge, counter in self._retype:
                    plain = plain.replace(gauge, counter, 1)
                cache[(content_type, False)] = plain
            body = cache[key] = gzip.compress(plain, compresslevel=1) if compress else plain
        return content_type, body

    def refresh(self, *_) -> None:
        cache: dict = {}
        # collected once for both encoders: building the families is half of a render
        source = _Collected(list(self.registry.collect()))
        self._render(cache, PROMETHEUS_ACCEPT, True, source)
        recently = time.monotonic() - self.ASKED_WITHIN_SECONDS
        for (accept, compress), at in list(self._asked.items()):
            if at >= recently:
                self._render(cache, accept, compress, source)
        self._cache = cache  # one assignment: a scrape sees the old cache or the new, never a mix

    def __call__(self, environ, start_response):
        compress = gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", ""))
        accept = environ.get("HTTP_ACCEPT", "")
        names = parse_qs(environ.get("QUERY_STRING", "")).get("name[]")
        if names:  # rendered for this request only, but in the same format and types as a whole scrape
            content_type, body = self._render({}, accept, compress, self.registry.restricted_registry(names))
        else:
            content_type, body = self._render(self._cache, accept, compress)
            if len(self._asked) < 64 or (accept, compress) in self._asked:  # bounded: clients choose the header
                self._asked[(accept, compress)] = time.monotonic()
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if compress:
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]


def _server_class(
    address: str,
    web_config=None,
    max_requests: int = MAX_REQUESTS_IN_FLIGHT,
    max_pending: int = MAX_PENDING_CONNECTIONS,
):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    tls = web_config.tls if web_config is not None else None

    class Server(ThreadingWSGIServer):
        address_family = family
        daemon_threads = True
        # the kernel's queue of connections not yet accepted: socketserver's 5 would make a burst of connects (idle
        # ones among them) wait for SYN retries; Go's net.Listen uses the system's maximum too
        request_queue_size = socket.SOMAXCONN
        evicted_connections = 0  # closed while idle to make room for newer ones (benchmarks/exporter_load.py)

        def __init__(self, *args, **kwargs):
            self._slots = threading.BoundedSemaphore(max_requests)
            self._password_checks = threading.BoundedSemaphore(MAX_PASSWORD_CHECKS)
            # connections with no request yet: the thread serving each -> its file descriptor (the same before and
            # after a TLS handshake, which replaces the socket object)
            self._pending: OrderedDict[int, int] = OrderedDict()
            self._pending_lock = threading.Lock()
            super().__init__(*args, **kwargs)

        # --- credentials ---------------------------------------------------------------------------------------
        def authenticate(self, header: str | None) -> bool | None:
            """Whether the request may go on; None: its password needs a bcrypt check and too many are waiting."""
            if web_config is None:
                return True
            verdict = web_config.known_verdict(header)
            if verdict is not None:
                return verdict
            if not self._password_checks.acquire(blocking=False):
                return None
            try:
                return web_config.authorized(header)
            finally:
                self._password_checks.release()

        # --- requests in flight ------------------------------------------------------------------------------
        def admit(self) -> bool:
            return self._slots.acquire(blocking=False)  # False: more than max_requests in flight, answered 503

        def release(self) -> None:
            self._slots.release()

        # --- connections waiting for their request -------------------------------------------------------------
        def _wait_for_request(self, connection: socket.socket) -> None:
            with self._pending_lock:
                self._pending[threading.get_ident()] = connection.fileno()
                if len(self._pending) > max_pending:
                    _, oldest = self._pending.popitem(last=False)
                    Server.evicted_connections += 1
                    # under the lock: its thread closes it only after leaving _pending, so the number is still its
                    # socket. Shut down through a duplicate: that wakes the thread, blocked reading, with end of file
                    try:
                        with socket.fromfd(oldest, family, socket.SOCK_STREAM) as duplicate:
                            duplicate.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def request_arrived(self) -> None:
            with self._pending_lock:
                self._pending.pop(threading.get_ident(), None)

        def shutdown_request(self, request):
            self.request_arrived()  # before the descriptor is closed and can be reused
            super().shutdown_request(request)

        def handle_error(self, request, client_address):
            # a client that timed out or went away is routine for a server on a network, not a bug to print
            if isinstance(sys.exc_info()[1], OSError):
                return
            super().handle_error(request, client_address)

        def process_request_thread(self, request, client_address):
            self._wait_for_request(request)
            if tls is not None:
                # the handshake runs here, in the connection's own thread and under its timeout, so that a client
                # that never completes it cannot stall the accept loop
                request.settimeout(SOCKET_TIMEOUT_SECONDS)
                try:
                    request = tls.wrap_socket(request, server_side=True)
                except (OSError, ValueError):
                    self.shutdown_request(request)
                    return
            super().process_request_thread(request, client_address)

    return Server


class MetricsServer:
    """Serves `registry` on /metrics, `health()` (status, JSON body) on /health and `live()` on /live, in a daemon
    thread.

    `metrics_app` replaces prometheus_client's WSGI app for /metrics (the exporter passes PrerenderedMetrics).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        listen: str,
        port: int,
        health: Callable[[], tuple[int, dict]] | None = None,
        metrics_app=None,
        web_config=None,
        max_requests: int = MAX_REQUESTS_IN_FLIGHT,
        max_pending: int = MAX_PENDING_CONNECTIONS,
        live: Callable[[], tuple[int, dict]] | None = None,
    ):
        metrics_app = metrics_app or make_wsgi_app(registry)
        self._health = health or (lambda: (200, {"status": "ok"}))
        checks = {"/health": self._health, **({"/live": live} if live is not None else {})}
        self.web_config = web_config

        def routes(environ, start_response):
            path = environ.get("PATH_INFO", "/")  # credentials were checked before the request was admitted
            if path == "/metrics":
                return metrics_app(environ, start_response)
            if path in checks:
                status, body = checks[path]()
                start_response(
                    f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                    [("Content-Type", "application/json")],
                )
                return [json.dumps(body).encode()]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [f"not found: try /metrics or {' or '.join(checks)}\n".encode()]

        def app(environ, start_response):
            def with_server_header(status, headers, exc_info=None):
                return start_response(status, list(headers) + [("Server", SERVER_NAME)], exc_info)

            return routes(environ, with_server_header)

        try:
            self.server = make_server(
                listen,
                port,
                app,
                _server_class(listen, web_config, max_requests, max_pending),
                handler_class=_QuietHandler,
            )
        except OSError as error:
            reason = {
                errno.EADDRINUSE: "address already in use",
                errno.EACCES: "permission denied",
                errno.EADDRNOTAVAIL: "address not available on this host",
            }.get(error.errno)
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
