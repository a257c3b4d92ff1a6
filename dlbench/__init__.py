"""dlbench: prove a GPU server performs, and watch it.

Nothing heavy is imported here: `dlbench --help`, `list` and `env` must answer without loading torch.
"""

__version__ = "0.1.0"
