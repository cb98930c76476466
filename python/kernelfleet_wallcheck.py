"""What a kernel can reach: run by the worker at start, inside python/kernelfleet_sandbox.py
exactly as a kernel is, before it takes any work (apps/worker/src/jupyter/kernel-walls.ts).

    kernelfleet_sandbox.py '<settings>' -- python kernelfleet_wallcheck.py '<check json>'

The check names TCP targets ([host, port]: a listener the worker opened on loopback, its Redis)
and a file the worker left in /tmp. Prints one JSON line: the uid, which targets accepted a
connection, and whether the file was visible (a /tmp shared with the worker and other kernels).
"""

from __future__ import annotations

import json
import os
import socket
import sys


def reaches(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=3).close()
        return True
    except OSError:
        return False


def main() -> None:
    check = json.loads(sys.argv[1])
    reached = [f"{host}:{port}" for host, port in check["targets"] if reaches(host, int(port))]
    print(json.dumps({"uid": os.getuid(), "reached": reached, "sharedTmp": os.path.exists(check["marker"])}), flush=True)


if __name__ == "__main__":
    main()
