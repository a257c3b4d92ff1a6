"""An HTTP forward proxy on 127.0.0.1 in front of a mirror that only it can reach, for the proxy scenarios.

The mirror's host name ends in .invalid (RFC 6761: it never resolves), so a client reaches it through the proxy or not
at all: a playbook that does not pass setup_proxy_env to its tasks fails to resolve it. The proxy speaks plain HTTP
proxying as apt, pip and urllib use it (`GET http://host/path HTTP/1.1`): it serves the mirror's files from a
directory, forwards requests for any other http:// URL (Debian's archive, the stand-in servers) and records every
request it handled. No CONNECT: the hosts behind it reach https:// URLs only through no_proxy.
"""

import contextlib
import functools
import http.server
import threading
import urllib.error
import urllib.parse
import urllib.request

MIRROR_HOST = "driver-mirror.invalid"
# Request headers passed on (conditional requests keep apt's cache logic real); the rest are hop-by-hop or the proxy's.
_PASSED = {"if-modified-since", "if-none-match", "range", "if-range", "accept", "user-agent"}


# Onward connections as this machine makes them (through its own proxy, if it has one), without following
# redirects: the client follows them, through this proxy.
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_DIRECT = urllib.request.build_opener(_NoRedirect)


class _ProxyHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, requests, **kwargs):
        self._requests = requests
        super().__init__(*args, **kwargs)

    def _forward(self, send):
        url = urllib.parse.urlsplit(self.path)
        if url.scheme != "http":
            self.send_error(400, "a forward proxy request names an http:// URL")
            return
        self._requests.append(f"{self.command} {self.path}")
        if url.hostname == MIRROR_HOST:
            self.path = url.path or "/"
            send()
            return
        request = urllib.request.Request(
            self.path, method=self.command, headers={k: v for k, v in self.headers.items() if k.lower() in _PASSED}
        )
        try:
            response = _DIRECT.open(request, timeout=60)
        except urllib.error.HTTPError as error:
            response = error
        except OSError as error:
            self.send_error(502, f"{url.hostname}: {error}")
            return
        with response:
            body = response.read() if self.command == "GET" else b""
            self.send_response(response.status)
            for key, value in response.headers.items():
                if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(key, value)
            self.send_header(
                "Content-Length", str(len(body) if self.command == "GET" else response.headers.get("Content-Length", 0))
            )
            self.end_headers()
            self.wfile.write(body)

    def do_GET(self):
        self._forward(super().do_GET)

    def do_HEAD(self):
        self._forward(super().do_HEAD)

    def log_message(self, *args):
        pass


class Proxy:
    def __init__(self, url, requests):
        self.url = url
        self.requests = requests

    def environment(self):
        """What setup_proxy_env holds behind this proxy (the stand-in servers on 127.0.0.1 stay direct)."""
        return {"http_proxy": self.url, "https_proxy": self.url, "no_proxy": "localhost,127.0.0.1"}


@contextlib.contextmanager
def serving(mirror_dir):
    """Run the proxy with MIRROR_DIR as http://driver-mirror.invalid/; yield a Proxy."""
    requests = []
    handler = functools.partial(_ProxyHandler, directory=str(mirror_dir), requests=requests)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Proxy(f"http://127.0.0.1:{server.server_address[1]}", requests)
    finally:
        server.shutdown()
        server.server_close()
