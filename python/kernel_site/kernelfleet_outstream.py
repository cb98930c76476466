"""stdout/stderr for kernelfleet's kernels: ipykernel's OutStream, sent in bounded pieces.

ipykernel buffers what a cell writes and sends it from its IO thread every 0.2 s. A cell that
writes in a tight loop holds the GIL, so the IO thread rarely runs and the buffer grows without
bound: 256 MiB printed arrived as ONE stream message (measured with ipykernel 6.29.5), and 1 GiB
became a message no client could hold (a JavaScript string tops out near 512 MiB), which broke
the kernel's websocket. Here a write that leaves more than MAX_BUFFERED characters waiting
flushes at once and waits for the send, so messages stay near 1 MiB and a fast writer is slowed
to the pace of the IO thread instead of filling the kernel's memory.

Relies on OutStream internals of the pinned ipykernel (python/requirements.txt).
"""

from __future__ import annotations

from ipykernel.iostream import OutStream

MAX_BUFFERED = 1 << 20


class BoundedOutStream(OutStream):
    def write(self, string: str) -> int | None:
        written = super().write(string)
        if self._is_master_process():
            with self._buffer_lock:
                waiting = sum(buffer.tell() for buffer in self._buffers.values())
            if waiting >= MAX_BUFFERED:
                self.flush()
        return written
