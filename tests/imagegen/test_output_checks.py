"""The checker process: gone with its host, even when the host is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

HOST = textwrap.dedent("""
    import os
    if __name__ == "__main__":
        from imagegen.checks import output_checks
        from imagegen.core.settings import Settings
        # The checker's pid, as the checker itself answers it: it is up and running.
        print(output_checks._checker(Settings(check_processes=1)).submit(os.getpid).result(), flush=True)
        import time
        time.sleep(600)
""")


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
        children = [int(host.stdout.readline())]
        assert children and all(running(pid) for pid in children)
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(running(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(running(pid) for pid in children)
    finally:
        if host.poll() is None:
            host.kill()
