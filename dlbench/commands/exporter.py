"""`dlbench exporter`: GPU and host metrics for Prometheus on /metrics, health on /health, liveness on /live."""

from __future__ import annotations

import os

from dlbench.commands.argtypes import one_word, port, seconds_between
from dlbench.exporter import EXPORTER_DEFAULT_PORT

ENV_LISTEN = "DLBENCH_EXPORTER_LISTEN"
ENV_PORT = "DLBENCH_EXPORTER_PORT"
ENV_INTERVAL = "DLBENCH_EXPORTER_INTERVAL"
ENV_WEB_CONFIG = "DLBENCH_EXPORTER_WEB_CONFIG_FILE"
DEFAULT_PORT = str(EXPORTER_DEFAULT_PORT)


_interval = seconds_between(0.05, 3600, "interval")


def add_arguments(parser) -> None:
    parser.epilog = (
        "Simulated mode, to try the exporter, Prometheus and the dashboards without a GPU: "
        "DLBENCH_FAKE_NVML=h100-sxm*8 dlbench exporter serves eight simulated, idle H100s (presets and scenario "
        "files: dlbench/nvml/simulated.py). Never set it on a GPU host."
    )
    parser.add_argument(
        "--listen",
        default=os.environ.get(ENV_LISTEN, "127.0.0.1"),
        metavar="ADDRESS",
        help=f"address to listen on (env {ENV_LISTEN}; default 127.0.0.1; any other address warns unless TLS is on)",
    )
    parser.add_argument(
        "--port",
        type=port,
        default=os.environ.get(ENV_PORT, DEFAULT_PORT),
        help=f"port to listen on (env {ENV_PORT}; default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--interval",
        type=_interval,
        default=os.environ.get(ENV_INTERVAL, "5"),
        metavar="SECONDS",
        help=f"seconds between samples (env {ENV_INTERVAL}; default 5)",
    )
    parser.add_argument(
        "--hostname",
        type=one_word("hostname"),
        default=None,
        metavar="NAME",
        help="value of the hostname label (default: $NODE_NAME, else the host's name)",
    )
    parser.add_argument(
        "--web-config-file",
        default=os.environ.get(ENV_WEB_CONFIG),
        metavar="FILE",
        help=f"Prometheus web-config YAML with tls_server_config and basic_auth_users (env "
        f"{ENV_WEB_CONFIG}; the format node_exporter's --web.config.file reads)",
    )
    parser.add_argument(
        "--dcgm-compat",
        action="store_true",
        help="also expose dcgm-exporter's field names (DCGM_FI_DEV_*, in its units and types; per MIG "
        "GPU instance too) and answer in its text format; the profiling names (DCGM_FI_PROF_*) "
        "only on Hopper and newer, from NVML GPM: before Hopper only DCGM's profiling module has "
        "them, so dashboard panels on them stay empty there",
    )
    parser.add_argument(
        "--nvlink-per-link",
        action="store_true",
        help="also expose NVLink state, traffic and errors per link (6 series per link, 864 for 8 "
        "H100s); by default NVLink is served as per-GPU totals",
    )


def run(args) -> int:
    from dlbench.exporter.server import run_exporter

    return run_exporter(
        args.listen,
        args.port,
        args.interval,
        args.dcgm_compat,
        hostname=args.hostname,
        web_config_file=args.web_config_file,
        nvlink_per_link=args.nvlink_per_link,
    )
