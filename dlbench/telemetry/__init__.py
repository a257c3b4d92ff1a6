"""Run-time telemetry of `dlbench run`: GPU and host readings sampled in the background (`sampler`, `host`), the
per-GPU series of the timed window (`series`) and the run observers that record, serve or push them (`observers`).
"""
