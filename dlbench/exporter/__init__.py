"""The Prometheus exporter (`dlbench exporter`): the metric catalogue (`catalogue`, the single table of metric names
that the collector and docs/metrics.md are both generated from), the background sampler of GPU and host readings
(`sampler`, `host`; a run's telemetry samples through it too), the collector, the HTTP server and its web config.
"""

# Not 9835 (nvidia_gpu_exporter's) nor any port of 9100-9999: that range of Prometheus's default port allocations
# (github.com/prometheus/prometheus/wiki/Default-port-allocations) is fully taken, and Prometheus's guide to writing
# exporters asks exporters without an allocation to stay outside it (prometheus.io/docs/instrumenting/
# writing_exporters/#port-numbers). Below Linux's ephemeral range (32768-60999), so no outgoing connection holds it.
EXPORTER_DEFAULT_PORT = 19835
