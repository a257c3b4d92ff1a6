"""Label selectors built from the dashboards' template variables; no panel names a host, job or GPU itself."""

GPU = 'job=~"$job", hostname=~"$hostname", gpu=~"$gpu"'
HOST = 'job=~"$job", hostname=~"$hostname"'
# a live run's series carry the torchrun rank (0 for a single-process run): a data-parallel job shows every rank.
# The host too: the rank variable's All is `.*`, so without it a picked host would still show every host's ranks.
TRAIN = 'run_id=~"$run_id", workload=~"$workload", hostname=~"$hostname", rank=~"$rank"'

# Legends
GPU_LEGEND = "{{hostname}} GPU {{gpu}}"
GPU_ONLY_LEGEND = "GPU {{gpu}}"

# Clock-event reasons that mean trouble (the recording rule dlbench:gpu_clocks_limited:max counts the same ones).
TROUBLE_REASONS = "hw_slowdown|sw_thermal_slowdown|hw_thermal_slowdown|hw_power_brake_slowdown"

UP_DOWN = {"1": ("up", "green"), "0": ("down", "red")}
ACTIVE = {"0": ("no", "green"), "1": ("yes", "orange")}

# The GPU node detail dashboard for the host of the clicked series or table row, same data source and time range.
NODE_LINK = (
    "/d/dlbench-gpu-node?var-datasource=${datasource}&var-job=${__field.labels.job}"
    "&var-hostname=${__field.labels.hostname}&${__url_time_range}"
)
NODE_LINK_FROM_ROW = (
    "/d/dlbench-gpu-node?var-datasource=${datasource}&var-job=${__data.fields.job}"
    "&var-hostname=${__data.fields.hostname}&${__url_time_range}"
)

# Annotations: XID events (a mark for a minute after each) and exporter restarts (its start time changed; XID counters
# start again then). Restarts are matched to hosts through the exporter's own dlbench_exporter_gpus series, since
# prometheus_client's process_* series carry no hostname.
XID_ANNOTATION = 'time() - dlbench_gpu_last_xid_timestamp_seconds{job=~"$job", hostname=~"$hostname"} < 60'
RESTART_ANNOTATION = (
    'changes(process_start_time_seconds{job=~"$job"}[2m]) > 0'
    ' and on (job, instance) dlbench_exporter_gpus{job=~"$job", hostname=~"$hostname"}'
)
