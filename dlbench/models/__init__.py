"""Reference models, architecture-identical to the canonical implementations (torchvision, GPT-2, BERT).

torchvision is not a dependency: its wheels pin a torch build, and users of dlbench pin their own. Parameter
counts and output shapes are tested against the canonical figures in tests/test_models.py.
"""
