"""TLS and basic authentication from a Prometheus web-config file (the exporter-toolkit format).

node_exporter, dcgm-exporter and Prometheus itself read the same YAML through `--web.config.file`
(https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md):

    tls_server_config:
      cert_file: server.crt        # paths relative to this file
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
      client_ca_file: ca.crt
      min_version: TLS12           # optional: TLS10..TLS13
    basic_auth_users:
      prometheus: $2y$10$...       # bcrypt hash, e.g. `htpasswd -nBC 10 "" | tr -d ':\\n'`

One file serves every exporter on a host. A key this exporter does not implement is an error, never ignored: a
security setting that silently does nothing is worse than none.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dlbench.errors import UserError

_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version"}
# exporter-toolkit's client_auth_type values (Go's tls.ClientAuthType) that Python's ssl can honour exactly. Go's
# RequestClientCert and RequireAnyClientCert accept a certificate without verifying it, which ssl cannot do: they
# are refused rather than silently made stricter or looser.
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# bcrypt's modular crypt format: $2a$/$2b$/$2y$, a two-digit cost, then 22 characters of salt and 31 of hash in
# bcrypt's base64 alphabet (60 characters in all). The cost is 4..31 as in Go's golang.org/x/crypto/bcrypt
# (MinCost, MaxCost), which exporter-toolkit uses. Checked when the file is read: the bcrypt package raises
# ValueError("Invalid salt") on anything else, which would turn every scrape into a 500 instead of one clear line.
_BCRYPT_HASH = re.compile(r"\$2[aby]\$(?P<cost>\d\d)\$[./A-Za-z0-9]{53}")
_BCRYPT_COST = (4, 31)
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


# exporter-toolkit's web/cache.go: at most this many checked credentials are remembered; when full, a tenth of them
# (chosen at random) are forgotten at once
AUTH_CACHE_SIZE = 100


@dataclass
class WebConfig:
    """TLS context and basic-auth users; `authorized` checks a request's credentials as exporter-toolkit does.

    exporter-toolkit (web/handler.go, ServeHTTP; https://github.com/prometheus/exporter-toolkit) runs one bcrypt check
    at a time (its bcryptMtx) and caches the outcome, success or failure, per (user, hash, password) in a bounded cache
    (web/cache.go). Mirrored here: a burst of wrong passwords costs one core at most instead of every core, a scraper
    retrying the same wrong password costs nothing after the first, and an unknown user is checked against a hash too
    so that timing does not tell which user names exist.
    """

    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    _checked: dict = field(default_factory=dict)  # sha256(user, hash, password) -> bool, at most AUTH_CACHE_SIZE
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the cache
    _bcrypt_lock: threading.Lock = field(default_factory=threading.Lock)  # one bcrypt check at a time

    def authorized(self, header: str | None) -> bool:
        """Whether an Authorization header carries a configured user and password (always True without users)."""
        verdict = self.known_verdict(header)
        return self._check(header) if verdict is None else verdict

    def known_verdict(self, header: str | None) -> bool | None:
        """The answer where no bcrypt check is needed (no users, no or malformed credentials, a credential checked
        before); None where only a bcrypt check can tell."""
        if not self.users:
            return True
        credential = self._credential(header)
        if credential is None:
            return False
        with self._lock:
            return self._checked.get(credential[3])

    def _credential(self, header: str | None) -> tuple[str, str, bytes, bytes] | None:
        """(user, password, the hash to check against, cache key) from a Basic header; None if it is not one."""
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        stored = self.users.get(user) or self._dummy_hash()
        return user, password, stored, hashlib.sha256(b"\0".join((user.encode(), stored, password.encode()))).digest()

    def _check(self, header: str | None) -> bool:
        user, password, stored, key = self._credential(header)
        import bcrypt

        with self._bcrypt_lock:  # ~50 ms by design: in parallel, a burst of guesses would take every core
            matches = bcrypt.checkpw(password.encode(), stored)
        result = user in self.users and matches
        with self._lock:
            if len(self._checked) >= AUTH_CACHE_SIZE:
                for old in random.sample(list(self._checked), max(len(self._checked) // 10, 1)):
                    del self._checked[old]
            self._checked[key] = result
        return result

    def _dummy_hash(self) -> bytes:
        return next(iter(self.users.values()))


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"cannot read web config {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise UserError(f"web config {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"web config {path} must be a mapping of tls_server_config and basic_auth_users")
    return data


def _tls_context(path: Path, tls: dict) -> ssl.SSLContext:
    unknown = set(tls) - _TLS_KEYS
    if unknown:
        raise UserError(
            f"web config {path}: tls_server_config.{sorted(unknown)[0]} is not supported "
            f"(supported: {', '.join(sorted(_TLS_KEYS))})"
        )
    if not tls.get("cert_file") or not tls.get("key_file"):
        raise UserError(f"web config {path}: tls_server_config needs cert_file and key_file")
    base = path.parent
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    version = tls.get("min_version", "TLS12")
    if version not in _TLS_VERSIONS:
        raise UserError(f"web config {path}: min_version must be one of {', '.join(_TLS_VERSIONS)}, not {version!r}")
    context.minimum_version = _TLS_VERSIONS[version]
    auth = tls.get("client_auth_type", "NoClientCert")
    if auth not in _CLIENT_AUTH:
        raise UserError(f"web config {path}: client_auth_type must be one of {', '.join(_CLIENT_AUTH)}")
    try:
        context.load_cert_chain(base / tls["cert_file"], base / tls["key_file"])
    except (OSError, ssl.SSLError) as error:
        raise UserError(f"web config {path}: cannot load cert_file/key_file: {error}") from None
    context.verify_mode = _CLIENT_AUTH[auth]
    if tls.get("client_ca_file"):
        try:
            context.load_verify_locations(base / tls["client_ca_file"])
        except (OSError, ssl.SSLError) as error:
            raise UserError(f"web config {path}: cannot load client_ca_file: {error}") from None
    elif auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        raise UserError(f"web config {path}: client_auth_type {auth} needs client_ca_file")
    return context


def load_web_config(path_text: str) -> WebConfig:
    path = Path(path_text)
    data = _read_yaml(path)
    unknown = set(data) - {"tls_server_config", "basic_auth_users"}
    if unknown:
        raise UserError(
            f"web config {path}: {sorted(unknown)[0]} is not supported (supported: tls_server_config, basic_auth_users)"
        )
    config = WebConfig()
    if data.get("tls_server_config"):
        config.tls = _tls_context(path, data["tls_server_config"])
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise UserError(f"web config {path}: basic_auth_users must map user names to bcrypt hashes")
    for user, hashed in users.items():
        match = _BCRYPT_HASH.fullmatch(hashed) if isinstance(hashed, str) else None
        if match is None or not _BCRYPT_COST[0] <= int(match["cost"]) <= _BCRYPT_COST[1]:
            raise UserError(
                f"web config {path}: the password of {user!r} must be a bcrypt hash ($2y$10$ and 53 characters, "
                f"cost {_BCRYPT_COST[0]}-{_BCRYPT_COST[1]})"
            )
        config.users[str(user)] = hashed.encode()
    if config.users:
        try:
            import bcrypt  # noqa: F401
        except ImportError:
            raise UserError("basic_auth_users needs the bcrypt package: pip install bcrypt") from None
    return config
