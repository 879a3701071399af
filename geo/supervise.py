"""Run a set of child services (API, worker, dashboard …) as one unit: start each in order and wait for its
health check, restart one that dies (a limited number of times), and stop every one — with its whole process
group — on Ctrl-C, SIGTERM, a failed start or a death past the restart limit. Never leaves an orphan.

Children also get ``PR_SET_PDEATHSIG`` (Linux): if the supervisor itself is killed with SIGKILL, the kernel sends
each child SIGTERM. :func:`spawn` is the same start-up for anyone else starting servers (the test suite).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In a child (``preexec_fn``): ask the kernel to send *sig* when the parent dies (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover — no prctl: the supervisor still stops its children
            pass


def spawn(cmd: list[str], *, env: dict | None = None, cwd: str | Path | None = None, stdout=None, stderr=None,
          stdin=subprocess.DEVNULL) -> subprocess.Popen:
    """Start *cmd* in its own process group (so :func:`stop` reaches its children) that dies with this process.

    Parameters
    ----------
    cmd, env, cwd, stdout, stderr, stdin : as for :class:`subprocess.Popen`.

    Returns
    -------
    Popen : the child; stop it with :func:`stop`.
    """
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=stdout, stderr=stderr, stdin=stdin,
                            start_new_session=True, preexec_fn=die_with_parent)


def stop(p: subprocess.Popen, timeout: float = 10) -> int | None:
    """SIGTERM the process group of *p*, then SIGKILL it after *timeout* seconds. Returns the exit code."""
    if p.poll() is None:
        _killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
    _killpg(p.pid, signal.SIGKILL)  # whatever of its group is still there (grandchildren)
    return p.returncode


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on host:port (a bind attempt, as the server would make)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def http_ok(url: str) -> Callable[[], bool]:
    """A health check: GET *url* answers 200."""
    def check() -> bool:
        import httpx

        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
    return check


class StartError(RuntimeError):
    """A service did not become healthy; the message names it and says why."""


@dataclass
class Service:
    """One child service.

    Parameters
    ----------
    name : shown in messages (``API``, ``worker``, ``dashboard``).
    cmd : the command line.
    healthy : returns True once the service answers its health check.
    port : (host, port) it will listen on, checked free before starting.
    url : printed once healthy (``API: http://…``).
    env : its environment.
    """

    name: str
    cmd: list[str]
    healthy: Callable[[], bool]
    port: tuple[str, int] | None = None
    url: str | None = None
    env: dict | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)
    log: Path | None = None
    restarts: list[float] = field(default_factory=list)

    def tail(self, n: int = 15) -> str:
        """The last *n* lines of its log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except (OSError, AttributeError):
            return ""


class _Stop(Exception):
    pass


class Supervisor:
    """Start, watch and stop :class:`Service` s.

    Parameters
    ----------
    services : started in this order (each healthy before the next starts).
    log_dir : each service writes ``<name>.log`` here (and its current pid in ``<name>.pid``).
    start_timeout : seconds a service may take to become healthy.
    max_restarts : restarts allowed per service within *restart_window* seconds; one more death stops everything.
    say : where messages go (default: print to stdout, flushed).
    """

    def __init__(self, services: list[Service], log_dir: Path, *, start_timeout: float = 90, max_restarts: int = 3,
                 restart_window: float = 300, say: Callable[[str], None] | None = None):
        self.services, self.log_dir = services, Path(log_dir)
        self.start_timeout, self.max_restarts, self.restart_window = start_timeout, max_restarts, restart_window
        self.say = say or (lambda m: print(m, flush=True))
        self.log_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ starting
    def _start(self, s: Service) -> None:
        if s.port and port_in_use(*s.port):
            raise StartError(f"{s.name} cannot start: port {s.port[1]} on {s.port[0]} is already in use "
                             f"(another server is running there; stop it or choose another port)")
        s.log = self.log_dir / f"{s.name.lower()}.log"
        fh = open(s.log, "ab")
        try:
            s.proc = spawn(s.cmd, env=s.env, stdout=fh, stderr=subprocess.STDOUT)
        finally:
            fh.close()
        (self.log_dir / f"{s.name.lower()}.pid").write_text(f"{s.proc.pid}\n")
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if s.proc.poll() is not None:
                raise StartError(f"{s.name} exited with code {s.proc.returncode} while starting; last lines of "
                                 f"{s.log}:\n{s.tail()}")
            if s.healthy():
                return
            time.sleep(0.3)
        raise StartError(f"{s.name} did not answer its health check within {self.start_timeout:.0f} s; last lines "
                         f"of {s.log}:\n{s.tail()}")

    def start(self) -> None:
        """Start every service in order; on any failure stop those already started and raise :class:`StartError`."""
        try:
            for s in self.services:
                self._start(s)
        except BaseException:
            self.stop()
            raise

    # ------------------------------------------------------------------ watching
    def watch_once(self) -> bool:
        """Restart any service that died (within the limit). Returns False when one is past its limit."""
        for s in self.services:
            if s.proc is None or s.proc.poll() is None:
                continue
            code = s.proc.returncode
            now = time.monotonic()
            s.restarts = [t for t in s.restarts if now - t < self.restart_window]
            if len(s.restarts) >= self.max_restarts:
                self.say(f"{s.name} died (exit code {code}) {len(s.restarts) + 1} times within "
                         f"{self.restart_window:.0f} s; stopping everything. Last lines of {s.log}:\n{s.tail()}")
                return False
            s.restarts.append(now)
            self.say(f"{s.name} died (exit code {code}); restarting ({len(s.restarts)}/{self.max_restarts})")
            stop(s.proc, timeout=2)  # its group, if anything of it is left
            try:
                self._start(s)
            except StartError as exc:
                self.say(str(exc))
                return False
            self.say(f"{s.name} is back" + (f": {s.url}" if s.url else ""))
        return True

    def run(self, on_started: Callable[[], None] | None = None, poll: float = 1.0) -> int:
        """Start all, call *on_started*, watch until Ctrl-C/SIGTERM or a fatal death; always stop all.

        Returns
        -------
        int : 0 after Ctrl-C/SIGTERM, 1 when a service could not be started or kept running.
        """
        def _term(signum, frame):
            raise _Stop()

        old = signal.signal(signal.SIGTERM, _term)
        try:
            try:
                self.start()
            except StartError as exc:
                self.say(f"error: {exc}")
                return 1
            if on_started:
                on_started()
            while self.watch_once():
                time.sleep(poll)
            return 1
        except (KeyboardInterrupt, _Stop):
            self.say("stopping …")
            return 0
        finally:
            # a second Ctrl-C / SIGTERM while stopping must not cut the cleanup short
            old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                self.stop()
            finally:
                signal.signal(signal.SIGTERM, old)
                signal.signal(signal.SIGINT, old_int)

    def stop(self) -> None:
        """Stop every started service (reverse order), each with its process group."""
        for s in reversed(self.services):
            if s.proc is not None:
                stop(s.proc)
