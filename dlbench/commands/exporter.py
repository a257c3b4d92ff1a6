"""`dlbench exporter`: serve GPU and host metrics for Prometheus on /metrics, liveness on /health."""

from __future__ import annotations

import os

from dlbench.commands.argtypes import port, seconds_between

ENV_LISTEN = "DLBENCH_EXPORTER_LISTEN"
ENV_PORT = "DLBENCH_EXPORTER_PORT"
ENV_INTERVAL = "DLBENCH_EXPORTER_INTERVAL"


_interval = seconds_between(0.05, 3600, "interval")


def add_arguments(parser) -> None:
    parser.add_argument("--listen", default=os.environ.get(ENV_LISTEN, "127.0.0.1"), metavar="ADDRESS",
                        help=f"address to listen on (env {ENV_LISTEN}; default 127.0.0.1; 0.0.0.0 exposes "
                             "unauthenticated metrics to the network)")
    parser.add_argument("--port", type=port, default=os.environ.get(ENV_PORT, "9835"),
                        help=f"port to listen on (env {ENV_PORT}; default 9835)")
    parser.add_argument("--interval", type=_interval, default=os.environ.get(ENV_INTERVAL, "5"), metavar="SECONDS",
                        help=f"seconds between samples (env {ENV_INTERVAL}; default 5)")
    parser.add_argument("--dcgm-compat", action="store_true",
                        help="also expose the dcgm-exporter default names (DCGM_FI_DEV_*) for existing dashboards")


def run(args) -> int:
    from dlbench.telemetry.exporter import run_exporter

    return run_exporter(args.listen, args.port, args.interval, args.dcgm_compat)
