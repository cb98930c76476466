"""Session files: one file operation in a kernelfleet session's folder, links never followed.

The worker runs this once per operation, as the session kernel's own uid when the worker is root
(otherwise as itself), so the file api reaches nothing the kernel itself could not:

    python -I kernelfleet_files.py ROOT OP [PATH] [--option value ...]

ROOT is the session folder's absolute path. PATH is relative to it ("a/b/c.txt": no leading /,
no empty, "." or ".." names); the worker checked it already and this process checks it again.
stdout carries control messages, one compact JSON line each, and for get and get-tar the raw
bytes after the first line. A refusal is the line {"error": {"status", "code", "detail"}} and
exit code 0. Anything unforeseen exits non-zero with a traceback on stderr; after get's or
get-tar's first line that means the bytes sent are incomplete.

    put PATH --max-bytes N --quota Q [--declared N]
        {"ready": true, "used": U}, then reads the file's bytes from stdin to EOF,
        then {"ok": true, "path", "size", "sha256", "created"}
    get PATH                {"size": N}, then exactly N bytes
    delete PATH             {"ok": true, "deleted": "file" | "folder" | "link"}
    list [--prefix P] [--after PATH] [--limit N]
                            {"files": [{"path", "size", "modifiedAt"}], "next": PATH | null}
    usage                   {"bytes": N, "files": N}
    put-tar DIR --max-bytes N --quota Q [--declared N]
        {"ready": true, "used": U}, then reads a tar stream (plain, gzip, bzip2 or xz) from
        stdin, then {"ok": true, "path": DIR, "files": N, "bytes": N}
    get-tar DIR             {"ok": true}, then a tar stream of DIR's files and folders

DIR is "" for the session's folder itself. U is what the session's regular files take, less the
file put replaces. A missing ROOT is an error for put and put-tar and nothing at all for reads.
list and get-tar skip names that are not UTF-8 (no request can name them) and temp names.

Error codes: 400 bad_request, bad_path, bad_archive, size_mismatch (fewer or more bytes than
--declared); 404 not_found; 409 link, not_a_folder, is_a_folder, not_a_file (FIFO, socket),
permission_denied (closed by the kernel to itself), busy (a lease), changed (moved meanwhile);
413 file_too_large, quota_exceeded; 500 session_missing, disk_full.

Kernel code is hostile: it may put links where we expect folders (to /etc, to another session,
to the worker's files), FIFOs where we expect files, and swap a folder for a link while we work.
So no path string below ROOT ever reaches the operating system. Every name is opened relative
to its folder's descriptor (dir_fd) with O_NOFOLLOW: a link is refused or skipped, never
followed, and a folder swapped after we opened it leaves us in the folder we opened. Files are
opened O_NONBLOCK and must fstat as regular, so a FIFO cannot hold a read. Uploads go to a temp
file (.kf-upload-<hex>, O_EXCL) in the target's folder and are renamed into place: a rename
replaces a link of that name, it does not write through it. put-tar unpacks into a staging
folder of that name in ROOT and moves files into place only once the whole archive was good.

Limits: --max-bytes (FILE_MAX_BYTES) per file and --quota (SESSION_FILES_MAX_BYTES) for all
regular files in ROOT, checked before the first byte when the size is announced and again as
bytes arrive. SIGTERM at any time removes what this process made and has not put in place
yet, and exits 143.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import secrets
import signal
import stat
import sys
import tarfile
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO, Callable, Iterator, NoReturn

PATH_MAX_BYTES = 1024
NAME_MAX_BYTES = 255
TEMP_PREFIX = ".kf-upload-"
CHUNK_BYTES = 1 << 16
DEFAULT_LIST_LIMIT = 1000
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
FOLDER_MODE = 0o700
FILE_MODE = 0o644
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
# Errors an open by name answers when the name is there but is not what we may open.
NOT_A_FOLDER = (errno.ELOOP, errno.ENOTDIR)
GONE_OR_NOT_A_FOLDER = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR)


class Refusal(Exception):
    """A request this process answers with an error line (exit code 0)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail

    def message(self) -> dict:
        return {"error": {"status": self.status, "code": self.code, "detail": self.detail}}


def emit(message: dict) -> None:
    sys.stdout.buffer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
    sys.stdout.buffer.flush()


# --- Arguments -------------------------------------------------------------------------------


def bad_request(detail: str) -> Refusal:
    return Refusal(400, "bad_request", detail)


def options(args: list[str], known: dict[str, str | None]) -> dict[str, str]:
    """`--name value` pairs; `known` maps each name to its default (None: required). Values are
    taken as they are, a leading "-" included."""
    if len(args) % 2:
        raise bad_request(f"Options come in pairs (--name value): {args}.")
    given: dict[str, str] = {}
    for flag, value in zip(args[::2], args[1::2]):
        name = flag.removeprefix("--")
        if not flag.startswith("--") or name not in known or name in given:
            raise bad_request(f"Unknown or repeated option {flag!r}.")
        given[name] = value
    missing = [f"--{name}" for name, default in known.items() if default is None and name not in given]
    if missing:
        raise bad_request(f"Missing {', '.join(missing)}.")
    return {name: given.get(name, default) or "" for name, default in known.items()}


def positional(args: list[str], what: str) -> tuple[str, list[str]]:
    if not args:
        raise bad_request(f"The {what} is missing.")
    return args[0], args[1:]


def whole_number(value: str, name: str, minimum: int = 0) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < minimum:
        raise bad_request(f"--{name} must be a whole number of at least {minimum}, not {value!r}.")
    return int(value)


def optional_number(value: str, name: str) -> int | None:
    return None if value == "" else whole_number(value, name)


# --- Paths -----------------------------------------------------------------------------------


def path_problem(path: str, *, partial_last: bool = False) -> str | None:
    """Why `path` is not a relative path the file api takes, as the end of a sentence, or None.
    With partial_last the last segment is the start of a name (a list prefix): it may be empty,
    ".", or "..", since it is only compared with names, never opened."""
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if not path:
        return "is empty"
    if size > PATH_MAX_BYTES:
        return f"is longer than {PATH_MAX_BYTES} bytes"
    if path.startswith("/"):
        return "starts with / (paths are relative to the session's folder)"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return "holds a control character"
    if "\\" in path:
        return "holds a backslash (folders are separated by /)"
    segments = path.split("/")
    whole = segments[:-1] if partial_last else segments
    if "" in whole:
        return "has an empty name (// or a / at the end)"
    if "." in whole or ".." in whole:
        return 'has a "." or ".." name'
    if any(len(segment.encode("utf-8")) > NAME_MAX_BYTES for segment in segments):
        return f"has a name longer than {NAME_MAX_BYTES} bytes"
    return None


def segments_of(path: str, *, root_allowed: bool = False) -> list[str]:
    """The names along `path`, checked again; "" is the session's folder when root_allowed."""
    if path == "" and root_allowed:
        return []
    problem = path_problem(path)
    if problem:
        raise Refusal(400, "bad_path", f'The path "{path}" {problem}.')
    return path.split("/")


def checked_prefix(prefix: str) -> str:
    problem = path_problem(prefix, partial_last=True) if prefix else None
    if problem:
        raise Refusal(400, "bad_path", f'The prefix "{prefix}" {problem}.')
    return prefix


def joined(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def is_scratch(path: str) -> bool:
    """Whether a path is (inside) an upload's temp file or staging folder."""
    return any(segment.startswith(TEMP_PREFIX) for segment in path.split("/"))


def utf8(path: str) -> bytes | None:
    """The path's UTF-8 bytes; None for a name that is not UTF-8 (kernel code may make one),
    which no request can name, so listings skip it."""
    try:
        return path.encode("utf-8")
    except UnicodeEncodeError:
        return None


# --- Opening names relative to a folder ---------------------------------------------------------


def refused(error: OSError, shown: str) -> Exception:
    """The refusal for an error opening or replacing `shown`; the error itself if unforeseen."""
    known = {
        errno.ENOENT: (404, "not_found", f'"{shown}" does not exist.'),
        errno.ELOOP: (409, "link", f'"{shown}" is a symbolic link; the file api never follows links.'),
        errno.ENOTDIR: (409, "not_a_folder", f'"{shown}" is not a folder.'),
        errno.EISDIR: (409, "is_a_folder", f'"{shown}" is a folder.'),
        errno.ENXIO: (409, "not_a_file", f'"{shown}" is not a regular file.'),
        errno.EAGAIN: (409, "busy", f'"{shown}" is locked by the session\'s kernel.'),
        errno.EACCES: (409, "permission_denied", f'The session\'s kernel may not use "{shown}", so the file api may not either.'),
        errno.EPERM: (409, "permission_denied", f'The session\'s kernel may not use "{shown}", so the file api may not either.'),
    }
    return Refusal(*known[error.errno]) if error.errno in known else error


def refused_folder(error: OSError, dir_fd: int, name: str, shown: str) -> Exception:
    """As refused, for an open with O_DIRECTORY | O_NOFOLLOW, which answers ENOTDIR for a link as
    for a file: an lstat tells them apart (for the answer only; nothing is opened by it)."""
    if error.errno in NOT_A_FOLDER and is_link(dir_fd, name):
        return refused(OSError(errno.ELOOP, os.strerror(errno.ELOOP)), shown)
    return refused(error, shown)


def open_root(root: str) -> int | None:
    """The session's folder; None if it is missing (or is not a folder)."""
    if not os.path.isabs(root):
        raise bad_request(f"ROOT must be an absolute path, not {root!r}.")
    try:
        return os.open(root, FOLDER_FLAGS)
    except OSError as error:
        if error.errno in GONE_OR_NOT_A_FOLDER:
            return None
        raise


def open_folder(dir_fd: int, name: str, shown: str, *, create: bool = False) -> int | None:
    """The folder `name` in dir_fd, never through a link: None when there is none (and create is
    False). Refuses a link (409 link) or anything else that is not a folder (409 not_a_folder)."""
    try:
        return os.open(name, FOLDER_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if not create:
            return None
    except OSError as error:
        raise refused_folder(error, dir_fd, name, shown) from None
    with suppress(FileExistsError):  # made meanwhile: taken as it is, or refused below
        os.mkdir(name, FOLDER_MODE, dir_fd=dir_fd)
    try:
        return os.open(name, FOLDER_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        raise refused_folder(error, dir_fd, name, shown) from None


def is_link(dir_fd: int, name: str) -> bool:
    """Whether `name` in dir_fd is a symbolic link now."""
    st = entry_stat(dir_fd, name)
    return st is not None and stat.S_ISLNK(st.st_mode)


def open_chain(top_fd: int, segments: list[str], shown_above: str = "", *, create: bool = False) -> int | None:
    """The folder at the end of `segments` below top_fd, opened one name at a time with
    open_folder; None when one is missing (and create is False). The caller closes it."""
    fd = os.dup(top_fd)
    shown = shown_above
    for name in segments:
        shown = joined(shown, name)
        try:
            child = open_folder(fd, name, shown, create=create)
        finally:
            os.close(fd)
        if child is None:
            return None
        fd = child
    return fd


def open_folder_quietly(dir_fd: int, name: str, *, skip_closed: bool = False) -> int | None:
    """The folder `name` in dir_fd, or None if it is no (longer a) folder; with skip_closed also
    None for one closed to us (the kernel's chmod 000)."""
    try:
        return os.open(name, FOLDER_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        if skip_closed:
            return None
        raise
    except OSError as error:
        if error.errno in GONE_OR_NOT_A_FOLDER:
            return None
        raise


def entry_stat(dir_fd: int, name: str) -> os.stat_result | None:
    """lstat of `name` in dir_fd (a link is described, not followed); None if there is none."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_regular(dir_fd: int, name: str, shown: str) -> tuple[int, os.stat_result]:
    """A regular file opened for reading: never through a link, never blocking on a FIFO."""
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        raise refused(error, shown) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise Refusal(409, "is_a_folder", f'"{shown}" is a folder.')
        raise Refusal(409, "not_a_file", f'"{shown}" is not a regular file (it is a FIFO, a socket or a device).')
    return fd, st


def walk(top_fd: int, descend: Callable[[str], bool] = lambda folder: True) -> Iterator[tuple[int, str, str, os.stat_result]]:
    """Every entry below top_fd as (its folder's fd, its name, its path below top_fd, its lstat).
    Goes into real folders only, those for which descend(path + "/") holds; links, FIFOs and
    sockets are reported, never opened. One descriptor is open per level."""
    stack = [(os.dup(top_fd), "", iter(os.listdir(top_fd)))]
    try:
        while stack:
            fd, above, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(fd)
                stack.pop()
                continue
            st = entry_stat(fd, name)
            if st is None:
                continue
            path = joined(above, name)
            yield fd, name, path, st
            if stat.S_ISDIR(st.st_mode) and descend(path + "/"):
                child = open_folder_quietly(fd, name, skip_closed=True)
                if child is not None:
                    stack.append((child, path, iter(os.listdir(child))))
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def measure(root_fd: int) -> tuple[int, int]:
    """Bytes and number of the regular files below root_fd."""
    total = count = 0
    for _, _, _, st in walk(root_fd):
        if stat.S_ISREG(st.st_mode):
            total += st.st_size
            count += 1
    return total, count


def remove_entry(dir_fd: int, name: str) -> str:
    """Removes `name` from its folder: a folder with all it holds, anything else (a link
    included) itself; nothing is followed. Answers "folder", "link" or "file"."""
    try:
        fd = os.open(name, FOLDER_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno not in NOT_A_FOLDER:
            raise
        kind = "link" if is_link(dir_fd, name) else "file"
        os.unlink(name, dir_fd=dir_fd)
        return kind
    try:
        empty_folder(fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)
    return "folder"


def empty_folder(folder_fd: int) -> None:
    """Removes everything in a folder, depth first, one descriptor per level, nothing followed."""
    stack: list[tuple[int, str, Iterator[str]]] = [(os.dup(folder_fd), "", iter(os.listdir(folder_fd)))]
    try:
        while stack:
            fd, _, names = stack[-1]
            name = next(names, None)
            if name is not None:
                child = open_folder_quietly(fd, name)
                if child is not None:
                    stack.append((child, name, iter(os.listdir(child))))
                else:
                    with suppress(FileNotFoundError):
                        os.unlink(name, dir_fd=fd)
                continue
            os.close(fd)
            _, emptied, _ = stack.pop()
            if stack:
                os.rmdir(emptied, dir_fd=stack[-1][0])
    finally:
        for fd, _, _ in stack:
            os.close(fd)


# --- Scratch: temp files and staging folders not in place yet ----------------------------------


class Scratch:
    """What this process made and has not put in place yet, removed on a refusal, a crash or
    SIGTERM. Each entry's folder descriptor stays open while the entry is listed."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, str]] = []

    def make(self, dir_fd: int, *, folder: bool) -> tuple[str, int]:
        """A new temp file (opened for writing) or staging folder (opened) in dir_fd."""
        while True:
            name = TEMP_PREFIX + secrets.token_hex(8)
            with sigterm_held():
                try:
                    if folder:
                        os.mkdir(name, FOLDER_MODE, dir_fd=dir_fd)
                    else:
                        fd = os.open(name, CREATE_FLAGS, FILE_MODE, dir_fd=dir_fd)
                except FileExistsError:
                    continue
                self.entries.append((dir_fd, name))
            return name, open_folder(dir_fd, name, name, create=True) if folder else fd

    def forget(self, dir_fd: int, name: str) -> None:
        self.entries.remove((dir_fd, name))

    def remove_all(self) -> None:
        while self.entries:
            dir_fd, name = self.entries.pop()
            with suppress(OSError):
                remove_entry(dir_fd, name)


SCRATCH = Scratch()


@contextmanager
def sigterm_held() -> Iterator[None]:
    """Holds SIGTERM back while a step and its bookkeeping in SCRATCH happen together."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def on_sigterm(_signum: int, _frame: object) -> NoReturn:
    SCRATCH.remove_all()
    os._exit(EXIT_TERMINATED)


# --- Limits ----------------------------------------------------------------------------------


@dataclass
class Budget:
    """FILE_MAX_BYTES per file and SESSION_FILES_MAX_BYTES for the session's files in all."""

    max_bytes: int
    quota: int
    used: int

    def check_file(self, size: int, shown: str) -> None:
        if size > self.max_bytes:
            raise Refusal(413, "file_too_large", f'"{shown}" is larger than FILE_MAX_BYTES allows ({self.max_bytes} bytes).')

    def check_session(self, added: int) -> None:
        if self.used + added > self.quota:
            raise Refusal(
                413,
                "quota_exceeded",
                f"The session's files would take more than SESSION_FILES_MAX_BYTES allows ({self.quota} bytes); "
                f"they take {self.used} bytes now (a file being replaced not counted).",
            )


def copy_in(read: Callable[[int], bytes], out: IO[bytes], budget: Budget, shown: str) -> tuple[int, str]:
    """Copies `read` to its end into `out` within the budget; answers the size and sha256."""
    digest = hashlib.sha256()
    size = 0
    while chunk := read(CHUNK_BYTES):
        size += len(chunk)
        budget.check_file(size, shown)
        budget.check_session(size)
        digest.update(chunk)
        out.write(chunk)
    return size, digest.hexdigest()


def budget_from(root_fd: int, opts: dict[str, str], replaced: int = 0) -> Budget:
    return Budget(
        max_bytes=whole_number(opts["max-bytes"], "max-bytes"),
        quota=whole_number(opts["quota"], "quota"),
        used=measure(root_fd)[0] - replaced,
    )


# --- Operations ------------------------------------------------------------------------------

UPLOAD_OPTIONS: dict[str, str | None] = {"max-bytes": None, "quota": None, "declared": ""}


def put(root: str, args: list[str]) -> None:
    path, rest = positional(args, "PATH")
    opts = options(rest, UPLOAD_OPTIONS)
    *folders, name = segments_of(path)
    declared = optional_number(opts["declared"], "declared")
    root_fd = open_root(root)
    if root_fd is None:
        raise Refusal(500, "session_missing", "The session's folder is missing on the worker.")
    folder_fd = open_chain(root_fd, folders)
    old = entry_stat(folder_fd, name) if folder_fd is not None else None
    if old is not None and stat.S_ISDIR(old.st_mode):
        raise Refusal(409, "is_a_folder", f'"{path}" is a folder.')
    budget = budget_from(root_fd, opts, old.st_size if old is not None and stat.S_ISREG(old.st_mode) else 0)
    if declared is not None:
        budget.check_file(declared, path)
        budget.check_session(declared)
    if folder_fd is None:
        folder_fd = open_chain(root_fd, folders, create=True)
    emit({"ready": True, "used": budget.used})

    temp, fd = SCRATCH.make(folder_fd, folder=False)
    with os.fdopen(fd, "wb") as out:
        size, sha256 = copy_in(lambda n: os.read(sys.stdin.fileno(), n), out, budget, path)
    if declared is not None and size != declared:
        raise Refusal(400, "size_mismatch", f"The upload ended after {size} bytes; {declared} were announced.")
    created = entry_stat(folder_fd, name) is None
    with sigterm_held():
        try:
            os.rename(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        except OSError as error:
            raise refused(error, path) from None
        SCRATCH.forget(folder_fd, temp)
    emit({"ok": True, "path": path, "size": size, "sha256": sha256, "created": created})


def get(root: str, args: list[str]) -> None:
    path, rest = positional(args, "PATH")
    options(rest, {})
    *folders, name = segments_of(path)
    root_fd = open_root(root)
    folder_fd = open_chain(root_fd, folders) if root_fd is not None else None
    if folder_fd is None:
        raise Refusal(404, "not_found", f'"{path}" does not exist.')
    fd, st = open_regular(folder_fd, name, path)
    emit({"size": st.st_size})
    send(fd, st.st_size, path)


def send(fd: int, size: int, shown: str) -> None:
    """Exactly `size` bytes of fd to stdout."""
    left = size
    while left:
        chunk = os.read(fd, min(CHUNK_BYTES, left))
        if not chunk:
            raise RuntimeError(f'"{shown}" shrank while it was sent: {left} of {size} bytes are missing')
        sys.stdout.buffer.write(chunk)
        left -= len(chunk)
    sys.stdout.buffer.flush()


def delete(root: str, args: list[str]) -> None:
    path, rest = positional(args, "PATH")
    options(rest, {})
    *folders, name = segments_of(path)
    root_fd = open_root(root)
    folder_fd = open_chain(root_fd, folders) if root_fd is not None else None
    if folder_fd is None or entry_stat(folder_fd, name) is None:
        raise Refusal(404, "not_found", f'"{path}" does not exist.')
    emit({"ok": True, "deleted": remove_entry(folder_fd, name)})


def list_files(root: str, args: list[str]) -> None:
    opts = options(args, {"prefix": "", "after": "", "limit": str(DEFAULT_LIST_LIMIT)})
    prefix = checked_prefix(opts["prefix"])
    after = opts["after"].encode("utf-8", "surrogateescape")
    limit = whole_number(opts["limit"], "limit", minimum=1)
    root_fd = open_root(root)
    if root_fd is None:
        emit({"files": [], "next": None})
        return

    def may_hold_matches(folder: str) -> bool:
        return not is_scratch(folder) and (folder.startswith(prefix) or prefix.startswith(folder))

    found: list[tuple[bytes, str, os.stat_result]] = []
    for _, _, path, st in walk(root_fd, may_hold_matches):
        key = utf8(path)
        if stat.S_ISREG(st.st_mode) and key is not None and key > after and path.startswith(prefix) and not is_scratch(path):
            found.append((key, path, st))
    found.sort(key=lambda entry: entry[0])
    page = found[:limit]
    emit({
        "files": [{"path": path, "size": st.st_size, "modifiedAt": st.st_mtime_ns // 1_000_000} for _, path, st in page],
        "next": page[-1][1] if len(found) > limit else None,
    })


def usage(root: str, args: list[str]) -> None:
    options(args, {})
    root_fd = open_root(root)
    total, count = measure(root_fd) if root_fd is not None else (0, 0)
    emit({"bytes": total, "files": count})


def get_tar(root: str, args: list[str]) -> None:
    folder, rest = positional(args, "DIR")
    options(rest, {})
    segments = segments_of(folder, root_allowed=True)
    root_fd = open_root(root)
    top_fd = open_chain(root_fd, segments) if root_fd is not None else None
    if top_fd is None:
        raise Refusal(404, "not_found", f'"{folder}" does not exist.')
    emit({"ok": True})
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dir_fd, name, path, st in walk(top_fd, lambda below: not is_scratch(below)):
            if is_scratch(path) or utf8(path) is None:
                continue
            if stat.S_ISDIR(st.st_mode):
                tar.addfile(tar_entry(path, st, tarfile.DIRTYPE))
            elif stat.S_ISREG(st.st_mode):
                add_file(tar, dir_fd, name, path)
    sys.stdout.buffer.flush()


def tar_entry(path: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    """An archive entry with the entry's permissions and time; owner uid 0, no names."""
    entry = tarfile.TarInfo(path)
    entry.type = kind
    entry.mode = stat.S_IMODE(st.st_mode)
    entry.mtime = int(st.st_mtime)
    entry.size = st.st_size if kind == tarfile.REGTYPE else 0
    return entry


def add_file(tar: tarfile.TarFile, dir_fd: int, name: str, path: str) -> None:
    """Adds one regular file, read through a descriptor of our own opening; a name that became a
    link, FIFO or folder since it was listed is skipped."""
    try:
        fd, st = open_regular(dir_fd, name, path)
    except Refusal:
        return
    with os.fdopen(fd, "rb") as file:
        tar.addfile(tar_entry(path, st, tarfile.REGTYPE), file)


def put_tar(root: str, args: list[str]) -> None:
    folder, rest = positional(args, "DIR")
    opts = options(rest, UPLOAD_OPTIONS)
    segments = segments_of(folder, root_allowed=True)
    optional_number(opts["declared"], "declared")  # an archive's size is not a file's: unused
    root_fd = open_root(root)
    if root_fd is None:
        raise Refusal(500, "session_missing", "The session's folder is missing on the worker.")
    destination = Destination(open_chain(root_fd, segments), folder)
    budget = budget_from(root_fd, opts)
    emit({"ready": True, "used": budget.used})

    staging, staging_fd = SCRATCH.make(root_fd, folder=True)
    members = unpack(staging_fd, budget, destination)
    target_fd = open_chain(root_fd, segments, create=True)
    for segments_below, is_folder in members:
        if is_folder:
            os.close(open_chain(target_fd, segments_below, folder, create=True))
        else:
            move_staged(staging_fd, target_fd, segments_below, folder)
    with sigterm_held():
        remove_entry(root_fd, staging)
        SCRATCH.forget(root_fd, staging)
    files = sum(1 for _, is_folder in members if not is_folder)
    emit({"ok": True, "path": folder, "files": files, "bytes": destination.incoming})


@dataclass
class Destination:
    """Where put-tar puts an archive: DIR's descriptor (None while DIR does not exist) and the
    bytes coming in for it so far."""

    fd: int | None
    shown: str
    incoming: int = 0

    def replaced_size(self, segments: list[str], is_folder: bool) -> int:
        """What the entry at `segments` takes now (it is replaced); refuses links and non-folders
        along the way, and a folder where a file is to go, before any byte is read."""
        if self.fd is None:
            return 0
        *folders, name = segments
        folder_fd = open_chain(self.fd, folders, self.shown)
        if folder_fd is None:
            return 0
        try:
            shown = joined(self.shown, *segments)
            if is_folder:
                found = open_folder(folder_fd, name, shown)
                if found is not None:
                    os.close(found)
                return 0
            old = entry_stat(folder_fd, name)
            if old is not None and stat.S_ISDIR(old.st_mode):
                raise Refusal(409, "is_a_folder", f'"{shown}" is a folder.')
            return old.st_size if old is not None and stat.S_ISREG(old.st_mode) else 0
        finally:
            os.close(folder_fd)


def bad_archive(detail: str) -> Refusal:
    return Refusal(400, "bad_archive", detail)


def member_segments(member: tarfile.TarInfo) -> list[str] | None:
    """The member's path as names; None for the archive's top folder ("." or "./"). A leading
    "./" is taken off, as `tar -C folder .` writes every name with one."""
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    if member.isdir() and name in ("", "."):
        return None
    problem = path_problem(name)
    if problem:
        raise bad_archive(f'The archive member "{member.name}" {problem}; nothing was changed.')
    return name.split("/")


def member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.isdev() and not member.isfifo():
        return "a device"
    return "a FIFO" if member.isfifo() else "neither a file nor a folder"


def unpack(staging_fd: int, budget: Budget, destination: Destination) -> list[tuple[list[str], bool]]:
    """Unpacks the tar stream on stdin into the staging folder, refusing the whole archive at its
    first bad member; answers its members as (names, is a folder) in archive order."""
    members: list[tuple[list[str], bool]] = []
    try:
        with tarfile.open(fileobj=sys.stdin.buffer, mode="r|*") as tar:
            for member in tar:
                if not (member.isreg() or member.isdir()):
                    raise bad_archive(f'The archive member "{member.name}" is {member_kind(member)}; only files and folders are taken, nothing was changed.')
                segments = member_segments(member)
                if segments is None:
                    continue
                budget.used -= destination.replaced_size(segments, member.isdir())
                if member.isreg():
                    budget.check_file(member.size, member.name)
                    budget.check_session(member.size)
                    size = stage_file(staging_fd, segments, tar.extractfile(member), budget, member.name)
                    budget.used += size
                    destination.incoming += size
                else:
                    os.close(stage_folder(staging_fd, segments))
                members.append((segments, member.isdir()))
    except (tarfile.TarError, EOFError) as error:
        raise bad_archive(f"The upload is not a tar archive that can be read (plain, gzip, bzip2 or xz): {error}.") from None
    return members


def stage_folder(staging_fd: int, segments: list[str]) -> int:
    try:
        return open_chain(staging_fd, segments, create=True)
    except Refusal as refusal:
        raise bad_archive(f"The archive cannot be unpacked as it is: {refusal.detail}") from None


def stage_file(staging_fd: int, segments: list[str], source: IO[bytes] | None, budget: Budget, shown: str) -> int:
    *folders, name = segments
    folder_fd = stage_folder(staging_fd, folders)
    try:
        fd = os.open(name, CREATE_FLAGS, FILE_MODE, dir_fd=folder_fd)
    except OSError as error:
        raise bad_archive(f'The archive member "{shown}" cannot be unpacked: it is there twice, or inside a file.') from error
    finally:
        os.close(folder_fd)
    with os.fdopen(fd, "wb") as out:
        size, _ = copy_in(source.read if source else lambda n: b"", out, budget, shown)
    return size


def move_staged(staging_fd: int, target_fd: int, segments: list[str], shown_above: str) -> None:
    """Moves one staged file to the same names below the target folder, making folders on the
    way; a file already there is replaced, a link of that name too (never written through)."""
    *folders, name = segments
    shown = joined(shown_above, *segments)
    source_fd = open_chain(staging_fd, folders)
    if source_fd is None:
        raise Refusal(409, "changed", f'"{shown}" was moved by the session\'s kernel while it was being unpacked.')
    destination_fd = open_chain(target_fd, folders, shown_above, create=True)
    try:
        os.rename(name, name, src_dir_fd=source_fd, dst_dir_fd=destination_fd)
    except OSError as error:
        raise refused(error, shown) from None
    finally:
        os.close(source_fd)
        os.close(destination_fd)


OPERATIONS: dict[str, Callable[[str, list[str]], None]] = {
    "put": put,
    "get": get,
    "delete": delete,
    "list": list_files,
    "usage": usage,
    "put-tar": put_tar,
    "get-tar": get_tar,
}


def general_refusal(error: OSError) -> Refusal | None:
    """The refusal for an error met anywhere (statuses stay among those the api answers)."""
    if error.errno in (errno.EACCES, errno.EPERM):
        return Refusal(409, "permission_denied", "The session's kernel may not do this, so the file api may not either.")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return Refusal(500, "disk_full", "The worker's disk is full.")
    if error.errno in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.ELOOP, errno.EISDIR):
        # Code in the session's kernel (same uid) moved or removed what this operation was
        # working on, e.g. its temporary file: nothing was put in place.
        return Refusal(409, "changed", "Something in the session's folder changed while the operation ran (code in the kernel?); nothing was changed by it. Retry.")
    return None


def raise_open_file_limit() -> None:
    """Walks hold one descriptor per folder level; deep trees need more than the usual 1024."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


MEMORY_LIMIT_BYTES = 1 << 30


def limit_memory() -> None:
    """Everything streams in small chunks, but an archive's headers are read whole (a PAX header
    may claim any size): a hostile archive must not take the worker's memory with it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > MEMORY_LIMIT_BYTES:
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, hard))


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    os.umask(0)  # created folders and files get exactly FOLDER_MODE and FILE_MODE
    raise_open_file_limit()
    limit_memory()
    try:
        if len(argv) < 3 or argv[2] not in OPERATIONS:
            raise bad_request(f"Usage: kernelfleet_files.py ROOT ({' | '.join(OPERATIONS)}) [args]")
        OPERATIONS[argv[2]](argv[1], argv[3:])
    except BrokenPipeError:
        # The worker stopped reading (its client went away): nobody is left to tell, and the
        # flush at exit must not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except MemoryError:
        SCRATCH.remove_all()
        emit(Refusal(413, "too_large", "The request needs more memory than a file operation may take (a hostile archive header?).").message())
        return 0
    except (Refusal, OSError) as problem:
        refusal = problem if isinstance(problem, Refusal) else general_refusal(problem)
        if refusal is None:
            raise
        SCRATCH.remove_all()
        emit(refusal.message())
    finally:
        SCRATCH.remove_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
