"""Calls from Python code in a kernel to the tools of the client that runs it.

Every kernel starts with `tool`, `ToolError` and `ToolTimeoutError` in its namespace
(IPKernelApp.exec_lines, see python/kernelfleet_jupyter.py). In a cell:

    text = tool.read(path="a.txt")            # keyword arguments are the args object
    text = tool.read({"path": "a.txt"})       # or one dict
    hits = tool["web_search"]({"q": "x"})     # or by name, in brackets

Each call blocks until the client answers and returns the answer's JSON value.

Where the bridge is: the worker sends each execute_request with the metadata

    {"kernelfleet_tools": {"socket": "/abs/path.sock", "token": "<hex>",
                           "tools": ["read", "web_search"], "maxPending": 16}}

which is read at call time from the kernel's current shell parent message. Only the names in
"tools" can be called; any other name (or any name, when the execution has no such metadata)
raises ToolNotDeclaredError at once, without sending anything.

Wire protocol, one unix stream connection per call:
    kernel -> bridge  ONE line, UTF-8 JSON: {"token": ..., "name": ..., "args": {...}} + "\\n"
    bridge -> kernel  ONE line, UTF-8 JSON, then the kernel closes the connection:
        {"ok": true, "value": <json>}                        -> the value is returned
        {"ok": false, "reason": "timeout", "error": "..."}   -> ToolTimeoutError(error)
        {"ok": false, "error": "..."}                        -> ToolError(error)
    No full line before the bridge closes, or a line that is not such JSON -> ToolError.
    No socket, or nobody listening (the execution ended) -> ToolError.

At most "maxPending" calls per token are in flight at once (threads of one cell may call
together); further calls wait in the kernel. Waiting, for a slot or for the answer, can be
interrupted: a Jupyter interrupt raises KeyboardInterrupt in the main thread, the connection is
closed and the slot freed.
"""

from __future__ import annotations

import json
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

__all__ = ["tool", "ToolError", "ToolTimeoutError", "ToolNotDeclaredError"]

METADATA_KEY = "kernelfleet_tools"
DEFAULT_MAX_PENDING = 16
READ_SIZE = 1 << 16


class ToolError(RuntimeError):
    """A tool call failed: the client answered with an error, or the bridge failed."""


class ToolTimeoutError(TimeoutError):
    """A tool call expired before the client answered."""


class ToolNotDeclaredError(ToolError, AttributeError):
    """The current execution did not declare this tool (nothing was sent)."""


@dataclass(frozen=True)
class Bridge:
    """The current execution's tool bridge, from its execute_request metadata."""

    socket_path: str
    token: str
    tools: tuple[str, ...]
    max_pending: int


def current_bridge() -> Bridge | None:
    """The bridge of the execution running now; None when it declared no tools."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    parent = kernel.get_parent("shell") or {}
    settings = (parent.get("metadata") or {}).get(METADATA_KEY)
    if not isinstance(settings, dict):
        return None
    socket_path = settings.get("socket")
    token = settings.get("token")
    tools = settings.get("tools")
    if not isinstance(socket_path, str) or not isinstance(token, str) or not isinstance(tools, list):
        raise ToolError(f"the execution's {METADATA_KEY!r} metadata is malformed")
    max_pending = settings.get("maxPending")
    if not isinstance(max_pending, int) or isinstance(max_pending, bool) or max_pending < 1:
        max_pending = DEFAULT_MAX_PENDING
    names = tuple(sorted({name for name in tools if isinstance(name, str)}))
    return Bridge(socket_path, token, names, max_pending)


def declared_bridge(name: str) -> Bridge:
    """The current bridge, if it declares `name`; otherwise ToolNotDeclaredError."""
    __tracebackhide__ = True  # IPython leaves this frame out of tracebacks
    bridge = current_bridge()
    if bridge is None or not bridge.tools:
        raise ToolNotDeclaredError(
            f'this execution declared no tools: send "tools": [{{"name": ...}}] with it to call tool.<name>(...)'
            f" (wanted {name!r})"
        )
    if name not in bridge.tools:
        raise ToolNotDeclaredError(
            f"tool {name!r} was not declared for this execution: add {json.dumps({'name': name})} to the"
            f' execution\'s "tools" (declared: {", ".join(bridge.tools)})'
        )
    return bridge


def declared_names() -> tuple[str, ...]:
    """The tools the current execution declared (none on malformed metadata), sorted."""
    try:
        bridge = current_bridge()
    except ToolError:
        return ()
    return bridge.tools if bridge is not None else ()


@dataclass
class Gate:
    """Bounds the calls in flight for one token; `users` counts holders and waiters."""

    semaphore: threading.BoundedSemaphore
    users: int = 0


_gates: dict[str, Gate] = {}
_gates_lock = threading.Lock()


@contextmanager
def pending_slot(bridge: Bridge) -> Iterator[None]:
    """Holds one of the bridge's maxPending slots; the gate is dropped when nobody uses it."""
    with _gates_lock:
        gate = _gates.get(bridge.token)
        if gate is None:
            gate = _gates[bridge.token] = Gate(threading.BoundedSemaphore(bridge.max_pending))
        gate.users += 1
    try:
        gate.semaphore.acquire()
        try:
            yield
        finally:
            gate.semaphore.release()
    finally:
        with _gates_lock:
            gate.users -= 1
            if gate.users == 0 and _gates.get(bridge.token) is gate:
                del _gates[bridge.token]


def encode_request(bridge: Bridge, name: str, args: dict[str, Any]) -> bytes:
    """The request line; TypeError when the args are not JSON."""
    __tracebackhide__ = True  # IPython leaves this frame out of tracebacks
    try:
        line = json.dumps({"token": bridge.token, "name": name, "args": args}, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"the arguments of tool {name!r} must be JSON (dicts, lists, str, numbers, bools, None): {error}") from None
    return line.encode("utf-8") + b"\n"


def read_line(connection: socket.socket) -> bytes | None:
    """Reads up to the first newline; None if the peer closes first."""
    received = bytearray()
    while True:
        # A plain blocking recv: SIGINT makes it raise KeyboardInterrupt in the main thread.
        chunk = connection.recv(READ_SIZE)
        if not chunk:
            return None
        start = len(received)
        received += chunk
        end = received.find(b"\n", start)
        if end >= 0:
            return bytes(received[:end])


def call_bridge(bridge: Bridge, name: str, request: bytes) -> Any:
    """Sends one request over a new connection and turns the answer into a value or an error."""
    __tracebackhide__ = True  # IPython leaves this frame out of tracebacks
    with pending_slot(bridge):
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                connection.connect(bridge.socket_path)
            except OSError as error:
                raise ToolError(f"the tool bridge is unavailable (has the execution ended?): {error}") from None
            try:
                connection.sendall(request)
                line = read_line(connection)
            except OSError as error:
                raise ToolError(f"the tool bridge closed the call to {name!r} without an answer: {error}") from None
        finally:
            connection.close()
    if line is None:
        raise ToolError(f"the tool bridge closed the call to {name!r} without an answer")
    return decode_answer(name, line)


def decode_answer(name: str, line: bytes) -> Any:
    """The value of an ok answer; ToolTimeoutError / ToolError otherwise."""
    __tracebackhide__ = True  # IPython leaves this frame out of tracebacks
    try:
        answer = json.loads(line)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise ToolError(f"the tool bridge sent an unreadable answer to the call to {name!r}")
    if answer["ok"]:
        return answer.get("value")
    error = answer.get("error")
    message = error if isinstance(error, str) and error else f"tool {name!r} failed"
    if answer.get("reason") == "timeout":
        raise ToolTimeoutError(message)
    raise ToolError(message)


class ToolFunction:
    """`tool.<name>`: calling it sends the call and waits for the answer."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython leaves this frame out of tracebacks
        if args and kwargs:
            raise TypeError(f"tool {self.name!r} takes keyword arguments or one dict, not both")
        if len(args) > 1:
            raise TypeError(f"tool {self.name!r} takes keyword arguments or one dict, got {len(args)} positional arguments")
        if args and not isinstance(args[0], dict):
            raise TypeError(f"tool {self.name!r} takes keyword arguments or one dict, got {type(args[0]).__name__}")
        payload: dict[str, Any] = args[0] if args else dict(kwargs)
        bridge = declared_bridge(self.name)
        request = encode_request(bridge, self.name, payload)
        return call_bridge(bridge, self.name, request)

    def __repr__(self) -> str:
        return f"<kernelfleet tool {self.name!r}>"


class ToolProxy:
    """`tool`: `tool.read(...)` and `tool["web_search"](...)` call the client's tools.

    Names starting with "_" are ordinary attributes, so copy, pickle and IPython's
    introspection never turn into tool calls.
    """

    def __getattr__(self, name: str) -> ToolFunction:
        __tracebackhide__ = True  # IPython leaves this frame out of tracebacks
        if name.startswith("_"):
            raise AttributeError(name)
        declared_bridge(name)
        return ToolFunction(name)

    def __getitem__(self, name: str) -> ToolFunction:
        __tracebackhide__ = True  # IPython leaves this frame out of tracebacks
        if not isinstance(name, str):
            raise TypeError(f"tool names are strings, not {type(name).__name__}")
        declared_bridge(name)
        return ToolFunction(name)

    def __dir__(self) -> list[str]:
        return list(declared_names())

    def _ipython_key_completions_(self) -> list[str]:
        """Completes tool["<TAB> in IPython."""
        return list(declared_names())

    def __repr__(self) -> str:
        names = declared_names()
        if not names:
            return "<kernelfleet tools: this execution declared none>"
        return f"<kernelfleet tools: {', '.join(names)}; call tool.<name>(key=value) or tool[\"<name>\"]({{...}})>"


tool = ToolProxy()
