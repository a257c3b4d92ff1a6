"""Commands the docs show that a test other than tests/test_doc_commands.py runs as written, adding only an output
file, a collective timeout and the load it puts beside the job, and then checks more of the result than the docs'
runner does. tests/test_doc_commands.py leaves these to them, so that each trains once per session."""

# docs/distributed.md, "Sharded training (FSDP)": tests/test_distributed.py, the default settings under FSDP
FSDP_ON_THE_CPU = "dlbench run gpt2-tiny --nproc 2 --device cpu --fsdp"
# docs/distributed.md, "Scaling efficiency": tests/test_distributed.py, the scaling study at the default settings
SCALING_ON_THE_CPU = "dlbench scaling mnist-mlp --nproc 2 --device cpu"

RUN_ELSEWHERE = {
    FSDP_ON_THE_CPU: "tests/test_distributed.py::test_default_settings_end_on_every_rank_with_one_rank_skewed_under_fsdp",
    SCALING_ON_THE_CPU: "tests/test_distributed.py::test_scaling_with_default_settings_ends_at_every_size_with_one_rank_skewed",
}
