"""Prometheus exposition of the sampler's latest snapshot, as a prometheus_client custom Collector.

Fresh metric families are built on every scrape from the catalogue and the latest snapshot; nothing is kept in
global gauges. A scrape never calls NVML, so a hung GPU cannot hang `/metrics`.
"""

from __future__ import annotations

import math
import socket
from typing import Any, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from dlbench.exporter.catalogue import DCGM_MIG_SPECS, GPU_LABELS, MIG_LABELS, OWNER_LABELS, MetricSpec, specs
from dlbench.exporter.rows import child_rows, gpu_instance_rows
from dlbench.exporter.sampler import Sampler


def lookup(reading: dict, field: str) -> Any:
    """reading["a"]["b"] for field "a.b"; None when any step is missing."""
    value: Any = reading
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def new_family(spec: MetricSpec) -> Metric:
    labels = list(spec.labels)
    if spec.type == "counter" and not spec.name.endswith("_total"):
        # DCGM's counter names (DCGM_COUNTERS): prometheus_client would serve them as NAME_total; built as gauges
        # and typed counter when the text exposition is rendered (http.PrerenderedMetrics)
        return GaugeMetricFamily(spec.name, spec.help, labels=labels, unit=spec.unit)
    if spec.type == "counter":
        return CounterMetricFamily(spec.family_name, spec.help, labels=labels, unit=spec.unit)
    if spec.type == "histogram":
        return HistogramMetricFamily(spec.name, spec.help, labels=labels, unit=spec.unit)
    return GaugeMetricFamily(spec.name, spec.help, labels=labels, unit=spec.unit)


def _value(spec: MetricSpec, raw: Any) -> float:
    value = float(raw) * spec.scale
    if spec.integer == "floor":
        return float(math.floor(value))
    return float(round(value)) if spec.integer == "round" else value


def families_from_rows(group_specs: Iterable[MetricSpec], rows: list[tuple[list[str], dict]]) -> Iterator[Metric]:
    """One family per spec with a sample per row that has the spec's field.

    rows: (label values for the spec's leading labels, reading). A dict value expands into one sample per key,
    the key going into the spec's last label (reason, type, xid, period, call), or a tuple key into as many last
    labels (xid and xid_class). Families without samples are
    left out, so an unsupported metric is absent rather than empty.
    """
    for spec in group_specs:
        family = new_family(spec)
        for label_values, reading in rows:
            value = lookup(reading, spec.field)
            if value is None:
                continue
            if isinstance(value, dict):
                for key, item in value.items():
                    keys = [str(part) for part in key] if isinstance(key, tuple) else [str(key)]
                    family.add_metric(label_values + keys, _value(spec, item))
            else:
                family.add_metric(label_values, _value(spec, value))
        if family.samples:
            yield family


class TelemetryCollector(Collector):
    def __init__(
        self,
        sampler: Sampler,
        hostname: str | None = None,
        dcgm_compat: bool = False,
        exporter_health: bool = True,
        nvlink_per_link: bool = False,
    ):
        self.sampler = sampler
        self.hostname = hostname or socket.gethostname()
        self.dcgm_compat = dcgm_compat
        self.exporter_health = exporter_health
        self.nvlink_per_link = nvlink_per_link
        # the catalogue does not change while running: split it once, not on every collect
        gpu_specs = specs("gpu")
        self._info_specs = [s for s in gpu_specs if s.name == "dlbench_gpu_info"]
        self._gpu_specs = [s for s in gpu_specs if s.name != "dlbench_gpu_info"]
        if nvlink_per_link:
            self._gpu_specs += specs("nvlink_link")

    def describe(self) -> list:
        # the catalogue knows every name, so registering neither collects nor reads NVML (and name[] filters work)
        groups = (
            ("gpu",)
            + (("nvlink_link",) if self.nvlink_per_link else ())
            + ("process", "mig", "mig_process", "host")
            + (("exporter",) if self.exporter_health else ())
            + (("dcgm",) if self.dcgm_compat else ())
        )
        return [new_family(spec) for group in groups for spec in specs(group)]

    def collect(self) -> Iterator[Metric]:
        snapshot = self.sampler.latest
        nvml = self.sampler.nvml
        gpu_rows, info_rows, dcgm_rows = [], [], []
        for gpu in nvml.gpus:
            reading = dict(snapshot.gpus.get(gpu.index, {"up": 0, "late": 0})) if snapshot else {"up": 0, "late": 0}
            reading["info"] = 1
            index = str(gpu.index)
            gpu_rows.append(([index, gpu.uuid, self.hostname], reading))
            info_rows.append(
                (
                    [
                        index,
                        gpu.uuid,
                        gpu.name,
                        gpu.pci_bus_id,
                        self.hostname,
                        nvml.driver_version,
                        nvml.cuda_driver_version,
                    ],
                    reading,
                )
            )
            if reading.get("up") or "last_xid_code" in reading:
                dcgm_rows.append(
                    (
                        [
                            index,
                            gpu.uuid,
                            gpu.pci_bus_id,
                            f"nvidia{index}",
                            gpu.name,
                            self.hostname,
                            nvml.driver_version,
                        ],
                        reading,
                    )
                )
        yield from families_from_rows(self._info_specs, info_rows)
        yield from families_from_rows(self._gpu_specs, gpu_rows)
        yield from families_from_rows(specs("process"), child_rows(gpu_rows, "processes", OWNER_LABELS))
        mig_rows = child_rows(gpu_rows, "mig_devices", MIG_LABELS[len(GPU_LABELS) :])
        yield from families_from_rows(specs("mig"), mig_rows)
        yield from families_from_rows(specs("mig_process"), child_rows(mig_rows, "processes", OWNER_LABELS))
        if snapshot is not None:
            yield from families_from_rows(specs("host"), [([self.hostname], snapshot.host)])
        if self.exporter_health:
            health: dict[str, Any] = {
                "nvml_up": int(nvml.up),
                "gpu_count": len(nvml.gpus),
                "nvml_errors": dict(nvml.errors),
            }
            if snapshot is not None:
                health["collect_duration_seconds"] = snapshot.collect_duration_seconds
                health["last_sample_timestamp_seconds"] = snapshot.timestamp
            yield from families_from_rows(specs("exporter"), [([self.hostname], health)])
        if self.dcgm_compat:
            # a MIG GPU instance's profiling series join its family, told apart by GPU_I_PROFILE and GPU_I_ID
            families = {family.name: family for family in families_from_rows(specs("dcgm"), dcgm_rows)}
            for family in families_from_rows(DCGM_MIG_SPECS, gpu_instance_rows(dcgm_rows)):
                if family.name in families:
                    families[family.name].samples.extend(family.samples)
                else:
                    families[family.name] = family  # every GPU is in MIG mode
            yield from families.values()
