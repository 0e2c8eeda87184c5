"""The supervisor between the test runner and one walredo process (run as a script, stdlib only;
the shim server may import a marked launcher's module, see "Launchers the server runs in-process").

``sandbox.WalredoProcess.launch`` starts ``python -I -S _shim.py SPEC...``; this script starts the
walredo binary as its only direct child and watches over it and everything it forks. It never
touches the walredo's data: the three pipes arrive as its fds 0-2, go to the binary, and are
closed here right after the exec, so EOF on them means what it means for the binary alone.

Why a process of its own: to find every descendant of the binary, even one that calls
``setsid`` or double-forks, something must become the *child subreaper*
(``PR_SET_CHILD_SUBREAPER``) that orphans are re-parented to. The test runner itself cannot be
that: every orphan of every subprocess the tests start would come back to it, and reaping them
would steal the exit statuses ``subprocess.Popen`` waits for. A PID namespace or a cgroup would
also contain the tree, but need privileges a CI runner rarely has, and in a PID namespace the
binary would be PID 1 (signals without handlers ignored, orphans to reap), which changes how it
behaves; a subreaper works unprivileged on every Linux since 3.4.

SPEC is plain argv words, parsed by :func:`parse_spec` (no ``json``: every import here is paid
at each launch): ``PARENT LIFELINE CONTROL DEATH SWEEP_SECONDS NO_NEW_PRIVS(0|1) RLIMITS
NENV ENV... ARGV...``, where ``RLIMITS`` is ``NAME:SOFT:HARD,...`` (or ``-``) and the ``NENV``
words after it are ``KEY=VALUE``. Channels (fd numbers in SPEC):

* ``lifeline`` (read): the runner holds the only write end. A ``K`` byte asks for a sweep; EOF
  means the runner closed the process or died (even by SIGKILL): sweep and exit. A parent-death
  signal (SIGTERM, tied to the runner's long-lived spawner thread) does the same.
* ``control`` (write): one line each, in this order: ``pid N`` once the exec succeeded (or
  ``error ERRNO STAGE`` if it failed; then nothing else), ``exit CODE`` when the binary was
  reaped (negative: killed by that signal, as in ``subprocess``), ``swept KILLED LEFT`` after
  the sweep (``LEFT``: comma-separated pids that could not be killed, or ``-``). Also
  ``nosubreaper`` first if the kernel refused the subreaper flag.
* ``death`` (write): closed the moment the binary is reaped, so the runner's read end turns
  readable (EOF) and stays so: a level-triggered death signal that, unlike EOF on stdout, no
  descendant can hold back. Until it closes, the binary's pid cannot have been reused, so
  ``/proc/PID`` reads taken before it closed describe the binary.

Invariants: (S1) the binary is reaped only here, and ``exit`` is written before ``death`` is
closed; (S2) when the binary dies, by itself or because we were asked, every descendant still
alive is SIGKILLed and reaped before ``swept`` is written, and the shim exits after that;
(S3) the binary runs in its own session, with SIGKILL as its parent-death signal (if this
shim is killed outright, the binary dies with it), default SIGPIPE/SIGXFSZ dispositions, the
rlimits and ``no_new_privs`` of SPEC, and only fds 0-2.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import select
import sys
import time

TYPE_CHECKING = False  # typing costs start-up time; this script starts once per walredo
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable, Iterator
    from typing import Any

    Prctl = Callable[..., int]
else:
    import _signal as signal  # the C module under ``signal``, which would import ``enum``

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36


def _prctl() -> Prctl | None:
    # ctypes by hand: the standard library has no prctl().
    try:
        fn = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    fn.restype = ctypes.c_int
    return fn


def parse_spec(words: list[str]) -> dict[str, Any]:
    """The spec words (see the module docstring) as a dict; :func:`format_spec` inverts it."""
    parent, lifeline, control, death, sweep, nnp, limits, nenv = words[:8]
    n = int(nenv)
    env = dict(w.split("=", 1) for w in words[8:8 + n])
    rlimits = [] if limits == "-" else [
        (name, int(soft), int(hard))
        for name, soft, hard in (item.split(":") for item in limits.split(","))]
    return {"parent": int(parent), "lifeline": int(lifeline), "control": int(control),
            "death": int(death), "sweep_seconds": float(sweep), "no_new_privs": nnp == "1",
            "rlimits": rlimits, "env": env, "argv": words[8 + n:]}


def format_spec(spec: dict[str, Any]) -> list[str]:
    """The argv words of ``spec`` (the keys of :func:`parse_spec`)."""
    limits = ",".join(f"{name}:{soft}:{hard}" for name, soft, hard in spec["rlimits"]) or "-"
    env = [f"{k}={v}" for k, v in spec["env"].items()]
    return [str(spec["parent"]), str(spec["lifeline"]), str(spec["control"]),
            str(spec["death"]), str(spec["sweep_seconds"]), "1" if spec["no_new_privs"] else "0",
            limits, str(len(env)), *env, *spec["argv"]]


def _say(fd: int, line: str) -> None:
    try:
        os.write(fd, (line + "\n").encode())
    except OSError:
        pass  # the runner is gone; the sweep still happens


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) for every process in /proc."""
    table: dict[int, tuple[int, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        table[int(name)] = (int(fields[1]), fields[0].decode())
    return table


def _children(pid: int) -> list[int] | None:
    """The children of ``pid`` from ``/proc/PID/task/*/children`` (None: the kernel does not
    offer the file). Reads only this process's own entries, not the whole process table."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []  # gone meanwhile
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out += [int(w) for w in f.read().split()]
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended
            return None
    return out


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()[0].decode()


def descendants(root: int) -> dict[int, str]:
    """pid -> state of every process below ``root``: walked down the children lists where the
    kernel has them (cheap), else from the whole process table."""
    found: dict[int, str] = {}
    todo = _children(root)
    while todo is not None and todo:
        pid = todo.pop()
        state = _state(pid)
        if pid in found or state is None:
            continue
        found[pid] = state
        below = _children(pid)
        if below is None:
            todo = None
            break
        todo += below
    if todo is not None:
        return found
    return _descendants_from_table(root)


def _descendants_from_table(root: int) -> dict[int, str]:
    children: dict[int, list[int]] = {}
    table = _process_table()
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, str] = {}
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found[pid] = table[pid][1]
        todo += children.get(pid, ())
    return found


def _drain(wakeup_fd: int) -> None:
    """Empty the signal wake-up pipe (its bytes only say that a signal came)."""
    try:
        os.read(wakeup_fd, 512)
    except BlockingIOError:
        pass


def _reap_children() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of every child that has exited, reaped now (never blocks)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def _run_in_process(entry: Any, argv: list[str], env: dict[str, str]) -> None:
    """What ``execve`` of a fork-server launcher (see :func:`fork_entry`) would do, without the
    interpreter start: the state a fresh ``python -I`` gives its script, then ``entry.main``.

    Called in the binary's process after every step of (S3) but the exec itself. Closing
    every fd but 0-2 plays the part of close-on-exec: the error pipe's EOF tells the shim that
    the "exec" succeeded, and the shim's own pipes leave this process as they would.
    """
    os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
    # CPython's own start-up: SIGPIPE and SIGXFSZ ignored (a closed pipe is EPIPE, not death),
    # SIGINT raises KeyboardInterrupt.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = list(argv)
    code = 1
    try:
        code = entry.main(argv[1:])
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
    os._exit(code if isinstance(code, int) else 1)


def _set_limit(which: int, soft: int, hard: int) -> None:
    """Set one resource limit of this process; a refusal is an OSError carrying its errno.
    (CPython's setrlimit turns EPERM and EINVAL into a ValueError without an errno, which
    would reach the runner as "Success"; prlimit keeps EPERM's errno, and its ValueError is
    EINVAL.)"""
    try:
        if hasattr(resource, "prlimit"):
            resource.prlimit(0, which, (soft, hard))
        else:
            resource.setrlimit(which, (soft, hard))
    except ValueError as exc:
        raise OSError(errno.EINVAL, str(exc)) from None


class Shim:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.control: int = spec["control"]
        self.death: int | None = spec["death"]
        self.lifeline: int = spec["lifeline"]
        self.child = 0
        self.child_status: int | None = None
        self.stop = False

    # -- reaping ------------------------------------------------------------------------------

    def reap(self) -> None:
        """Reap every child that has exited; report the binary's status (S1)."""
        for pid, status in _reap_children():
            if pid == self.child and self.child_status is None:
                self.child_status = os.waitstatus_to_exitcode(status)
                _say(self.control, f"exit {self.child_status}")
                if self.death is not None:
                    os.close(self.death)
                    self.death = None

    def sweep(self, seconds: float) -> tuple[int, list[int]]:
        """SIGKILL and reap every descendant (S2); return (killed, pids left alive)."""
        me = os.getpid()
        killed: set[int] = set()
        end = time.monotonic() + seconds
        while True:
            self.reap()
            try:
                below = descendants(me)
            except OSError:  # no /proc: at least the binary's process group
                below = {}
                if self.child_status is None:
                    try:
                        os.killpg(self.child, signal.SIGKILL)
                    except OSError:
                        pass
            if not below or time.monotonic() > end:
                break
            for pid, state in below.items():
                if state in ("Z", "X"):
                    continue  # exited; reaped here once its parent is gone
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except OSError:
                    pass
            time.sleep(0.001)
        self.reap()
        try:
            left = sorted(descendants(me))
        except OSError:
            left = []
        return len(killed), left

    # -- start --------------------------------------------------------------------------------

    def start(self) -> bool:
        spec = self.spec
        prctl = _prctl()
        if prctl is None or prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            _say(self.control, "nosubreaper")
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != spec["parent"]:
            return False  # the runner died before the signal was armed
        for fd in (self.control, spec["death"], self.lifeline):
            os.set_inheritable(fd, False)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._exec_child(err_w, prctl, me)  # never returns
        os.close(err_w)
        self.child = pid
        failure = b""
        while True:
            part = os.read(err_r, 64)
            if not part:
                break
            failure += part
        os.close(err_r)
        if failure:
            os.waitpid(pid, 0)
            _say(self.control, f"error {failure.decode()}")
            return False
        # Our copies of the walredo's pipes would hold its stdout/stderr open: give them up.
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        _say(self.control, f"pid {pid}")
        return True

    def _exec_child(self, err_w: int, prctl: Prctl | None, shim_pid: int) -> None:
        stage = "setsid"
        try:
            os.setsid()
            stage = "prctl"
            if prctl is not None:
                prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != shim_pid:
                os._exit(127)
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGTERM,
                        signal.SIGHUP, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            stage = "rlimit"
            for name, soft, hard in self.spec["rlimits"]:
                _set_limit(getattr(resource, name), soft, hard)
            if self.spec["no_new_privs"]:
                stage = "no_new_privs"
                if prctl is None or prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
            stage = "exec"
            argv = self.spec["argv"]
            entry = self.spec.get("entry")
            if entry is not None:
                _run_in_process(entry, argv, self.spec["env"])  # never returns
            os.execve(argv[0], argv, self.spec["env"])
        except OSError as exc:
            os.write(err_w, f"{exc.errno or 0} {stage}".encode())
        except BaseException:
            os.write(err_w, f"0 {stage}".encode())
        finally:
            os._exit(127)

    # -- watch --------------------------------------------------------------------------------

    def watch(self) -> None:
        """Wait until the binary dies, a sweep is asked for, or the runner goes away."""
        wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.set_wakeup_fd(wake_w)

        def on_stop(signum: int, frame: object) -> None:
            self.stop = True

        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, on_stop)
        poller = select.poll()
        poller.register(self.lifeline, select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        while True:
            self.reap()  # also catches a child that died before the handler was set
            if self.child_status is not None or self.stop:
                return
            for fd, _ in poller.poll():
                if fd == wake_r:
                    _drain(wake_r)
                elif fd == self.lifeline:
                    data = os.read(self.lifeline, 512)
                    if not data or b"K" in data:
                        self.stop = True


def run(spec: dict[str, Any]) -> int:
    shim = Shim(spec)
    if not shim.start():
        return 1
    shim.watch()
    killed, left = shim.sweep(float(spec["sweep_seconds"]))
    _say(shim.control, f"swept {killed} {','.join(map(str, left)) or '-'}")
    return 0


def main() -> int:
    if sys.argv[1:2] == ["--server"]:
        return serve(int(sys.argv[2]), int(sys.argv[3]))
    return run(parse_spec(sys.argv[1:]))


# ---------------------------------------------------------------------------------------------
# The shim server: one per test runner, forking a shim per walredo
# ---------------------------------------------------------------------------------------------
#
# Starting an interpreter per walredo costs tens of milliseconds (more than the walredo's own
# start). ``_shim.py --server LIFELINE SOCKET`` is started once per runner; for each launch the
# runner sends the spec words and the six fds (the walredo's stdin, stdout and stderr, then
# the shim's lifeline, control and death pipes) over SOCKET (SCM_RIGHTS), and the server
# forks a shim that runs exactly as ``_shim.py SPEC`` would (``run``), with those fds, and
# answers with the shim's pid. The server is the shims' parent (their parent-death signal is
# tied to it) and reaps them; it exits when its LIFELINE ends (the runner closed it or died)
# or on SIGTERM (the runner's spawner thread ended). A shim whose server died still has its
# own lifeline to the runner, so every guarantee above holds either way.


def serve(lifeline: int, sock_fd: int) -> int:
    import socket

    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    sock = socket.socket(fileno=sock_fd)
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    stop = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(1))
    poller = select.poll()
    for fd in (lifeline, sock_fd, wake_r):
        poller.register(fd, select.POLLIN)
    while not stop:
        for fd, _ in poller.poll():
            if fd == wake_r:
                _drain(wake_r)
                for _ in _reap_children():
                    pass  # a shim ended: nothing to report, the runner has its pidfd
            elif fd == lifeline:
                if not os.read(lifeline, 512):
                    return 0
            elif fd == sock_fd:
                try:
                    msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 6)
                except OSError:
                    return 0
                if not msg:
                    return 0
                pid = _fork_shim(msg, fds, (lifeline, sock_fd, wake_r, wake_w))
                for fd_ in fds:
                    os.close(fd_)
                # A pidfd opened before the shim can be reaped here: the runner waits for and
                # signals this very process, whatever happens to the pid later.
                pidfd = os.pidfd_open(pid)
                try:
                    socket.send_fds(sock, [f"{pid}\n".encode()], [pidfd])
                finally:
                    os.close(pidfd)
    return 0



def _fork_shim(msg: bytes, fds: list[int], server_fds: tuple[int, ...]) -> int:
    """Fork a shim for one launch request (``WORKDIR\0SPEC WORDS...``, six fds)."""
    words = msg.decode("utf-8", "surrogateescape").split("\0")
    workdir, spec_words = words[0], words[1:]
    spec = parse_spec(spec_words)
    spec["entry"] = fork_entry(spec["argv"][0]) if spec["argv"] else None
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        for fd in server_fds:
            os.close(fd)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        os.setsid()
        if workdir:
            os.chdir(workdir)
        # The walredo's pipes become fds 0-2, the shim's own pipes 3-5, and nothing else stays.
        import fcntl

        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in fds]
        for target, fd in enumerate(high):
            os.dup2(fd, target, inheritable=target < 3)
        os.closerange(6, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
        spec.update(parent=parent, lifeline=3, control=4, death=5)
        os._exit(run(spec))
    except BaseException:
        os._exit(1)


# ---------------------------------------------------------------------------------------------
# Launchers the server runs in-process
# ---------------------------------------------------------------------------------------------
#
# A Python walredo (the embedded reference) spends most of its start-up starting CPython and
# importing its modules. A launcher script may declare that the server can skip both: its
# first line is ``#!<this interpreter> -I`` and one of its next lines is
#
#     # walredo-fork-server: MODULE PATH
#
# which promises that running the script is ``sys.exit(MODULE.main(sys.argv[1:]))`` with PATH
# first on ``sys.path``, and that ``MODULE.prefork()`` imports what ``main`` needs. The server
# then imports MODULE once (with ``site`` on, as ``-I`` has it), and the binary's process, forked
# from its shim with every guarantee of (S3), calls ``main`` instead of exec'ing the script.
# The script stays a complete program: without a server (``_shim.py SPEC``), or when the
# import fails here, it is exec'd as any binary.

FORK_MARK = "# walredo-fork-server: "
_entries: dict[tuple[str, str], Any] = {}


def fork_entry(path: str) -> Any:
    """The imported MODULE of a fork-server launcher at ``path``, or None (exec it)."""
    if not os.path.isabs(path):
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(1024).decode("utf-8", "surrogateescape")
    except OSError:
        return None
    lines = head.split("\n")
    if lines[0] != f"#!{sys.executable} -I":
        return None
    for line in lines[1:6]:
        if line.startswith(FORK_MARK):
            module, _, parent = line[len(FORK_MARK):].partition(" ")
            return _load_entry(module, parent)
    return None


def _load_entry(module: str, parent: str) -> Any:
    key = (module, parent)
    if key in _entries:
        return _entries[key]
    _entries[key] = None
    if any(k[0] == module for k in _entries if k != key):
        return None  # another copy of MODULE is loaded here; two cannot share one interpreter
    try:
        import gc
        import importlib
        import site

        site.main()
        sys.path.insert(0, parent)
        entry = importlib.import_module(module)
        entry.prefork()
        gc.freeze()  # what is loaded now stays shared with every forked child, untouched
    except BaseException:
        return None
    _entries[key] = entry
    return entry


if __name__ == "__main__":
    os._exit(main())  # nothing to flush or finalize: skip the interpreter's teardown
