"""jupyter_server settings of the dlbench/jupyterlab image (installed as /etc/jupyter/jupyter_server_config.py).

Authentication is always on: JUPYTER_TOKEN (a token you choose), JUPYTER_PASSWORD_HASH (an argon2 hash from
`python -c "from jupyter_server.auth import passwd; print(passwd())"`), or neither, and the server makes a random
token and prints it in its log. An empty JUPYTER_TOKEN without a password would turn authentication off: the
server refuses to start instead.

TLS is optional: JUPYTER_CERTFILE and JUPYTER_KEYFILE (both, mounted read-only) switch the server to https.
"""

import os
import sys

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file


def _refuse(message: str) -> None:
    sys.exit(f"jupyter: error: {message}")


# 0.0.0.0 inside the container so that a published port reaches it; publish it on the host's 127.0.0.1
# (docker run -p 127.0.0.1:8888:8888) or behind a TLS proxy.
c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = int(os.environ.get("JUPYTER_PORT", "8888"))
c.ServerApp.open_browser = False
c.ServerApp.allow_root = False
c.ServerApp.root_dir = "/workspace"
# Handlers of extensions that forget their auth decorator must still ask for credentials.
c.ServerApp.allow_unauthenticated_access = False

password_hash = os.environ.get("JUPYTER_PASSWORD_HASH", "").strip()
token = os.environ.get("JUPYTER_TOKEN")
if password_hash:
    c.PasswordIdentityProvider.hashed_password = password_hash
    c.PasswordIdentityProvider.allow_password_change = False
elif token is not None and not token.strip():
    _refuse(
        "JUPYTER_TOKEN is empty and JUPYTER_PASSWORD_HASH is not set: the server will not run without "
        "authentication (unset JUPYTER_TOKEN for a random token)"
    )

certfile = os.environ.get("JUPYTER_CERTFILE", "")
keyfile = os.environ.get("JUPYTER_KEYFILE", "")
if bool(certfile) != bool(keyfile):
    _refuse("set both JUPYTER_CERTFILE and JUPYTER_KEYFILE for TLS, or neither")
if certfile:
    for path in (certfile, keyfile):
        if not os.access(path, os.R_OK):
            _refuse(f"cannot read {path} (mount it read-only into the container)")
    c.ServerApp.certfile = certfile
    c.ServerApp.keyfile = keyfile
