"""The spec of the host one has, in the strict form: to keep next to the order, or to diff after a change."""

from __future__ import annotations

from collections import Counter

from dlbench.hostspec import units
from dlbench.hostspec.reader import Unanswered


def spec_of(facts: dict) -> dict:
    """Facts -> a spec that `dlbench env --spec` reads back and passes on the same host. A fact the host could not
    give is left out (and named in `unanswered`), so the written spec never declares a guess."""
    hardware: dict = {}
    unanswered: dict = {}
    cpu = facts.get("cpu")
    if isinstance(cpu, dict):
        hardware["cpu"] = {
            "model": cpu["model"],
            "sockets": cpu["sockets"],
            "cores": cpu["cores"],
            "threads": cpu["threads"],
        }
        if isinstance(cpu["model"], Unanswered):
            unanswered["hardware.cpu.model"] = str(hardware["cpu"].pop("model"))
    gpus = facts.get("gpus")
    if isinstance(gpus, list) and gpus:
        models = Counter(g["model"] for g in gpus)
        hardware["gpu"] = []
        for model, count in models.items():
            sizes = [g["memory_bytes"] for g in gpus if g["model"] == model and g["memory_bytes"]]
            entry = {"model": model, "count": count}
            if sizes:  # rounded to whole GiB, the unit GPU memory is sold in
                entry["memory"] = f"{round(min(sizes) / 2**30)}GB"
            hardware["gpu"].append(entry)
    memory = facts.get("memory")
    if isinstance(memory, dict):
        installed = memory.get("installed_bytes")
        # the modules' sum when readable; MemTotal otherwise, which reads a few percent under the nominal size
        size = installed if isinstance(installed, int) else memory["mem_total_bytes"]
        ram = {"size": units.human_bytes(size, memory=True)}
        for key in ("type", "ecc"):
            if isinstance(memory.get(key), Unanswered):
                unanswered[f"hardware.ram.{key}"] = str(memory[key])
            else:
                ram[key] = memory[key]
        hardware["ram"] = ram
    disks = facts.get("storage")
    if isinstance(disks, list) and disks:
        counts = Counter((d["type"], units.human_bytes(d["bytes"])) for d in disks if d["type"] != "virtual disk")
        hardware["storage"] = [{"type": kind, "size": size, "count": n} for (kind, size), n in counts.items()]
    links = facts.get("network")
    if isinstance(links, list):
        counts = Counter((link["speed_mbps"], link["rdma"]) for link in links if link["speed_mbps"])
        hardware["network"] = [
            {"speed": f"{speed / 1000:g}GbE" if speed >= 1000 else f"{speed}Mb/s", "rdma": rdma, "count": n}
            for (speed, rdma), n in sorted(counts.items(), reverse=True)
        ]
    software: dict = {}
    os_facts = facts.get("os")
    if isinstance(os_facts, dict) and os_facts["id"]:
        software["os"] = {"name": os_facts["id"], "version": os_facts["version"]}
    for name in (
        "nvidia_driver",
        "cuda",
        "cudnn",
        "pytorch",
        "pytorch_cuda",
        "docker",
        "nvidia_container_toolkit",
        "prometheus",
        "grafana",
    ):
        value = facts.get(name)
        if isinstance(value, Unanswered):
            unanswered[f"software.{name}"] = str(value)
        elif value is not None:
            software[name] = str(value).split("+")[0] if name == "pytorch" else str(value)
    return {"hardware": hardware, "software": software, "unanswered": unanswered}


def to_yaml(spec: dict, host: str) -> str:
    import yaml

    unanswered = spec.pop("unanswered", {})
    header = [
        f"# Host spec of {host}, written by `dlbench env --write-spec`.",
        "# Check a host against it: dlbench env --spec FILE (or dlbench validate --spec FILE).",
    ]
    if unanswered:
        header.append("# Not declared (this host could not answer):")
        header += [f"#   {field}: {why}" for field, why in sorted(unanswered.items())]
    return "\n".join(header) + "\n" + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
