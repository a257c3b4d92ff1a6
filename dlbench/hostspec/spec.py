"""Reading a host spec: the free-text form people write ("512GB DDR4 ECC", "32C/64T", "NVIDIA A100 80GB × 4",
"100GbE RoCE"), the strict form `dlbench env --write-spec` writes (mappings with one value per key), and the
project's own stack.yml. All three become one normalized spec; a field that cannot be read is a `UserError` naming
the field and the forms it accepts.
"""

from __future__ import annotations

import re
from pathlib import Path

from dlbench import yamlfile
from dlbench.errors import UserError
from dlbench.hostspec import units

HARDWARE = ("cpu", "gpu", "ram", "storage", "network")
# software field -> where a free-text spec may put it (nested groups as in the field's setup guides, or flat)
SOFTWARE = {
    "os": (),
    "nvidia_driver": (),
    "cuda": (),
    "cudnn": (),
    "pytorch": ("frameworks",),
    "pytorch_cuda": ("frameworks",),
    "docker": ("containers",),
    "nvidia_container_toolkit": ("containers",),
    "prometheus": ("monitoring",),
    "grafana": ("monitoring",),
}
GROUPS = ("frameworks", "containers", "monitoring")

ACCEPTED = {
    "cpu": "'AMD EPYC 7543, 32C/64T' (optional sockets ×, model, cores C / threads T) or "
    "{model: AMD EPYC 7543, sockets: 1, cores: 32, threads: 64}",
    "gpu": "'NVIDIA A100 80GB × 4' (model with its memory, × count) or {model: A100, count: 4, memory: 80GB}, "
    "or a list of these",
    "ram": "'512GB DDR4 ECC' (size, optional DDR type, ECC or non-ECC) or {size: 512GB, type: DDR4, ecc: true}",
    "storage": "a list of {type: NVMe SSD | SATA SSD | SSD | HDD, size: 2TB, count: 1} or of 'NVMe SSD 2TB', "
    "optionally with the sequential throughput bought, {read: 6.8GB/s, write: 4GB/s, fraction: 0.5} or "
    "'NVMe SSD 3.84TB, read 6.8GB/s, write 4GB/s' (fraction: above 0, at most 1)",
    "network": "'100GbE RoCE' (link speed, optional RoCE / InfiniBand / RDMA, optional × count) or "
    "{speed: 100GbE, rdma: RoCE, count: 1}, or a list of these",
    "os": "'Ubuntu 22.04 LTS' (name and release) or {name: ubuntu, version: '22.04'}",
    "version": "'535.54.03' (every given component equal), '>=580' (a minimum) or '>=580.65.06,<581'",
}


class Field:
    """The dotted name of a field in the spec file, for error messages."""

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name

    def error(self, value, accepted: str) -> UserError:
        return UserError(f"{self.path}: {self.name}: cannot read {value!r}; accepted: {accepted}")


def load(path: Path) -> dict:
    return parse(yamlfile.read(path, f"spec {path}"), Path(path))


def parse(document, path: Path) -> dict:
    if isinstance(document, dict) and "stack_torch_version" in document:
        return from_stack(document, path)
    if not isinstance(document, dict) or not set(document) & {"hardware", "software"}:
        raise UserError(
            f"{path}: not a host spec: expected a mapping with 'hardware' and/or 'software', or a dlbench stack.yml"
        )
    _no_unknown(path, "", document, ("hardware", "software"))
    hardware, software = document.get("hardware") or {}, document.get("software") or {}
    _no_unknown(path, "hardware.", hardware, HARDWARE)
    _no_unknown(path, "software.", software, tuple(SOFTWARE) + GROUPS)
    spec = {"source": str(path), "hardware": {}, "software": {}}
    readers = {"cpu": _cpu, "gpu": _gpus, "ram": _ram, "storage": _storage, "network": _network}
    for name, value in hardware.items():
        if value is not None:
            spec["hardware"][name] = readers[name](value, Field(path, f"hardware.{name}"))
    for name, value in _flatten_software(path, software).items():
        field = Field(path, f"software.{name}")
        if name == "pytorch":  # "2.0.0+cu121": the version, and the CUDA build the wheel was compiled for
            value, _, build = str(value).partition("+")
            if re.fullmatch(r"cu\d{3,}", build):
                spec["software"].setdefault("pytorch_cuda", f"{build[2:-1]}.{build[-1]}")
        spec["software"][name] = _os(value, field) if name == "os" else _version_rule(value, field)
    return spec


def _no_unknown(path: Path, prefix: str, mapping, known: tuple) -> None:
    if not isinstance(mapping, dict):
        raise UserError(f"{path}: {prefix.rstrip('.')}: expected a mapping of {', '.join(known)}")
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise UserError(f"{path}: {prefix}{unknown[0]}: unknown field; known: {', '.join(known)}")


def _flatten_software(path: Path, software: dict) -> dict:
    flat = {k: v for k, v in software.items() if k not in GROUPS and v is not None}
    for group in GROUPS:
        members = software.get(group) or {}
        _no_unknown(path, f"software.{group}.", members, tuple(k for k, g in SOFTWARE.items() if group in g))
        flat.update({k: v for k, v in members.items() if v is not None})
    return flat


# --- hardware ---------------------------------------------------------------------------------------------------
def _cpu(value, field: Field) -> dict:
    if isinstance(value, dict):
        _check_keys(value, ("model", "sockets", "cores", "threads"), field, "cpu")
        return {
            "model": _text(value.get("model")),
            **{key: _count(value.get(key), field, "cpu") for key in ("sockets", "cores", "threads")},
        }
    head, comma, tail = str(value).partition(",")
    head, sockets = _split_count(head)  # "2 × AMD EPYC 7543, 64C/128T": two sockets
    text = head + comma + tail
    both = re.search(r"(\d+)\s*C\s*/\s*(\d+)\s*T\b", text, re.IGNORECASE)
    cores = both.group(1) if both else _first(r"(\d+)\s*(?:-|\s)?cores?\b", text)
    threads = both.group(2) if both else _first(r"(\d+)\s*(?:-|\s)?threads?\b", text)
    model = re.split(r",|\(", text)[0].strip()
    if not model or model == text.strip() and (cores or threads):
        model = re.sub(r"\d+\s*C\s*/\s*\d+\s*T|\d+\s*[- ]?(cores?|threads?)", "", text, flags=re.I).strip(" ,")
    if not model and not cores and not threads:
        raise field.error(value, ACCEPTED["cpu"])
    return {
        "model": model or None,
        "sockets": sockets if sockets > 1 else None,
        "cores": int(cores) if cores else None,
        "threads": int(threads) if threads else None,
    }


def _gpus(value, field: Field) -> list[dict]:
    entries = value if isinstance(value, list) else [value]
    return [
        _gpu(entry, Field(field.path, f"{field.name}[{i}]" if isinstance(value, list) else field.name))
        for i, entry in enumerate(entries)
    ]


def _gpu(value, field: Field) -> dict:
    if isinstance(value, dict):
        _check_keys(value, ("model", "count", "memory"), field, "gpu")
        if not value.get("model"):
            raise field.error(value, ACCEPTED["gpu"])
        memory = units.size_bytes(value["memory"], memory=True) if value.get("memory") else None
        if value.get("memory") and memory is None:
            raise field.error(value, ACCEPTED["gpu"])
        return {
            "model": str(value["model"]),
            "count": _count(value.get("count", 1), field, "gpu"),
            "memory_bytes": memory,
        }
    text, count = _split_count(str(value))
    memory_match = units.SIZE.search(text)
    model = units.SIZE.sub("", text).strip() if memory_match else text.strip()
    if not model:
        raise field.error(value, ACCEPTED["gpu"])
    # GPU memory is sold in binary units: an "80GB" A100 has 80 GiB (NVML: 81920 MiB)
    return {
        "model": text.strip(),
        "match": model,
        "count": count,
        "memory_bytes": units.size_bytes(memory_match.group(0), memory=True) if memory_match else None,
    }


def _ram(value, field: Field) -> dict:
    if isinstance(value, dict):
        _check_keys(value, ("size", "type", "ecc"), field, "ram")
        size = units.size_bytes(value.get("size", ""), memory=True)
        if size is None or ("ecc" in value and not isinstance(value["ecc"], bool)):
            raise field.error(value, ACCEPTED["ram"])
        return {"bytes": size, "type": _text(value.get("type")), "ecc": value.get("ecc")}
    text = str(value)
    size = units.size_bytes(text, memory=True)
    if size is None:
        raise field.error(value, ACCEPTED["ram"])
    kind = re.search(r"\b((?:LP)?DDR\d[A-Z]?|HBM\d?e?)\b", text, re.IGNORECASE)
    ecc = (
        False
        if re.search(r"\bnon[- ]?ECC\b|\bno ECC\b", text, re.I)
        else True
        if re.search(r"\bECC\b", text, re.I)
        else None
    )
    return {"bytes": size, "type": kind.group(1).upper() if kind else None, "ecc": ecc}


STORAGE_TYPES = (
    ("NVMe SSD", r"nvme"),
    ("SATA HDD", r"sata.*(hdd|hard)|(hdd|hard).*sata"),
    ("SATA SSD", r"sata"),
    ("SAS SSD", r"sas.*ssd"),
    ("HDD", r"hdd|hard|rotational|spinning"),
    ("SSD", r"ssd|flash"),
)


# "read 6.8GB/s", "write: 4 GB/s" in a free-text disk
RATE_CLAUSE = re.compile(r",?\s*\b(read|write)\b\s*:?\s*(" + units.RATE.pattern + ")", re.IGNORECASE)


def _storage(value, field: Field) -> list[dict]:
    """Each disk: type, bytes, count, and where declared the sequential throughput bought (read_gbps, write_gbps, the
    figures of the datasheet or the buyer's minimum) with the fraction of it validate's checkpoint test must reach."""
    if not isinstance(value, list):
        value = [value]
    disks = []
    for i, entry in enumerate(value):
        item = Field(field.path, f"{field.name}[{i}]")
        if isinstance(entry, dict):
            _check_keys(entry, ("type", "size", "count", "read", "write", "fraction"), item, "storage")
            kind_text, size_text, count = (
                str(entry.get("type", "")),
                str(entry.get("size", "")),
                _count(entry.get("count", 1), item, "storage"),
            )
            rates = {kind: entry[kind] for kind in ("read", "write") if entry.get(kind) is not None}
            fraction = entry.get("fraction")
        else:
            text, count = _split_count(str(entry))
            rates = {match.group(1).lower(): match.group(2) for match in RATE_CLAUSE.finditer(text)}
            kind_text = size_text = RATE_CLAUSE.sub("", text)
            fraction = None
            if re.search(r"\b(read|write)\b", kind_text, re.I):  # "read fast": a rate that cannot be read
                raise item.error(entry, ACCEPTED["storage"])
        kind = next((name for name, pattern in STORAGE_TYPES if re.search(pattern, kind_text, re.I)), None)
        size = units.size_bytes(size_text)
        if kind is None or size is None:
            raise item.error(entry, ACCEPTED["storage"])
        disk = {"type": kind, "bytes": size, "count": count}
        for direction, rate_text in rates.items():
            rate = units.rate_gbps(rate_text)
            if not rate:
                raise item.error(entry, ACCEPTED["storage"])
            disk[f"{direction}_gbps"] = rate
        if fraction is not None:
            if (
                not rates
                or isinstance(fraction, bool)
                or not isinstance(fraction, (int, float))
                or not 0 < fraction <= 1
            ):
                raise item.error(entry, ACCEPTED["storage"])
            disk["fraction"] = float(fraction)
        disks.append(disk)
    return disks


def _network(value, field: Field) -> list[dict]:
    entries = value if isinstance(value, list) else [value]
    links = []
    for i, entry in enumerate(entries):
        item = Field(field.path, f"{field.name}[{i}]" if isinstance(value, list) else field.name)
        if isinstance(entry, dict):
            _check_keys(entry, ("speed", "rdma", "count"), item, "network")
            text, count = (
                f"{entry.get('speed', '')} {entry.get('rdma') or ''}",
                _count(entry.get("count", 1), item, "network"),
            )
        else:
            text, count = _split_count(str(entry))
        speed = units.speed_mbps(text)
        if speed is None:
            raise item.error(entry, ACCEPTED["network"])
        rdma = (
            "RoCE"
            if re.search(r"roce", text, re.I)
            else "InfiniBand"
            if re.search(r"(?i:infiniband)|\bIB\b", text)
            else "RDMA"
            if re.search(r"rdma|true", text, re.I)
            else None
        )
        links.append({"speed_mbps": speed, "rdma": rdma, "count": count, "text": str(entry)})
    return links


# --- software ---------------------------------------------------------------------------------------------------
def _os(value, field: Field) -> dict:
    if isinstance(value, dict):
        _check_keys(value, ("name", "version"), field, "os")
        name, version = _text(value.get("name")), _text(value.get("version"))
    else:
        match = re.match(r"^\s*(.*?)\s*v?((?:>=|<=|<|>)?\s*\d+(?:\.\d+)*)?\s*(?:LTS)?\s*$", str(value), re.I)
        name, version = (match.group(1), match.group(2)) if match else (None, None)
    if not name:
        raise field.error(value, ACCEPTED["os"])
    if version:
        _version_rule(version, field)
    return {"name": name, "version": version.replace(" ", "") if version else None}


def _version_rule(value, field: Field) -> str:
    text = str(value).strip()
    try:
        units.parse_version_rule(text)
    except ValueError:
        raise field.error(value, ACCEPTED["version"]) from None
    return text


def from_stack(stack: dict, path: Path) -> dict:
    """stack.yml as a spec: the software the playbooks install, as they pin it."""
    software = {
        "nvidia_driver": str(stack["stack_driver_branch"]),
        "cuda": str(stack["stack_cuda_version"]),
        "cudnn": str(stack["stack_cudnn_major"]),
        "pytorch": str(stack["stack_torch_version"]),
    }
    if stack.get("stack_torch_driver_floor"):
        # the branch the playbooks install, and no older than what the torch build's CUDA needs
        software["nvidia_driver"] = f">={stack['stack_torch_driver_floor']},<{int(stack['stack_driver_branch']) + 1}"
    variant = str(stack.get("stack_torch_cuda_variant", ""))
    if re.fullmatch(r"cu\d{3,}", variant):
        software["pytorch_cuda"] = f"{variant[2:-1]}.{variant[-1]}"
    if stack.get("stack_container_toolkit_version"):
        software["nvidia_container_toolkit"] = str(stack["stack_container_toolkit_version"])
    for name, rule in software.items():
        _version_rule(rule, Field(path, name))
    return {"source": str(path), "hardware": {}, "software": software}


# --- small readers ----------------------------------------------------------------------------------------------
def _split_count(text: str) -> tuple[str, int]:
    """'A100 80GB × 4' / '4× A100' / '2 x 100GbE' -> (the rest, 4); 1 when no count is written."""
    suffix = re.search(r"(?:^|\s)[×xX*]\s*(\d+)\s*$|\s*[×*]\s*(\d+)\s*$", text)
    if suffix:
        return text[: suffix.start()].strip(), int(suffix.group(1) or suffix.group(2))
    prefix = re.match(r"^\s*(\d+)\s*[×xX*]\s+", text)
    if prefix:
        return text[prefix.end() :].strip(), int(prefix.group(1))
    return text, 1


def _check_keys(value: dict, known: tuple, field: Field, kind: str) -> None:
    if set(value) - set(known):
        raise field.error(value, ACCEPTED[kind])


def _count(value, field: Field, kind: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise field.error(value, ACCEPTED[kind])
    return int(value)


def _first(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, re.IGNORECASE)
    return match.group(1) if match else None


def _text(value) -> str | None:
    return None if value is None else str(value)
