"""Rows for families about things inside a GPU (its processes, its MIG instances): one row per child reading."""

from __future__ import annotations


def child_rows(gpu_rows: list[tuple[list[str], dict]], key: str, labels: tuple[str, ...]) -> list[tuple[list, dict]]:
    """(the GPU's label values + the child's `labels` values, the child's reading) for each child in reading[key]."""
    return [
        (gpu_labels + [str(child.get(label, "")) for label in labels], child)
        for gpu_labels, reading in gpu_rows
        for child in reading.get(key, ())
    ]
