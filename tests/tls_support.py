"""A self-signed certificate for 127.0.0.1 and a Prometheus web-config file that uses it, for tests and benchmarks.

The certificate comes from the real openssl, the password hash from bcrypt (cost 10, what `htpasswd -B` uses).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed_web_config(folder: Path, user: str, password: str) -> Path:
    """folder/server.crt, server.key and web.yml (TLS with that certificate, basic auth for `user`); web.yml's path."""
    import bcrypt

    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "server.key"),
         "-out", str(folder / "server.crt")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    config = folder / "web.yml"
    config.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  {user}: '{hashed}'\n"
    )
    return config
