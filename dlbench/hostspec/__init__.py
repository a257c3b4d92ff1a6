"""A declared host spec, checked: the server that was ordered (hardware and software, in a small YAML file) against
the server this is. `spec` reads the file, `facts` reads the host through one narrow reader (`reader`), `compare`
turns the two into PASS/WARN/FAIL/SKIP checks (the verdict model of dlbench/checks.py), `write` writes a host's spec.
"""
