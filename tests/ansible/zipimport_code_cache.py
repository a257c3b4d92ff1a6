"""Installed into the Ansible test host's Python (testhost.py): keeps the code that zipimport compiles, so that each
task does not compile Ansible's module_utils again.

Every Ansible task runs its module from a fresh zip (AnsiballZ), and zipimport keeps no bytecode for the source it
finds there: CPython 3.11's Lib/zipimport.py compiles a module when it looks it up (get_filename) and again when it
loads it, every time. On the test hosts that was a fifth of every task's CPU time, and the suite runs a couple of
thousand tasks. A real host pays it too; it changes nothing a playbook can observe, only the test's cost, so it lives on
the test host and nowhere in the playbooks. Each compiled module is kept under the hash of its source and the
interpreter's bytecode version, and given the file name of the zip it came from, as a fresh compile would be.
"""

import zipimport

FOLDER = "/var/cache/zipimport-code"
_compile_source = zipimport._compile_source


def _named(code, filename):
    """CODE and the code objects inside it, with co_filename FILENAME (for tracebacks)."""
    inner = tuple(_named(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=inner)


def _cached_compile_source(pathname, source):
    import hashlib
    import marshal
    import os

    key = hashlib.sha256(zipimport._bootstrap_external.MAGIC_NUMBER + source).hexdigest()
    path = os.path.join(FOLDER, key)
    try:
        with open(path, "rb") as kept:
            return _named(marshal.load(kept), pathname)
    except (OSError, EOFError, ValueError, TypeError):
        pass
    code = _compile_source(pathname, source)
    try:
        os.makedirs(FOLDER, exist_ok=True)
        partial = f"{path}.{os.getpid()}"
        with open(partial, "wb") as out:
            marshal.dump(code, out)
        os.replace(partial, path)  # whole or not at all, for a task running beside this one
    except OSError:
        pass
    return code


zipimport._compile_source = _cached_compile_source
