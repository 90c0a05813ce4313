"""normbench: a command-line experiment runner for normalization ablations in PyTorch."""

__version__ = "0.1.0"
