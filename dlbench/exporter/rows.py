"""Rows for families about things inside a GPU (its processes, its MIG instances): one row per child reading."""

from __future__ import annotations


def child_rows(gpu_rows: list[tuple[list[str], dict]], key: str, labels: tuple[str, ...]) -> list[tuple[list, dict]]:
    """(the GPU's label values + the child's `labels` values, the child's reading) for each child in reading[key]."""
    return [
        (gpu_labels + [str(child.get(label, "")) for label in labels], child)
        for gpu_labels, reading in gpu_rows
        for child in reading.get(key, ())
    ]


def gpu_instance_rows(gpu_rows: list[tuple[list[str], dict]]) -> list[tuple[list, dict]]:
    """(the GPU's label values + [profile, GPU instance id], the instance's reading), once per MIG GPU instance: its
    compute instances share one GPU instance's GPM figures, and dcgm-exporter serves those once per GPU instance."""
    rows = []
    for gpu_labels, reading in gpu_rows:
        seen = set()
        for child in reading.get("mig_devices", ()):
            gpu_instance_id = child.get("gpu_instance_id", "")
            if gpu_instance_id != "" and gpu_instance_id not in seen:
                seen.add(gpu_instance_id)
                rows.append((gpu_labels + [str(child.get("profile", "")), str(gpu_instance_id)], child))
    return rows
