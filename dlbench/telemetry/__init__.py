"""GPU and host telemetry: NVML and psutil readings, a background sampler, Prometheus exposition, run hooks.

`catalogue` is the single table of metric names; the collector and docs/metrics.md are both generated from it.
"""
