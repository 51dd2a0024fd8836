"""Waits until the test opens a gate, then runs the real validator or kills itself.

``gated.py GATE_DIR validate|crash``: writes GATE_DIR/started, waits for GATE_DIR/go
(so the test knows the validator is alive while it sends other requests), then runs
``mlops.registry.sandbox_child`` as the product does, or sends itself SIGSEGV.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import time
from pathlib import Path

gate, then = Path(sys.argv[1]), sys.argv[2]
(gate / "started").touch()
deadline = time.monotonic() + 120
while not (gate / "go").exists() and time.monotonic() < deadline:
    time.sleep(0.01)
if then == "crash":
    os.kill(os.getpid(), signal.SIGSEGV)
sys.argv = sys.argv[:1]
runpy.run_module("mlops.registry.sandbox_child", run_name="__main__", alter_sys=True)
