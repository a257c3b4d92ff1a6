"""The training harness behind `dlbench run`: precision, data, timing, FLOPs, MFU and results."""
