"""Launch the Jupyter server that holds kernelfleet's kernels.

Started by libs/kernel/src/jupyter-server.ts as `python kernelfleet_jupyter.py`.
The settings (port, token, root dir) arrive as ONE JSON line on stdin, so the
token is neither on the command line (world-readable via /proc) nor in the
environment (which every kernel inherits). When stdin reaches EOF (the Node
process went away, however it died) the server stops itself.

Findings (jupyter_server 2.17.0, tornado 6.6.1, ipykernel 7.1.0 — now pinned to 6.29.5, see
python/requirements.txt; measured on this
machine, 2 vCPUs, Node client in libs/kernel, warm `1+1`, execute -> reply + idle):
- TCP_NODELAY: jupyter_server's KernelWebsocketHandler
  (jupyter_server/services/kernels/websocket.py) never calls tornado's
  set_nodelay, so Nagle holds small kernel messages for the peer's delayed ACK.
  We patch KernelWebsocketHandler.open to call set_nodelay(True) first.
  300 runs x 3 alternating servers: p50 48.0 ms without, 5.1-7.5 ms with
  (p90 52-61 ms -> 8-17 ms). The `ws` client already sets nodelay itself.
- IPython history: every execution writes ~/.ipython/.../history.sqlite (one
  file shared by all kernels). Kernels get --HistoryManager.enabled=False:
  direct ZMQ `1+1` p50 8.1 -> 4.6 ms, p90 17 -> 5.4 ms. In/Out/_ still work.
- IOPub rate limits live on ZMQChannelsWebsocketConnection in 2.x (ServerApp.*
  traits are deprecated aliases): limit_rate=False and both limits 0. With the
  defaults, 10 MB of print() arrived as 321 bytes ("IOPub data rate exceeded").
- Dead kernels: KernelRestarter.restart_limit=0 makes the first death final: the
  server broadcasts execution_state 'dead' on the kernel websocket and removes
  the kernel (REST lookup -> 404); time_to_dead=0.5 s bounds detection (an
  os._exit(1) cell is reported dead after ~0.4 s). No auto-restart: a restarted
  kernel has lost its globals; the worker decides what to do.
- Output floods: ipykernel's OutStream sends what a busy cell wrote as one message every 0.2 s,
  however large (256 MiB printed arrived as one message); kernels use
  kernel_site/kernelfleet_outstream.py, which sends pieces of about 1 MiB and makes the writer
  wait for them (PYTHONPATH names kernel_site for the kernel only).
- Tool calls: `--IPKernelApp.exec_lines=<line>` (one argument = a one-item List) imports `tool`,
  `ToolError`, `ToolTimeoutError` from kernel_site/kernelfleet_tools.py silently at every kernel
  start; each execute_request's metadata says where that execution's tool bridge is.
- stdin: the client executes with allow_stdin=False; ipykernel then raises
  StdinNotImplementedError from input()/getpass(), which ends the cell with an
  error reply (ename StdinNotImplementedError) and leaves the kernel usable.
- matplotlib: MPLBACKEND=Agg suppresses figures; ipykernel's inline backend
  (module://matplotlib_inline.backend_inline, also its own default) sends
  figures still open at the end of a cell as image/png display_data.
- Quiet and lean: no config files, no server extensions (terminals etc.), no
  browser, no jpserver-<pid>.json / -open.html / cookie-secret files (the first
  two contain the token), WARN logging, no websocket pings (loopback; tornado
  6.5 also warns about jupyter_server's ping defaults), culling off (the worker
  culls), shutdown_wait_time=1 s so SIGTERM completes inside the 3 s grace the
  Node side gives before SIGKILL (measured: ~0.8 s with a busy kernel).
- Many kernels: the kernel manager opens every kernel's ZMQ sockets in ONE shared zmq context,
  and a context holds at most 1023 sockets by default: holding 170 idle kernels, the next start
  failed with "ZMQError: Too many open files" (HTTP 500). The context's limit is raised to
  libzmq's own (ZMQ_SOCKET_LIMIT, 65535 here) and the server's open-files soft limit to its hard
  one (kernels get their own limit from the sandbox).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import threading
import time
from typing import Any

import zmq
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from traitlets.config import Config

from jupyter_server.serverapp import ServerApp
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

_original_open = KernelWebsocketHandler.open


async def _open_with_nodelay(self: KernelWebsocketHandler, *args: Any, **kwargs: Any) -> None:
    """Disable Nagle on the kernel websocket before the normal open logic."""
    self.set_nodelay(True)
    await _original_open(self, *args, **kwargs)


PYTHON_NAMES = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}
KERNEL_SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_site")
OUTSTREAM_CLASS = "kernelfleet_outstream.BoundedOutStream"
# One List item (traitlets takes `--IPKernelApp.exec_lines=<line>` as a one-line list).
TOOLS_IMPORT = "from kernelfleet_tools import tool, ToolError, ToolTimeoutError"
SANDBOX_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernelfleet_sandbox.py")


class KernelfleetKernelSpecManager(KernelSpecManager):
    """Starts ipykernel without IPython's sqlite history (see the docstring at the top), inside
    python/kernelfleet_sandbox.py when the launch settings carry a `sandbox` object."""

    sandbox: dict[str, Any] | None = None

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        spec = super().get_kernel_spec(kernel_name)
        is_ipykernel = any("ipykernel" in arg for arg in spec.argv)
        if is_ipykernel and not any(arg.startswith("--HistoryManager.") for arg in spec.argv):
            spec.argv = [
                *spec.argv,
                "--HistoryManager.enabled=False",
                f"--IPKernelApp.outstream_class={OUTSTREAM_CLASS}",
                f"--IPKernelApp.exec_lines={TOOLS_IMPORT}",
            ]
            spec.env = {**spec.env, "PYTHONPATH": KERNEL_SITE}
        if self.sandbox is not None and SANDBOX_SCRIPT not in spec.argv:
            # jupyter_client swaps a leading bare "python" for sys.executable; once wrapped, the
            # kernel's "python" is no longer leading, so swap it here (PATH may lead elsewhere).
            kernel = [sys.executable if arg in PYTHON_NAMES and i == 0 else arg for i, arg in enumerate(spec.argv)]
            spec.argv = [sys.executable, SANDBOX_SCRIPT, json.dumps(self.sandbox), "--", *kernel]
        return spec


class KernelfleetServerApp(ServerApp):
    """A ServerApp that ignores config files and never writes its token to disk."""

    name = "kernelfleet-jupyter"

    def load_config_file(self, *args: Any, **kwargs: Any) -> None:
        """Ignore jupyter_server_config.* files: behaviour is fully set below."""

    def write_server_info_file(self) -> None:
        """Skip jpserver-<pid>.json: nothing needs to discover this server."""

    def remove_server_info_file(self) -> None:
        """Nothing was written."""

    def write_browser_open_files(self) -> None:
        """Skip jpserver-<pid>-open.html: it would contain the token too."""

    def remove_browser_open_files(self) -> None:
        """Nothing was written."""

    def _signal_stop(self, sig: Any, frame: Any) -> None:
        self.stop(from_signal=True)


def build_config(settings: dict[str, Any]) -> Config:
    """Translate the launch settings into traitlets config."""
    c = Config()
    c.ServerApp.ip = "127.0.0.1"
    c.ServerApp.port = int(settings["port"])
    c.ServerApp.port_retries = 0
    c.ServerApp.root_dir = str(settings["root_dir"])
    c.ServerApp.open_browser = False
    c.ServerApp.cookie_secret = os.urandom(32)  # no jupyter_cookie_secret file
    c.ServerApp.allow_root = True
    c.ServerApp.terminals_enabled = False
    c.ServerApp.jpserver_extensions = {}
    c.ServerApp.log_level = str(settings.get("log_level", "WARN"))
    c.IdentityProvider.token = str(settings["token"])
    c.ServerApp.kernel_spec_manager_class = KernelfleetKernelSpecManager
    # Loopback peers close sockets when they die, so keep-alive pings add nothing; with tornado
    # 6.5 jupyter_server's defaults (ms) also trip a "ping_timeout > ping_interval" warning.
    c.ServerApp.tornado_settings = {"ws_ping_interval": 0}

    c.ZMQChannelsWebsocketConnection.limit_rate = False
    c.ZMQChannelsWebsocketConnection.iopub_msg_rate_limit = 0.0
    c.ZMQChannelsWebsocketConnection.iopub_data_rate_limit = 0.0

    c.MappingKernelManager.cull_idle_timeout = 0
    c.KernelRestarter.restart_limit = 0
    c.KernelRestarter.time_to_dead = 0.5
    c.KernelManager.shutdown_wait_time = 1.0
    return c


def stop_on_stdin_eof(app: ServerApp) -> None:
    """Stop the server when the parent closes our stdin (or dies)."""

    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader aborts
        # interpreter shutdown ("could not acquire lock for <stdin>").
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        os._exit(1)

    threading.Thread(target=watch, name="kernelfleet-stdin-watch", daemon=True).start()


def make_room_for_kernels(app: ServerApp) -> None:
    """Lifts the limits that cap how many kernels one server holds (see "Many kernels" above).
    Before any kernel starts: libzmq sizes a context's socket table at its first socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError):  # an unlimited hard limit is more than the kernel allows
            pass
    context = app.kernel_manager.context
    context.set(zmq.MAX_SOCKETS, context.get(zmq.SOCKET_LIMIT))


def main() -> None:
    line = sys.stdin.buffer.readline()
    if not line:
        sys.exit("kernelfleet_jupyter: expected one JSON settings line on stdin")
    settings = json.loads(line)
    if settings.get("ws_nodelay", True):
        KernelWebsocketHandler.open = _open_with_nodelay  # type: ignore[method-assign]
    KernelfleetKernelSpecManager.sandbox = settings.get("sandbox")
    app = KernelfleetServerApp.instance(config=build_config(settings))
    app.initialize(argv=[], find_extensions=False)
    make_room_for_kernels(app)
    stop_on_stdin_eof(app)
    app.start()


if __name__ == "__main__":
    main()
