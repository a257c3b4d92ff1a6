"""Generate dlbench's Grafana dashboards with grafana-foundation-sdk, and read their queries back.

`python dashboards/generate.py` writes dashboards/grafana/dashboards/*.json from `fleet`, `node` and `training`;
`queries` reads those JSON files (no SDK needed) for the tests and the PNG renderer.
"""
