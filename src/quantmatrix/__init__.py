"""quantmatrix: measure quantized variants of local LLMs and decide which one to run."""

__version__ = "0.1.0"
