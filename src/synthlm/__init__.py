"""synthlm: pretrain language models on natural and synthetic data."""

__version__ = "0.1.0"
