import os

__version__ = "0.1.0"

# ONNX Runtime's official builds (1.2x and later) send usage telemetry to Microsoft from
# Linux too, keep a device identifier under ~/.cache/Microsoft and write a session file
# into $TMPDIR. A model server must not call out, nor leave files behind: opt out before
# any onnxruntime import (the decision is latched when it initialises). Subprocesses
# (the upload validator, workers started from here) inherit it. An operator who wants
# the telemetry sets ORT_DISABLE_TELEMETRY=0.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
