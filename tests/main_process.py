"""Running ``main.py`` as a user does (a subprocess in the repo, with its own settings) for the command-line tests."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from config.settings import setting_names

REPO = Path(__file__).resolve().parent.parent


# Compiled modules of the main.py processes go here (outside the repo), so each one does not compile them again.
BYTECODE_CACHE = Path(tempfile.gettempdir()) / "auto-coin-trader-tests-pycache"


def user_environment(folder: Path) -> dict[str, str]:
    """The environment without any of the bot's settings, plus a database, status and logs folder of its own."""
    names = set(setting_names())
    values = {key: value for key, value in os.environ.items()
              if key.upper() not in names and key != "PYTHONDONTWRITEBYTECODE"}
    values.update({
        "PYTHONPYCACHEPREFIX": str(BYTECODE_CACHE),
        "DB_URL": f"sqlite:///{folder / 'trader.db'}",
        "STATUS_DIR": str(folder / "status"),
        "LOG_DIR": str(folder / "logs"),
        "HEARTBEAT_INTERVAL_SEC": "0.5",
        "PYTHONUNBUFFERED": "1",
    })
    return values


def empty_env_file(folder: Path) -> Path:
    """A settings file with nothing in it, so a developer's own ``.env`` in the repo is never read."""
    path = folder / "empty.env"
    path.touch()
    return path


def run_main(args: list[str], env: dict[str, str], *, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env_file = empty_env_file(Path(env["STATUS_DIR"]).parent)
    return subprocess.run([sys.executable, "main.py", "--env-file", str(env_file), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


class RunningMain:
    """A ``main.py`` process whose stdout is read line by line as it comes (stderr goes to a file)."""

    def __init__(self, args: list[str], env: dict[str, str], stderr_path: Path) -> None:
        env_file = empty_env_file(Path(env["STATUS_DIR"]).parent)
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish()
        self.process = subprocess.Popen([sys.executable, "main.py", "--env-file", str(env_file), *args], cwd=REPO,
                                        env=env, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, text: str, timeout: float) -> None:
        """Read stdout until a line equal to ``text``; fail the test (and kill the process) after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._give_up(text, f"did not print it within {timeout:g} s")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self._give_up(text, "exited")
                return
            self.lines.append(line)
            if line == text:
                return

    def _give_up(self, text: str, what: str) -> None:
        self.process.kill()
        self.finish(timeout=30)
        pytest.fail(f"main.py {what} before printing {text!r}; stdout: {self.lines[-20:]}; "
                    f"stderr: {self.stderr_path.read_text(encoding='utf-8')[-2000:]}")

    def finish(self, timeout: float) -> tuple[int, str, str]:
        """Wait for the process to end; its exit code, all of stdout and all of stderr."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        self._stderr.close()
        return code, "\n".join(self.lines), self.stderr_path.read_text(encoding="utf-8")
