"""Reading, matching and comparing results: `dlbench run`'s JSON and pytest-benchmark's saved JSON.

- `load`: files and directories to results, with one clear error per bad input
- `pytest_benchmark`: pytest-benchmark JSON to dlbench results and back
- `fields`: what a result says about its workload, its settings, its environment and its headline metrics
- `stats`: the regression verdict from two step-time distributions
- `compare`: pairs results that measured the same thing and decides each pair
"""
