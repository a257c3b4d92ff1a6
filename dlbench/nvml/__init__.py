"""Reading NVIDIA GPUs through NVML: the reader (`reader.py`), the metric families it reads per GPU (`fields`, `gpm`,
`health`, `interconnect`, `mig`, `processes`), what is read once per start (`static`), XID codes (`xid`), and a
simulated NVML (`simulated`) for trying the exporter and dashboards without a GPU.

Below everything that uses GPUs (the exporter, run-time telemetry, validate, hostspec, train); imports none of them.
"""
