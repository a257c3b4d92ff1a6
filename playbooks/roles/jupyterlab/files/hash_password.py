"""Print an argon2 hash of $JUPYTERLAB_PASSWORD for jupyter_server, reusing the stored one while it still matches.

Argon2 hashes are salted, so hashing again on every run would rewrite the config and restart the server for nothing.
Usage: python hash_password.py CONFIG_JSON   (runs in the environment that has jupyter_server)
"""

import json
import os
import sys

from jupyter_server.auth import passwd, passwd_check


def stored_hash(config_path):
    try:
        with open(config_path, encoding="utf-8") as config_file:
            config = json.load(config_file)
    except (OSError, ValueError):
        return None
    return config.get("PasswordIdentityProvider", {}).get("hashed_password")


def main():
    password = os.environ["JUPYTERLAB_PASSWORD"]
    current = stored_hash(sys.argv[1])
    if current and current.startswith("argon2:") and passwd_check(current, password):
        print(current)
    else:
        print(passwd(password, algorithm="argon2"))


if __name__ == "__main__":
    main()
