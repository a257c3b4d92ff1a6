"""What `dlbench run` needs from telemetry: its command-line options and the observers they ask for.

dlbench/commands/run.py calls `add_run_arguments(parser)` and, before the run starts, `observers_from_args(args)`.
Ports are bound and URLs checked here, so bad input fails before any training work.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from dlbench.commands.argtypes import port, seconds_between
from dlbench.errors import UserError
from dlbench.train.observers import RunObserver


_seconds = seconds_between(0.05, 60, "telemetry interval")


def add_run_arguments(parser) -> None:
    group = parser.add_argument_group("telemetry")
    group.add_argument(
        "--metrics-port",
        type=port,
        metavar="PORT",
        help="serve live training and GPU metrics for Prometheus on this port while the run lasts "
        "(under torchrun: PORT + local rank for each rank)",
    )
    group.add_argument(
        "--metrics-listen",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address for --metrics-port (default 127.0.0.1)",
    )
    group.add_argument(
        "--pushgateway",
        metavar="URL",
        help="push an end-of-run summary to this Prometheus Pushgateway (e.g. http://pg:9091)",
    )
    group.add_argument(
        "--telemetry-interval",
        type=_seconds,
        default=0.5,
        metavar="SECONDS",
        help="seconds between GPU/host samples during the run (default 0.5)",
    )
    group.add_argument(
        "--no-telemetry",
        action="store_true",
        help="do not sample GPU and host during the run (no telemetry section in the result)",
    )


def _check_pushgateway(url: str) -> str:
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UserError(f"--pushgateway needs an http(s) URL such as http://pushgateway:9091, not {url!r}")
    try:
        parsed.port
    except ValueError:
        raise UserError(f"--pushgateway URL has a bad port: {url!r}") from None
    return parsed.geturl()


def _rank_env(name: str) -> int:
    """RANK / LOCAL_RANK as torchrun sets them in each worker (0 outside torchrun)."""
    try:
        return int(os.environ.get(name, "0"))
    except ValueError:
        raise UserError(f"{name} must be a whole number (torchrun sets it), not {os.environ[name]!r}") from None


def observers_from_args(args) -> list[RunObserver]:
    """The run's observers. Under torchrun each rank samples its own GPU and serves its own port (PORT + local rank,
    so that the ranks of one host do not clash); only rank 0 pushes the run's summary, as only it writes the result."""
    from dlbench.telemetry.observers import LiveMetricsObserver, PushgatewayObserver, TelemetryObserver

    rank, local_rank = _rank_env("RANK"), _rank_env("LOCAL_RANK")

    observers: list[RunObserver] = []
    telemetry = None
    if not getattr(args, "no_telemetry", False):
        telemetry = TelemetryObserver(interval=getattr(args, "telemetry_interval", 0.5))
        observers.append(telemetry)
    pushgateway = getattr(args, "pushgateway", None)
    url = _check_pushgateway(pushgateway) if pushgateway else None
    if getattr(args, "metrics_port", None):
        metrics_port = args.metrics_port + local_rank
        if metrics_port > 65535:
            raise UserError(f"--metrics-port {args.metrics_port} + local rank {local_rank} is past port 65535")
        observers.append(
            LiveMetricsObserver(
                metrics_port,
                getattr(args, "metrics_listen", "127.0.0.1"),
                telemetry=telemetry,
                precision=str(getattr(args, "precision", "") or ""),
                rank=rank,
            )
        )
    if url and rank == 0:
        observers.append(PushgatewayObserver(url, telemetry=telemetry))
    return observers
