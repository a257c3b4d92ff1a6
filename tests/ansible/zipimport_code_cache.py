"""Installed into the Ansible test host's Python (testhost.py): keeps the code that zipimport compiles, so that each
task does not compile Ansible's module_utils again.

Every Ansible task runs its module from a fresh zip (AnsiballZ), and zipimport keeps no bytecode for the source it
finds there: CPython 3.11's Lib/zipimport.py compiles a module when it looks it up (get_filename) and again when it
loads it, every time. On the test hosts that was a fifth of every task's CPU time, and the suite runs a couple of
thousand tasks. A real host pays it too; the playbooks neither read nor install anything this touches, so it lives on
the test host only. Each compiled module is kept under the hash of its source, the interpreter's bytecode version and
its optimization level (-O, as .pyc files keep them apart), and given the file name of the zip it came from, as a
fresh compile would be. Like a .pyc, a kept module does not repeat its compile-time warnings.
"""

import sys
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
    import tempfile

    version = zipimport._bootstrap_external.MAGIC_NUMBER + bytes([sys.flags.optimize])
    path = os.path.join(FOLDER, hashlib.sha256(version + source).hexdigest())
    try:
        with open(path, "rb") as kept:
            code = marshal.load(kept)
        if isinstance(code, type(_named.__code__)):
            return _named(code, pathname)
    except (OSError, EOFError, ValueError, TypeError):
        pass
    code = _compile_source(pathname, source)
    try:
        os.makedirs(FOLDER, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=FOLDER)
        try:
            with os.fdopen(handle, "wb") as out:
                marshal.dump(code, out)
            os.replace(partial, path)  # whole or not at all, for a task running beside this one
        except OSError:
            os.unlink(partial)
    except OSError:
        pass
    return code


zipimport._compile_source = _cached_compile_source
