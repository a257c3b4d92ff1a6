"""What `dlbench run` needs from telemetry: its command-line options and the observers they ask for.

dlbench/commands/run.py calls `add_run_arguments(parser)` and, before the run starts, `observers_from_args(args)`.
Ports are bound and URLs checked here, so bad input fails before any training work.
"""

from __future__ import annotations

from urllib.parse import urlparse

from dlbench.commands.argtypes import port, seconds_between
from dlbench.errors import UserError
from dlbench.train.observers import RunObserver


_seconds = seconds_between(0.05, 60, "telemetry interval")


def add_run_arguments(parser) -> None:
    group = parser.add_argument_group("telemetry")
    group.add_argument("--metrics-port", type=port, metavar="PORT",
                       help="serve live training and GPU metrics for Prometheus on this port while the run lasts")
    group.add_argument("--metrics-listen", default="127.0.0.1", metavar="ADDRESS",
                       help="address for --metrics-port (default 127.0.0.1)")
    group.add_argument("--pushgateway", metavar="URL",
                       help="push an end-of-run summary to this Prometheus Pushgateway (e.g. http://pg:9091)")
    group.add_argument("--telemetry-interval", type=_seconds, default=0.5, metavar="SECONDS",
                       help="seconds between GPU/host samples during the run (default 0.5)")
    group.add_argument("--no-telemetry", action="store_true",
                       help="do not sample GPU and host during the run (no telemetry section in the result)")


def _check_pushgateway(url: str) -> str:
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UserError(f"--pushgateway needs an http(s) URL such as http://pushgateway:9091, not {url!r}")
    try:
        parsed.port
    except ValueError:
        raise UserError(f"--pushgateway URL has a bad port: {url!r}") from None
    return parsed.geturl()


def observers_from_args(args) -> list[RunObserver]:
    from dlbench.telemetry.observers import LiveMetricsObserver, PushgatewayObserver, TelemetryObserver

    observers: list[RunObserver] = []
    telemetry = None
    if not getattr(args, "no_telemetry", False):
        telemetry = TelemetryObserver(interval=getattr(args, "telemetry_interval", 0.5))
        observers.append(telemetry)
    pushgateway = getattr(args, "pushgateway", None)
    url = _check_pushgateway(pushgateway) if pushgateway else None
    if getattr(args, "metrics_port", None):
        observers.append(LiveMetricsObserver(args.metrics_port, getattr(args, "metrics_listen", "127.0.0.1"),
                                             telemetry=telemetry, precision=str(getattr(args, "precision", "") or "")))
    if url:
        observers.append(PushgatewayObserver(url, telemetry=telemetry))
    return observers
