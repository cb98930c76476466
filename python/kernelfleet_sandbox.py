"""Start one kernel inside kernelfleet's sandbox.

The Jupyter server (python/kernelfleet_jupyter.py) launches every kernel as

    python kernelfleet_sandbox.py '<settings json>' -- python -m ipykernel_launcher -f <file> ...

and this process stays the kernel's parent for the kernel's whole life:

- Limits (setrlimit, inherited by everything the kernel starts): address space, CPU seconds,
  processes, file size, open files; no core files. A limit of 0 leaves that one alone.
- When started as root (containers, CI), the kernel runs as an unprivileged user of its own: a
  uid taken from [uid_base, uid_base + uid_count) and held with a lock file for as long as this
  process and its cleaner live. Another uid means the kernel cannot signal or read the worker,
  the Jupyter server, this process or other kernels (/proc/<pid>/environ is closed to it), the
  process limit counts its processes only, and everything it left running can be found and
  killed by uid. It gets a private, emptied HOME/TMPDIR and a copy of its connection file it can
  read; umask 077.
- Places every user may write (/tmp, /var/tmp, /dev/shm, /run/lock) are the kernel's own: in a
  mount namespace of its own each is covered by an empty folder of the kernel's, and what the
  kernel needs below one (the interpreter, the kernel folders, its HOME) is bound back at its own
  path. An IPC namespace of its own keeps System V and POSIX message queues apart, and /proc
  shows the kernel only its own processes (hidepid), so no tenant sees another's command lines.
  Everything it left there is removed when it ends. Without the privilege for this (no
  CAP_SYS_ADMIN) the kernel starts without it and the first line on stderr says so; the worker's
  start-up probe reads that line and says it too.
- A cleaner process in a session of its own (so the Jupyter server's kill of this process group
  does not reach it) waits for this process to end, however it ends, then kills every process
  of the kernel's uid before the uid is handed to another kernel. Whoever takes a uid also
  kills what might be left of it first.
- This process is a child subreaper: whatever the kernel starts stays below it, even after a
  double fork or setsid. An interrupt (SIGINT: Jupyter signals the whole process group, the
  kernel takes it as KeyboardInterrupt) ends every process below us except the kernel itself:
  an execution stopped at its deadline or cancelled leaves nothing running (a fork bomb, a
  forgotten subprocess; swept until none has appeared for 0.3 s, since the kernel may fork
  until it takes the KeyboardInterrupt). SIGTERM is passed on to the kernel. If this process
  dies, the kernel gets SIGKILL (PR_SET_PDEATHSIG), so `os.kill(os.getppid(), 9)` ends one
  kernel at most (and as another uid it is refused outright). If the Jupyter server dies, the
  kernel is killed within half a second: no kernel outlives the server that started it.

Without root nothing changes uid and the limits still apply; the process limit then counts the
user's other processes too, so it is raised by as many as that user runs when the kernel starts
(root is exempt from it: as root without a uid switch it does not hold).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import random
import resource
import shutil
import signal
import sys
import threading
import time
from typing import Any, Iterator, NoReturn

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
# Places where any user may create files: each kernel gets its own (see the docstring).
SHARED_PLACES = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
# What the kernel's stderr says first when its places could not be made private.
SHARED_PLACES_NOTICE = "kernelfleet_sandbox: places not private:"
KILL_ROUNDS = 200
# After an interrupt: sweep every 20 ms until no stray appeared for 0.3 s (3 s at most).
SWEEP_EVERY_S = 0.02
QUIET_AFTER_INTERRUPT_S = 0.3
SWEEP_MAX_S = 3.0
# How often we look whether the Jupyter server that started us is still there.
PARENT_POLL_S = 0.5

LIMITS = {
    "address_space_bytes": resource.RLIMIT_AS,
    "cpu_seconds": resource.RLIMIT_CPU,
    "processes": resource.RLIMIT_NPROC,
    "file_size_bytes": resource.RLIMIT_FSIZE,
    "open_files": resource.RLIMIT_NOFILE,
}


def fail(message: str) -> NoReturn:
    print(f"kernelfleet_sandbox: {message}", file=sys.stderr, flush=True)
    os._exit(70)


def take_uid(settings: dict[str, Any]) -> tuple[int, int]:
    """A free sandbox uid and the fd of its lock (held by this process and its cleaner)."""
    lock_dir = settings["lock_dir"]
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    base, count = int(settings["uid_base"]), int(settings["uid_count"])
    start = random.randrange(count)
    for i in range(count):
        uid = base + (start + i) % count
        fd = os.open(os.path.join(lock_dir, f"{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return uid, fd
        except OSError:
            os.close(fd)
    fail(f"all {count} sandbox uids from {base} are in use")


def process_statuses() -> Iterator[tuple[int, dict[str, str]]]:
    """Every process now, with the fields of its /proc/<pid>/status."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as status:
                yield int(entry), dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue


def live_processes_of(uid: int) -> set[int]:
    """Processes (not zombies) that a process of `uid` may signal: real or saved uid `uid`."""
    found: set[int] = set()
    for pid, fields in process_statuses():
        real, _effective, saved = (fields.get("Uid", "").split() + ["-1"] * 3)[:3]
        if uid in (int(real), int(saved)) and fields.get("State", "").split()[:1] not in (["Z"], ["X"]):
            found.add(pid)
    return found


def kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid` (a child that becomes `uid` signals all it may: -1) until
    none is left. kill(-1) cannot tell: it answers success while any process exists at all."""
    if not live_processes_of(uid):
        return
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            me = os.getpid()
            for _ in range(KILL_ROUNDS):
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    pass
                if not live_processes_of(uid) - {me}:
                    break
                time.sleep(0.005)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def descendants(root: int) -> set[int]:
    """Every live process below `root` (from the parent pids in /proc/<pid>/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def kill_strays(keep: set[int]) -> bool:
    """SIGKILL every process below us but `keep`, again until none is left (they may fork).
    Answers whether there was any."""
    found = False
    for _ in range(KILL_ROUNDS):
        strays = descendants(os.getpid()) - keep
        if not strays:
            return found
        found = True
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.001)
        reap(strays)
    return found


class Interrupted(Exception):
    """Raised by the SIGINT handler to leave a blocking wait for the kernel."""


def sweep_after_interrupt(child: int, keep: set[int]) -> tuple[int, int] | None:
    """An interrupted kernel may still be forking until it takes its KeyboardInterrupt: strays
    are ended until none has appeared for QUIET_AFTER_INTERRUPT_S (SWEEP_MAX_S at most).
    Answers the kernel's (pid, status) if it ended meanwhile."""
    started = last_seen = time.monotonic()
    while True:
        now = time.monotonic()
        if now - last_seen >= QUIET_AFTER_INTERRUPT_S or now - started >= SWEEP_MAX_S:
            return None
        if kill_strays(keep):
            last_seen = time.monotonic()
        try:
            pid, status = os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            return child, 0
        if pid == child:
            return pid, status
        time.sleep(SWEEP_EVERY_S)


def reap(pids: set[int]) -> None:
    """Collects those of `pids` that are our children and have exited (orphans land here)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except OSError:
            pass


def private_home(settings: dict[str, Any], uid: int, connection_file: str | None) -> tuple[str, str | None]:
    """An emptied HOME for the uid (with tmp/), and a copy of the connection file it can read."""
    home = os.path.join(settings["run_dir"], str(uid))
    shutil.rmtree(home, ignore_errors=True)  # never follows symlinks
    os.makedirs(os.path.join(home, "tmp"), mode=0o700)
    for path in (home, os.path.join(home, "tmp")):
        os.chown(path, uid, uid)
        os.chmod(path, 0o700)
    copy = None
    if connection_file:
        copy = os.path.join(home, "connection.json")
        shutil.copyfile(connection_file, copy)
        os.chown(copy, uid, uid)
        os.chmod(copy, 0o600)
    return home, copy


def mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda text: None if text is None else os.fsencode(text)  # noqa: E731
    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source or fstype} on {target}: {os.strerror(errno)}")


def below(path: str, place: str) -> bool:
    return path == place or path.startswith(place.rstrip("/") + "/")


def shared_places() -> list[str]:
    """The SHARED_PLACES of this host that are folders any user may write (symlinks skipped)."""
    found = []
    for place in SHARED_PLACES:
        try:
            if not os.path.islink(place) and os.path.isdir(place) and os.stat(place).st_mode & 0o002:
                found.append(place)
        except OSError:
            continue
    return found


def make_places_private(home: str, uid: int, keep: list[str]) -> None:
    """In the kernel's child, before it drops root: a mount namespace (and IPC namespace) of its
    own where every shared place is an empty folder of the kernel's under `home`, the `keep`
    paths below them are bound back where they were, and /proc hides other users' processes.
    Sources are held open (O_PATH) first: once a place is covered their paths lead elsewhere."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS | CLONE_NEWIPC) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare: {os.strerror(errno)}")
    mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    places = shared_places()
    covers = []
    for place in places:
        private = os.path.join(home, "places", place.strip("/").replace("/", "-"))
        os.makedirs(private, mode=0o700)
        os.chown(private, uid, uid)
        os.chmod(private, 0o700)
        covers.append((place, os.open(private, os.O_PATH | os.O_CLOEXEC)))
    # A path as given and where it leads: a venv linked from /tmp must be found through the link.
    wanted = sorted({found for path in keep if os.path.exists(path) for found in (os.path.abspath(path), os.path.realpath(path))}, key=len)
    rebinds = []
    for path in wanted:
        inside = any(below(path, place) and path != place for place in places)
        if inside and not any(below(path, done) for done, _fd in rebinds):
            rebinds.append((path, os.open(path, os.O_PATH | os.O_CLOEXEC)))
    cwd = os.getcwd()
    for place, fd in covers:
        mount(libc, f"/proc/self/fd/{fd}", place, None, MS_BIND)
    for path, fd in rebinds:
        os.makedirs(path, mode=0o711, exist_ok=True)
        mount(libc, f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    for _path, fd in [*covers, *rebinds]:
        os.close(fd)
    mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    os.chdir(cwd)  # the same folder, now as this namespace sees it


def remove_home(home: str) -> None:
    """Everything the kernel left in its HOME and private places (never follows symlinks)."""
    shutil.rmtree(home, ignore_errors=True)


def start_cleaner(uid: int) -> int:
    """A process outside our process group that kills the uid's processes once we are gone."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(write_end)
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            while os.read(read_end, 1):
                pass
        except OSError:
            pass
        kill_uid(uid)
        os._exit(0)
    os.close(read_end)
    os.set_inheritable(write_end, False)  # the kernel must not keep the cleaner waiting
    return pid


def end_with_parent(child: int, parent: int) -> None:
    """Kills the kernel once the Jupyter server that started us is gone (SIGKILLed, OOM-killed):
    nobody can reach its kernels any more, and the worker starts a new server. The main loop
    then sees the kernel end and cleans up as always. Polled rather than PR_SET_PDEATHSIG, which
    fires when the server's launching *thread* ends, not the server."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def tasks_of(uid: int) -> int:
    """Processes and threads of `uid` now: what RLIMIT_NPROC counts."""
    return sum(
        int(fields.get("Threads", "1").strip() or 1)
        for _pid, fields in process_statuses()
        if int((fields.get("Uid", "").split() or ["-1"])[0]) == uid
    )


def set_limits(settings: dict[str, Any], as_other_user: bool) -> None:
    """As the worker's own user the process limit counts the worker's tasks too: it gets room
    for `processes` more than that user runs now (root ignores it altogether)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, which in LIMITS.items():
        value = int(settings.get("limits", {}).get(name, 0))
        if value <= 0:
            continue
        if which == resource.RLIMIT_NPROC and not as_other_user:
            value += tasks_of(os.getuid())
        resource.setrlimit(which, (value, value))


def exec_kernel(argv: list[str], settings: dict[str, Any], uid: int | None, home: str | None) -> NoReturn:
    try:
        if uid is not None and home is not None and settings.get("private_places", True):
            keep = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
                    os.path.dirname(os.path.abspath(__file__)), settings["run_dir"], os.getcwd(), *settings.get("keep_paths", [])]
            try:
                make_places_private(home, uid, keep)
            except OSError as error:
                print(f"{SHARED_PLACES_NOTICE} {error}", file=sys.stderr, flush=True)
        set_limits(settings, uid is not None)
        if uid is not None and home is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            tmp = os.path.join(home, "tmp")
            os.environ.update({"HOME": home, "TMPDIR": tmp, "TMP": tmp, "TEMP": tmp, "MPLCONFIGDIR": tmp})
            os.environ.pop("USER", None)
            os.environ.pop("LOGNAME", None)
        os.umask(0o077)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid: a uid change clears it
        if os.getppid() == 1:
            os._exit(70)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execvp(argv[0], argv)
    except BaseException as error:  # noqa: BLE001 - report anything and end this child
        fail(f"could not start the kernel: {error!r}")


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        fail("usage: kernelfleet_sandbox.py '<settings json>' -- <kernel argv>")
    settings = json.loads(sys.argv[1])
    argv = sys.argv[3:]
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    uid = home = None
    cleaner = None
    if settings.get("switch_user") and os.geteuid() == 0:
        uid, _lock = take_uid(settings)
        kill_uid(uid)  # whatever an earlier holder of this uid left behind
        connection_file = argv[argv.index("-f") + 1] if "-f" in argv else None
        home, copy = private_home(settings, uid, connection_file)
        if copy and connection_file:
            argv[argv.index("-f") + 1] = copy
        cleaner = start_cleaner(uid)

    child = os.fork()
    if child == 0:
        exec_kernel(argv, settings, uid, home)
    keep = {child} if cleaner is None else {child, cleaner}
    end_with_parent(child, parent)
    signal.signal(signal.SIGTERM, lambda signum, _frame: os.kill(child, signum))
    # The handler leaves the blocking wait (and only that: raised anywhere else it could skip
    # the kernel's exit); interrupts during a sweep extend nothing, the sweep runs anyway.
    blocked = [False]

    def on_interrupt(_signum: int, _frame: Any) -> None:
        if blocked[0]:
            raise Interrupted

    signal.signal(signal.SIGINT, on_interrupt)
    status = 0
    while True:
        try:
            blocked[0] = True
            pid, status = os.waitpid(-1, 0)
            blocked[0] = False
        except ChildProcessError:
            break
        except Interrupted:
            blocked[0] = False
            ended = sweep_after_interrupt(child, keep)
            if ended is None:
                continue
            pid, status = ended
        if pid == child:
            break
    kill_strays({cleaner} if cleaner is not None else set())
    if uid is not None:
        kill_uid(uid)
    if home is not None:
        remove_home(home)
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


if __name__ == "__main__":
    main()
