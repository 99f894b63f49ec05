"""The checker process: gone with its host, even when the host is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]

HOST = textwrap.dedent("""
    import os
    if __name__ == "__main__":
        from imagegen.core.settings import Settings
        from imagegen.service.services import Services
        Services(Settings(check_processes=1)).checker.start()
        print(os.getpid(), flush=True)
        import time
        time.sleep(600)
""")


def children(pid: int) -> list[int]:
    """The processes `pid` started that still run (Linux keeps the list per thread)."""
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaping is left


def test_a_checker_exits_by_itself_when_its_host_is_killed(tmp_path):
    script = tmp_path / "host.py"
    script.write_text(HOST)
    host = subprocess.Popen([sys.executable, str(script)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        pid = int(host.stdout.readline())
        checkers = wait_until(lambda: children(pid), timeout=60, what="the host to start its checker process")
        assert all(running(child) for child in checkers)
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=30)
        wait_until(lambda: [child for child in checkers if running(child)], lambda alive: not alive, timeout=30,
                   what="the checker to exit after its host was killed")
    finally:
        if host.poll() is None:
            host.kill()
