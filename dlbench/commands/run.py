"""`dlbench run WORKLOAD`: train a reference workload and report what the hardware did."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("workload", help="workload name (see 'dlbench list')")


def run(args) -> int:
    from dlbench.workloads import get_workload

    get_workload(args.workload)
    from dlbench.errors import UserError

    raise UserError("dlbench run is being built (issue 2)")
