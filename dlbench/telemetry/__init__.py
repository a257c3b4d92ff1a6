"""Run-time telemetry of `dlbench run`: the per-GPU series of the timed window (`series`) and the run observers that
record, serve or push the readings of the exporter's background sampler (`observers`; dlbench/exporter/sampler.py).
"""
