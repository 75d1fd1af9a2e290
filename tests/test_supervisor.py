"""The supervisor of `make run` on plain shell commands: restarts with backoff, crash loops, stops."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.support import CollectedOutput, wait_until

# Runs a Supervisor in the main thread of a process of its own, as `make run` does, with short
# delays: argv[1] is a JSON object of process name -> shell command.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from gateway.supervisor import ConsolePrinter, Supervisor
    printer = ConsolePrinter(sys.stdout)
    supervisor = Supervisor(printer, max_deaths=3, window=30, first_delay=0.2, max_delay=0.4)
    for name, command in json.loads(sys.argv[1]).items():
        supervisor.add_process(name, command)
    supervisor.loop()
    sys.exit(1 if supervisor.crash_looped else 0)
    """
)


class Supervised(CollectedOutput):
    """The supervisor script over `commands` (name -> shell command), its output kept by line."""

    def __init__(self, tmp_path: Path, commands: dict[str, str]) -> None:
        super().__init__(
            subprocess.Popen(
                [sys.executable, "-c", SCRIPT, json.dumps(commands)],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.output))

    def wait(self, timeout: float = 30) -> int:
        """Wait for the supervisor to exit; its exit status."""
        status = self.process.wait(timeout)
        self.join()
        return status

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.wait()


def test_a_process_that_dies_once_is_restarted_and_the_others_run_on(tmp_path):
    # Given a steady process, and one that exits the first time and stays up the second
    supervised = Supervised(
        tmp_path,
        {
            "steady": "exec sleep 30",
            "once": "if [ -e ran ]; then exec sleep 30; else touch ran; exit 3; fi",
        },
    )
    try:
        # When the second one died, it is started again after the first delay
        wait_until(lambda: supervised.count(r"once started \(pid=") == 2, timeout=10)
        time.sleep(0.5)
    finally:
        # Then SIGTERM stops both, with exit status 0
        status = supervised.stop()
    output = supervised.output
    assert status == 0, output
    assert "once exited on its own (rc=3); restarting it in 0.2 s (death 1 of 3" in output
    assert supervised.count(r"once started \(pid=") == 2
    assert supervised.count(r"steady started \(pid=") == 1
    assert "SIGTERM received" in output
    assert "crash-looping" not in output


def test_a_process_that_keeps_dying_stops_everything_after_its_deaths_within_the_window(tmp_path):
    # Given a process that always exits at once, next to a steady one
    supervised = Supervised(tmp_path, {"steady": "exec sleep 30", "broken": "echo no; exit 2"})

    # When it keeps dying
    status = supervised.wait()

    # Then it was restarted with growing (capped) delays, and its third death stopped everything
    output = supervised.output
    delays = re.findall(r"broken exited on its own \(rc=2\); restarting it in ([\d.]+) s", output)
    assert delays == ["0.2", "0.4"], output
    assert "broken died 3 times within 30 s (last rc=2): it is crash-looping" in output
    assert "sending SIGTERM to steady" in output
    assert status == 1


def test_a_stop_requested_while_a_restart_is_pending_restarts_nothing(tmp_path):
    # Given a process that died, its restart due 0.2 s later
    supervised = Supervised(tmp_path, {"steady": "exec sleep 30", "broken": "exit 2"})
    wait_until(lambda: "broken exited on its own" in supervised.output, timeout=10)

    # When SIGTERM arrives before the restart
    began = time.monotonic()
    status = supervised.stop()

    # Then everything stops at once, and nothing is started after the signal
    output = supervised.output
    assert status == 0, output
    assert time.monotonic() - began < 5
    after_signal = output[output.index("SIGTERM received") :]
    assert "started (pid=" not in after_signal, output
    assert "steady stopped" in after_signal
    assert "crash-looping" not in output
