"""A run started with SIGINT ignored (in the background of a script) still lets the tests send
Ctrl-C to the processes they start."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.support import posix_only, restore_ctrl_c

CHILD = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"


@posix_only  # an ignored SIGINT is inherited through fork and exec
def test_a_process_started_after_restoring_ctrl_c_can_be_interrupted() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        restore_ctrl_c()
        child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
    finally:
        signal.signal(signal.SIGINT, before)
    assert child.stdout.strip() == "True", child.stderr
