"""piccolo_lib: a small, readable library that rebuilds the Piccolo2 recipe (arXiv 2405.06932)."""

__version__ = "0.1.0"
