"""The host pairs of the two-host network all-reduce (`dlbench validate pair`), in rounds that run one after another.

The first half of the play's hosts is paired with the second half, index by index: inventories usually list hosts
rack by rack, so a pair's traffic crosses the fabric between racks rather than staying under one leaf switch. With
an odd count the host left over is paired with the first host in a second round, so every host is in a pair and none
runs two all-reduces at once (two would share its NIC and both read low).
"""


def validate_pair_rounds(hosts):
    """[[[rank 0 host, rank 1 host], ...] per round]; no rounds for fewer than two hosts."""
    hosts = list(hosts)
    if len(hosts) < 2:
        return []
    half = len(hosts) // 2
    rounds = [[[first, second] for first, second in zip(hosts[:half], hosts[half:])]]
    if len(hosts) % 2:
        rounds.append([[hosts[-1], hosts[0]]])
    return rounds


class FilterModule:
    def filters(self):
        return {"validate_pair_rounds": validate_pair_rounds}
