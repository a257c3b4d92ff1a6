#!/opt/venv/bin/python
"""The jupyterlab image's HEALTHCHECK: the server's API answers on its port.

GET /api needs no token and returns only the server's version, so the check holds no secret. With TLS on, the
certificate names the public host rather than 127.0.0.1, so it is not verified here (the connection is local).
"""

import json
import os
import ssl
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("JUPYTER_PORT", "8888")
    tls = bool(os.environ.get("JUPYTER_CERTFILE"))
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/api"
    context = ssl._create_unverified_context() if tls else None
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as response:
            version = json.load(response)["version"]
    except (OSError, ValueError, KeyError) as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1
    print(f"healthy: jupyter_server {version} at {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
