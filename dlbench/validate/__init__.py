"""`dlbench validate`: accept or reject a GPU host with measured evidence.

One module per check family (stack, inventory, health, compute, memory, interconnect, burn-in, training,
container), a report model every check fills (`report`), writers for JSON, JUnit XML and the console (`writers`),
the runner that orders the checks (`runner`) and the fleet comparison (`summarize`). torch is imported inside the
checks that need it, so a host without torch still gets its stack, inventory and health verdicts.
"""
