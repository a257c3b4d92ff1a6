"""`dlbench validate summarize DIR`: a fleet's reports, led by what an operator acts on.

The console leads with the hosts counted by verdict per check family, then the failed checks with their reason, the
GPUs below the fleet median of their model, and the versions on which hosts differ from the majority (VBIOS, driver,
CUDA, torch, NCCL, kernel: what the reports carry), each list cut after a screenful; the full host-by-check matrix is
in --json, --csv and `dlbench report --html`, so the view reads the same at 5 hosts and at 1,000.

Hosts are grouped by GPU model (identical hardware only is compared). For every per-GPU figure of the compute and
memory checks, a GPU more than the outlier fraction below the median of all GPUs of its model in the fleet is named:
5% below the peers (the `--outlier` default) is far outside the run-to-run spread of these fixed-shape synthetic
benchmarks on identical hardware, so a GPU named has a cause to find (clocks, power cap, thermals, a degraded link).

A summary of 10,000 reports (1.3 GB of JSON) is meant to take seconds: the reports are parsed in parallel, without the
checks' supporting data (cut out unparsed), and each worker process reduces its reports to a `Digest`, the few values
a summary reads with the host's matrix row already encoded, so the one main process only adds them up and writes.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import gc
import json
import os
import statistics
from collections import Counter
from itertools import compress, count
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from dlbench import atomic
from dlbench.errors import UserError
from dlbench.checks import FAIL
from dlbench.validate.report import SCHEMA_VERSION

COMPARED_FAMILIES = ("compute", "memory", "interconnect", "burnin", "training")


def is_report(data) -> bool:
    """Whether a JSON document says it is a `dlbench validate` report (other JSON files are left out)."""
    return (
        isinstance(data, dict) and isinstance(data.get("tool"), dict) and data["tool"].get("name") == "dlbench validate"
    )


def check_report(data: dict, path) -> dict:
    """`data`, a report by its own word, checked for what a summary needs; refused with one line naming `path`."""
    if data.get("schema_version") != SCHEMA_VERSION:
        raise UserError(
            f"{path}: report schema_version {data.get('schema_version')}, this dlbench reads {SCHEMA_VERSION}"
        )
    problem = _malformed(data)
    if problem:
        raise UserError(f"{path}: not a complete dlbench validate report ({problem})")
    data["_path"] = str(path)
    return data


# Reading is most of a summary's time (a report with its temperature series is 100 KiB and more; 10,000 of them are
# over a gigabyte of JSON), so from this many files on they are read in parallel, one process per core this process
# may run on, and each process sends back only the report's digest (below), not the report.
PARALLEL_FROM = 200
# Files handed to a worker at a time: a few tens of milliseconds of work, so that no worker is left with a long last
# chunk while the others are done, and the hand-over (one pickle each way) costs nothing next to it.
CHUNK = 32

# The key whose blocks no summary reads: each check's supporting data (sweeps, per-link counters, and the NVML time
# series under load: temperature, clock and power per GPU and second, four fifths of a report's bytes)
UNREAD_KEY = b'"data": '


def without_unread_blocks(raw: bytes) -> bytes:
    """`raw`, an indented JSON document, with the value of every "data" key that opens a block replaced by null.

    Parsing what no summary reads was most of a summary's time. JSON strings cannot hold a raw newline, so in an
    indented document (json.dumps(indent=N), as `dlbench validate --json` writes) the block that opens at a key line
    indented by K spaces ends at the first line that is exactly K spaces and the closing bracket: found with
    bytes.find, without parsing what is between. A document laid out otherwise (compact) is returned as it is and
    parsed whole; a cut that did not land on JSON is parsed whole as well (see `_parse`)."""
    parts, done, search = [], 0, 0
    while (key := raw.find(UNREAD_KEY, search)) != -1:
        start = search = key + len(UNREAD_KEY)
        opener = raw[start : start + 2]
        if opener not in (b"{\n", b"[\n"):
            continue
        indent = raw[raw.rfind(b"\n", 0, key) + 1 : key]
        if indent.strip(b" "):  # the key is not the first thing on its line: not the layout this relies on
            continue
        closer = b"\n" + indent + (b"}" if opener[:1] == b"{" else b"]")
        end = raw.find(closer, start)
        if end == -1:
            return raw
        parts += [raw[done:start], b"null"]
        done = search = end + len(closer)
    if not parts:
        return raw
    parts.append(raw[done:])
    return b"".join(parts)


def _parse(raw: bytes):
    try:
        return json.loads(without_unread_blocks(raw))
    except ValueError:
        return json.loads(raw)  # the whole document, for the error message a damaged file deserves


class Digest(NamedTuple):
    """What a summary reads of one report, taken where the report was parsed. A worker process sends back these few
    values, its matrix row already encoded, instead of the report's thousands of objects: unpickling those, walking
    them and encoding the matrix in the one main process took longer than parsing the reports did in parallel."""

    host: str | None
    model: str
    verdict: str
    entry: str  # the host's entry in the summary's "hosts" (matrix row, versions), as compact JSON
    csv_head: str  # the host's first cells of the CSV matrix (host, model, verdict, versions), as CSV text
    check_ids: tuple  # the ids of the host's checks, sorted: the CSV matrix's order of checks
    csv_cells: str  # each check's verdict and measured value in `check_ids` order, two cells each, as CSV text
    versions: dict  # name in VERSIONS -> this host's version, or None where the report does not carry it
    families: tuple  # (family, the worst verdict of its checks), in the order the families ran
    failures: list  # the failed checks, as `failures` lists them
    figures: list  # (check id, GPUs, values) of each rate compared with the fleet median


COMPACT = (",", ":")  # the JSON separators of `--json`: at 10,000 hosts the matrix is tens of MB
_ENCODER = json.JSONEncoder(separators=COMPACT)  # json.dumps with separators builds an encoder on every call

# Values most reports share (check ids, GPU lists, versions, family verdicts), one object each: a worker's answer for
# a chunk of reports is pickled in one go, and pickle writes an object it has already written as a reference, so the
# main process unpickles each shared value once a chunk, not once a report.
_SHARED: dict = {}


def _shared(value):
    return _SHARED.setdefault(value, value)


def digest(report: dict) -> Digest:
    """`report`, checked by `check_report`, reduced to what a summary reads of it."""
    host, verdict, model = report["host"], report["verdict"], gpu_model(report)
    read = _ReadChecks(report["checks"])
    row, versions = read.row, {name: _shared(value) for name, value in host_versions(report).items()}
    entry = {"host": host, "model": model, "verdict": verdict, "report": report["_path"]}
    check_ids = _shared(tuple(sorted(row)))
    head, cells = _csv_row([host, model, verdict, *(versions[name] or "" for name in VERSIONS)], row, check_ids)
    return Digest(
        host,
        _shared(model),
        verdict,
        _ENCODER.encode({**entry, "checks": row, "versions": versions}),
        head,
        check_ids,
        cells,
        versions,
        _shared(tuple(read.families.items())),
        read.failures(host),
        read.figures,
    )


class _LastLine:
    """A file for csv.writer that keeps only the line written last."""

    line = ""

    def write(self, text: str) -> None:
        self.line = text


def _csv_texts(rows: list[list]) -> list[str]:
    """Each row of cells as csv.writer writes it (quoted where it must be), without the line end: CSV quotes each cell
    on its own, so rows joined from such pieces with commas are the rows csv.writer writes."""
    last = _LastLine()
    writer = csv.writer(last)
    texts = []
    for cells in rows:
        writer.writerow(cells)
        texts.append(last.line.removesuffix("\r\n"))
    return texts


def _csv_row(head: list, row: dict, check_ids: tuple) -> tuple[str, str]:
    """(the head's cells, each check's verdict and measured value in `check_ids` order) as CSV text: one csv.writer
    row, cut after the head's cells where no cell was quoted (no quote in the text: no cell holds a comma), else
    written in two pieces."""
    cells = [cell for check in check_ids for cell in _verdict_and_value(row[check])]
    (text,) = _csv_texts([head + cells])
    if '"' not in text:
        pieces = text.split(",", len(head))
        return ",".join(pieces[: len(head)]), pieces[len(head)] if cells else ""
    head_text, cells_text = _csv_texts([head, cells])
    return head_text, cells_text


def _verdict_and_value(check: dict) -> tuple:
    return check["verdict"], "" if check["measured"] is None else check["measured"]


def _cells_by_check(d: Digest) -> dict[str, str]:
    """Check id -> its two cells of CSV text, from a digest's `csv_cells` (read back with csv.reader, which gives
    each cell's text as written: written again, each pair is what csv.writer wrote)."""
    (fields,) = csv.reader([d.csv_cells]) if d.csv_cells else ([],)
    pairs = _csv_texts([fields[i : i + 2] for i in range(0, len(fields), 2)])
    return dict(zip(d.check_ids, pairs))


def _digest_file(path: str) -> tuple[str, object]:
    """("report", the file's Digest), ("other", None) for a JSON file that is not a report, or ("error", the one line
    that refuses the folder)."""
    try:
        with open(path, "rb") as file:
            data = _parse(file.read())
    except (OSError, ValueError) as error:
        return "error", f"{path}: not a readable JSON report ({error})"
    if not is_report(data):  # other JSON files (a summary written earlier) are not reports
        return "other", None
    try:
        return "report", digest(check_report(data, path))
    except UserError as error:
        return "error", str(error)


@contextlib.contextmanager
def _no_cycle_collection():
    """Python's cycle collector off: a summary makes millions of objects (parsed JSON, digests) that hold no reference
    cycles and are freed by reference counting alone, while the collector, run every few hundred allocations, keeps
    traversing all those still alive: with it on, taking back and summing up 10,000 digests took twice as long, and
    parsing and digesting a report a fifth longer."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parts(path: Path) -> tuple[str, ...]:
    return path.parts  # compared as a tuple, in C: the order of Path's own comparison, which runs in Python


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on (taskset, a container's cpuset)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_digests(folder: Path) -> list[Digest]:
    """The digest of every report under `folder`, in path order; refused with one line at the first bad file."""
    return list(_read_digests(folder))


def _read_digests(folder: Path) -> Iterator[Digest]:
    """`load_digests` one at a time, as the workers send them back: the main process adds each up while the workers
    read the next, instead of alone after them."""
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder of reports")
    # in Path order (a path's parts compared in turn), handed to the workers as text: it pickles in a fraction of the
    # time a Path does
    paths = [str(path) for path in sorted(folder.rglob("*.json"), key=_parts)]
    found = False
    for kind, payload in _answers(paths):  # in path order: the first bad file is the one named
        if kind == "error":
            raise UserError(payload)
        if kind == "report":
            found = True
            yield payload
    if not found:
        raise UserError(f"{folder}: no dlbench validate reports (*.json) found")


def _answers(paths: list[str]) -> Iterator[tuple[str, object]]:
    """`_digest_file` of each path, in their order."""
    workers = min(_usable_cores(), 16)
    if len(paths) >= PARALLEL_FROM and workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        # the workers hold each report only while digesting it: no cycle collection there either
        with ProcessPoolExecutor(workers, initializer=gc.disable) as pool:
            yield from pool.map(_digest_file, paths, chunksize=CHUNK)
    else:
        yield from map(_digest_file, paths)


def _malformed(report: dict) -> str | None:
    """What a summary needs of a report and this one lacks (a truncated or hand-edited file), or None. The full
    JSON Schema (dlbench/data/validate-report.schema.json) needs `jsonschema`, which is a test dependency only."""
    if not isinstance(report.get("host"), (str, type(None))) or not isinstance(report.get("verdict"), str):
        return "no host or verdict"
    if not isinstance(report.get("environment", {}), dict) or not isinstance(report.get("checks"), list):
        return "no list of checks"
    gpus = report.get("environment", {}).get("gpus", [])
    if not isinstance(gpus, list) or not all(
        isinstance(gpu, dict) and isinstance(gpu.get("name"), str) for gpu in gpus
    ):
        return "environment.gpus is not a list of named GPUs"
    firmware = report["environment"].get("firmware") or {}
    if not isinstance(firmware, dict) or not isinstance(firmware.get("nic") or {}, dict):
        return "environment.firmware is not an object of NIC versions"
    if not all(type(v) is str for v in [*(firmware.get("nic") or {}).values(), firmware.get("cpu_microcode") or ""]):
        return "environment.firmware holds a version that is not text"
    for check in report["checks"]:  # a summary reads tens of thousands of checks: plain tests, no generators
        if not (
            type(check) is dict
            and type(check.get("id")) is str
            and type(check.get("family")) is str
            and type(check.get("verdict")) is str
        ):
            return "a check without id, family or verdict"
        if type(check.get("per_gpu", {})) is not dict:
            return f"check {check['id']}: per_gpu is not an object"
    return None


def gpu_model(report: dict) -> str:
    names = sorted({gpu["name"] for gpu in report.get("environment", {}).get("gpus", [])})
    return " + ".join(names) if names else "no GPU"


def rate_figures(report: dict) -> list[tuple[str, tuple, list]]:
    """(check id, GPUs, values) of each of this report's per-GPU rates that the fleet median compares."""
    return _ReadChecks(report["checks"]).figures


_COMPARED = frozenset(COMPARED_FAMILIES)
_NUMBERS = frozenset((int, float))  # JSON gives exactly int, float or bool: the type test tells numbers from true/false


class _ReadChecks:
    """What a summary reads of a report's checks, taken in one pass over them: the matrix row, the worst verdict of
    each family, the failed checks and the rates the fleet median compares."""

    __slots__ = ("row", "families", "failed", "figures")

    def __init__(self, checks: list[dict]):
        self.row, self.families, self.failed, self.figures = {}, {}, [], []
        worst = self.families
        for check in checks:  # tens of thousands of checks in a summary: plain loops, no generators
            check_id, family, verdict = check["id"], check["family"], check["verdict"]
            unit = check.get("unit", "")
            self.row[check_id] = {"verdict": verdict, "measured": check.get("measured"), "unit": unit}
            # the verdict a family shows is its worst check's
            current = worst.get(family)
            if current != verdict and (current is None or SEVERITY.get(verdict, 0) > SEVERITY.get(current, 0)):
                worst[family] = verdict
            if verdict == FAIL:
                self.failed.append(check)
            # only rates (TFLOP/s, GB/s, images/s): higher is better and identical hardware agrees
            if family not in _COMPARED or verdict == "SKIP" or not unit.endswith("/s"):
                continue
            per_gpu = check.get("per_gpu", {})
            values = list(per_gpu.values())
            if {*map(type, values)} <= _NUMBERS:
                gpus = tuple(per_gpu)
            else:  # numbers only, not true/false
                numbers = [(gpu, value) for gpu, value in per_gpu.items() if type(value) in _NUMBERS]
                gpus, values = tuple(gpu for gpu, _ in numbers), [value for _, value in numbers]
            if values:
                self.figures.append((_shared(check_id), _shared(gpus), values))

    def failures(self, host: str | None) -> list[dict]:
        """The failed checks, with the GPUs each names and its reason."""
        return [
            {"host": host, "check": check["id"], "reason": check.get("detail") or check.get("expected") or "failed"}
            for check in self.failed
        ]


def against_median(reports: list[dict], below: float | None = None) -> list[dict]:
    """Each (host, GPU, rate check) against the median of the same check on all GPUs of its model in the fleet,
    where the model has at least three such figures; with `below`, only those more than that fraction under it."""
    return _against_median(((gpu_model(r), r["host"], rate_figures(r)) for r in reports), below)


def _against_median(hosts, below: float | None) -> list[dict]:
    """`against_median` of (model, host, rate figures) per host."""
    figures: dict = {}
    for model, host, rates in hosts:
        _add_figures(figures, model, host, rates)
    return _below_median(figures, below)


def _add_figures(figures: dict, model: str, host: str | None, rates: list) -> None:
    """One host's rate figures added to `figures`: at 10,000 hosts there are a million, kept as one flat list of values
    per (model, check) with the offset where each host's values end, so that a record is built only for those asked
    for (`_below_median`)."""
    for check_id, gpus, values in rates:
        found = figures.get((model, check_id))
        if found is None:
            found = figures[(model, check_id)] = ([], [], [])
        all_values, ends, owners = found
        all_values += values
        ends.append(len(all_values))
        owners.append((host, gpus))


def _below_median(figures: dict, below: float | None) -> list[dict]:
    """`against_median` of the figures `_add_figures` collected."""
    found = []
    for (model, check_id), (values, ends, owners) in sorted(figures.items()):
        if len(values) < 3:
            continue  # a median of two says nothing about which one is off
        median = statistics.median(values)
        if below is None:
            chosen = range(len(values))
        elif median > 0:
            # the indices of the values under the floor, tested in C: a million figures at 10,000 hosts
            floor = (1 - below) * median
            chosen = compress(count(), map(floor.__gt__, values))
        else:
            continue
        for i in chosen:
            owner = bisect.bisect_right(ends, i)
            (host, gpus), value = owners[owner], values[i]
            found.append(
                {
                    "host": host,
                    "gpu": gpus[i - (ends[owner - 1] if owner else 0)],
                    "model": model,
                    "check": check_id,
                    "value": value,
                    "median": median,
                    "below_median": round(1 - value / median, 4) if median > 0 else 0.0,
                }
            )
    return found


def is_outlier(figure: dict, tolerance: float) -> bool:
    return figure["median"] > 0 and figure["value"] < (1 - tolerance) * figure["median"]


def outliers(reports: list[dict], tolerance: float) -> list[dict]:
    """Each (host, GPU, check) more than `tolerance` below the median of its model's GPUs in the fleet."""
    return against_median(reports, below=tolerance)


def describe_outlier(item: dict) -> str:
    """An outlier in one sentence, as the console and `dlbench report` show it."""
    return (
        f"outlier {item['host']} GPU {item['gpu']} ({item['model']}): {item['check']} {item['value']:.4g}, "
        f"{item['below_median']:.1%} below the fleet median {item['median']:.4g}"
    )


# the verdict a family shows for a host is its worst check's: one FAIL rejects the host, as it does in the report
SEVERITY = {"SKIP": 0, "INFO": 1, "PASS": 2, "WARN": 3, "FAIL": 4}
VERDICT_ORDER = ("FAIL", "WARN", "PASS", "INFO", "SKIP")
SHOWN = 20  # lines of each list on the console; the rest is in --json, --csv and the HTML page


def family_verdicts(report: dict) -> dict[str, str]:
    """Check family -> the worst verdict of its checks in this report, families in the order they ran."""
    return _ReadChecks(report["checks"]).families


def family_counts(reports: list[dict]) -> dict[str, dict[str, int]]:
    """Check family -> verdict -> number of hosts whose worst check of that family has that verdict."""
    return _family_counts(tuple(family_verdicts(report).items()) for report in reports)


def _family_counts(per_host) -> dict[str, dict[str, int]]:
    """`family_counts` of each host's `family_verdicts` as a tuple of (family, verdict): most hosts of a fleet have
    the same one, so each different tuple is counted once over, in the order first seen (the families' order)."""
    counts: dict[str, dict[str, int]] = {}
    for worst, hosts in Counter(per_host).items():
        for family, verdict in worst:
            per_verdict = counts.setdefault(family, dict.fromkeys(VERDICT_ORDER, 0))
            per_verdict[verdict] = per_verdict.get(verdict, 0) + hosts
    return counts


def failures(reports: list[dict]) -> list[dict]:
    """Every failed check of every host, with the GPUs it names and its reason."""
    return [failure for report in reports for failure in host_failures(report)]


def host_failures(report: dict) -> list[dict]:
    """The failed checks of one report, with the GPUs each names and its reason."""
    return _ReadChecks(report["checks"]).failures(report["host"])


def _kernel(environment: dict) -> str | None:
    # environment.os is Python's platform.platform(): "Linux-6.8.0-45-generic-x86_64-with-glibc2.39"
    text = environment.get("os")
    return text.split("-with-")[0] if isinstance(text, str) else None


def _joined(values) -> str | None:
    present = sorted({str(value) for value in values if value not in (None, "")})
    return " + ".join(present) if present else None


def _nccl(report: dict) -> str | None:
    return next(
        (str(c.get("measured")) for c in report["checks"] if c["id"] == "stack.nccl" and c.get("measured")), None
    )


def _firmware(report: dict, kind: str) -> str | None:
    firmware = report["environment"].get("firmware") or {}
    if kind == "nic":  # "mlx5_0 28.39.1002, mlx5_1 28.39.1002": one NIC on old firmware shows as its own group
        return ", ".join(f"{nic} {version}" for nic, version in sorted((firmware.get("nic") or {}).items())) or None
    return firmware.get(kind)


# What each report carries, by name: the versions a fleet must agree on (Imbue's cluster-health holds hosts to one
# VBIOS, driver, OFED and firmware; a differing host is the one to look at first)
VERSIONS = {
    "VBIOS": lambda r: _joined(gpu.get("vbios") for gpu in r["environment"].get("gpus", [])),
    "driver": lambda r: r["environment"].get("driver_version"),
    "CUDA (torch build)": lambda r: (r["environment"].get("torch") or {}).get("cuda"),
    "torch": lambda r: (r["environment"].get("torch") or {}).get("version"),
    "NCCL": _nccl,
    "OS and kernel": lambda r: _kernel(r["environment"]),
    "NIC firmware": lambda r: _firmware(r, "nic"),
    "CPU microcode": lambda r: _firmware(r, "cpu_microcode"),
}


def host_versions(report: dict) -> dict[str, str | None]:
    """Name in VERSIONS -> this report's version, None where it does not carry it."""
    return {name: read(report) for name, read in VERSIONS.items()}


def version_groups(reports: list[dict]) -> dict[str, dict]:
    """For each version the reports carry: the majority value (the golden one), and the hosts that differ from it."""
    return _version_groups([(report["host"], host_versions(report)) for report in reports])


def _version_groups(hosts: list[tuple[str | None, dict]]) -> dict[str, dict]:
    """`version_groups` of (host, `host_versions`) per host."""
    groups = {}
    for name in VERSIONS:
        by_value: dict[str, list[str]] = {}
        for host, versions in hosts:
            value = versions[name]
            if value is not None:
                by_value.setdefault(value, []).append(host)
        if not by_value:
            continue
        majority = max(by_value, key=lambda value: (len(by_value[value]), value))
        groups[name] = {
            "majority": majority,
            "hosts_with_majority": len(by_value[majority]),
            "differing": {value: hosts for value, hosts in sorted(by_value.items()) if value != majority},
        }
    return groups


def matrix_row(report: dict) -> dict[str, dict]:
    """Check id -> its verdict, measured value and unit: the report's row of the host-by-check matrix."""
    return _ReadChecks(report["checks"]).row


def summary(reports: list[dict], tolerance: float) -> dict:
    """The fleet summary of reports already read (`check_report`), as `summary_of` gives it."""
    return summary_of([digest(report) for report in reports], tolerance)


def summary_of(digests: Iterable[Digest], tolerance: float, kept: list | None = None) -> dict:
    """The fleet summary of the reports' digests, in their order, added up in one pass as they come (each one also
    appended to `kept` where given); its "hosts" are their entries, encoded as JSON (`encode` writes them into the
    summary's JSON as they are)."""
    verdicts, families, failures, versions, hosts, shapes, figures = Counter(), [], [], [], [], set(), {}
    for d in digests:
        if kept is not None:
            kept.append(d)
        verdicts[d.verdict] += 1
        families.append(d.families)
        failures += d.failures
        versions.append((d.host, d.versions))
        hosts.append(d.entry)
        shapes.add(d.check_ids)  # most hosts share one tuple of checks
        _add_figures(figures, d.model, d.host, d.figures)
    return {
        "schema_version": SCHEMA_VERSION,
        "host_count": len(hosts),
        "host_verdicts": {v: verdicts[v] for v in ("FAIL", "WARN", "PASS")},
        "families": _family_counts(families),
        "failures": failures,
        "versions": _version_groups(versions),
        "hosts": hosts,
        "checks": sorted(set().union(*shapes)),
        "outlier_tolerance": tolerance,
        "outliers": _below_median(figures, tolerance),
    }


def encode(result: dict) -> str:
    """A `summary_of` as compact JSON, the hosts' entries joined as they came, encoded, from the digests."""
    members = (
        json.dumps(key)
        + ":"
        + ("[" + ",".join(value) + "]" if key == "hosts" else json.dumps(value, separators=COMPACT))
        for key, value in result.items()
    )
    return "{" + ",".join(members) + "}"


def version_drift(result: dict) -> list[str]:
    """One sentence per version on which some hosts differ from the majority."""
    lines = []
    for name, group in result["versions"].items():
        if group["differing"]:
            others = "; ".join(f"{value} on {_some(hosts)}" for value, hosts in group["differing"].items())
            lines.append(f"{name}: {group['majority']} on {group['hosts_with_majority']} hosts; differs: {others}")
    return lines


def _some(hosts: list[str], shown: int = 10) -> str:
    named = ", ".join(str(h) for h in hosts[:shown])
    return named + (f" and {len(hosts) - shown} more" if len(hosts) > shown else "")


def write_csv(result: dict, digests: list[Digest], path: Path) -> None:
    """The full matrix, one row per host: its verdict, versions, and each check's verdict and measured value; each
    row joined from the CSV text of its digest, a check the host did not run left as two empty cells."""
    checks = tuple(result["checks"])
    columns = ["host", "GPU model", "verdict", *VERSIONS]
    columns += [column for check in checks for column in (check, f"{check} measured")]
    lines = _csv_texts([columns])
    for d in digests:
        if d.check_ids == checks and checks:  # the host ran every check of the fleet: its cells are the row's
            lines.append(d.csv_head + "," + d.csv_cells)
        else:
            cells = _cells_by_check(d)
            lines.append(d.csv_head + "".join("," + cells.get(check, ",") for check in checks))
    atomic.write_text(path, "\r\n".join(lines) + "\r\n")  # csv.writer's line end


def _print_lead(console, result: dict) -> None:
    from rich.table import Table

    verdicts = result["host_verdicts"]
    console.print(
        f"[bold]dlbench validate: {result['host_count']} hosts[/]: [bold red]{verdicts['FAIL']} FAIL[/], "
        f"[yellow]{verdicts['WARN']} WARN[/], [green]{verdicts['PASS']} PASS[/]",
        highlight=False,
    )
    table = Table(title="hosts by their worst verdict in each check family")
    table.add_column("family")
    for verdict in VERDICT_ORDER:
        table.add_column(verdict, justify="right")
    for family, counts in result["families"].items():
        table.add_row(family, *(str(counts.get(v, 0)) if counts.get(v) else "" for v in VERDICT_ORDER))
    console.print(table)


def _print_list(console, title: str, lines: list[str], style: str) -> None:
    if not lines:
        return
    console.print(f"[bold]{title}[/] ({len(lines)})", highlight=False)
    for line in lines[:SHOWN]:
        console.print(f"  [{style}]{line}[/]", highlight=False, markup=True, soft_wrap=True)
    if len(lines) > SHOWN:
        console.print(
            f"  ... and {len(lines) - SHOWN} more: the full list is in --json, --csv and the HTML report",
            highlight=False,
        )


def main(folder: Path, tolerance: float, output: Path | None, csv_path: Path | None = None) -> int:
    for path in (output, csv_path):
        if path is not None:
            atomic.check_writable(path)
    with _no_cycle_collection():
        return _summarize(folder, tolerance, output, csv_path)


def _summarize(folder: Path, tolerance: float, output: Path | None, csv_path: Path | None) -> int:
    from rich.console import Console
    from rich.markup import escape

    digests: list[Digest] = []
    result = summary_of(_read_digests(folder), tolerance, kept=digests)  # added up as the workers send them
    console = Console()
    _print_lead(console, result)
    _print_list(
        console,
        "failed checks",
        [escape(f"{f['host']}: {f['check']}: {f['reason']}") for f in result["failures"]],
        "red",
    )
    _print_list(console, "outliers", [escape(describe_outlier(item)) for item in result["outliers"]], "red")
    drift = version_drift(result)
    _print_list(
        console, "versions that differ across the fleet (golden: the majority)", [escape(l) for l in drift], "yellow"
    )
    if not drift:
        console.print(
            "versions: " + "; ".join(f"{name} {escape(str(g['majority']))}" for name, g in result["versions"].items()),
            highlight=False,
        )
    if output is not None:
        atomic.write_text(output, encode(result) + "\n")
    if csv_path is not None:
        write_csv(result, digests, csv_path)
    return 1 if result["host_verdicts"][FAIL] or result["outliers"] or drift else 0
