"""Label selectors built from the dashboards' template variables; no panel names a host, job or GPU itself."""

GPU = 'job=~"$job", hostname=~"$hostname", gpu=~"$gpu"'
HOST = 'job=~"$job", hostname=~"$hostname"'
TRAIN = 'run_id=~"$run_id", workload=~"$workload"'

# Legends
GPU_LEGEND = "{{hostname}} GPU {{gpu}}"
GPU_ONLY_LEGEND = "GPU {{gpu}}"

# Clock-event reasons that are choices rather than limits (see the recording rule dlbench:gpu_clocks_limited:max).
BENIGN_REASONS = "gpu_idle|applications_clocks_setting|display_clock_setting"

UP_DOWN = {"1": ("up", "green"), "0": ("down", "red")}
ACTIVE = {"0": ("no", "green"), "1": ("yes", "orange")}
