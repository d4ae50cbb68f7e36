"""Test session setup: offline, quick mode, and a private cache for built backbones."""

import os
import tempfile

# Set before any Hugging Face import: tests never reach the network.
for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[var] = "1"
os.environ["PICCOLO_MODE"] = "quick"
os.environ.setdefault("PICCOLO_CACHE", tempfile.mkdtemp(prefix="piccolo-test-cache-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
