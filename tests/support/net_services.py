"""Test services on real sockets for the network tiers: a server that answers every connection
with one reply and counts them, and this machine's own non-loopback address."""

from __future__ import annotations

import socket
import subprocess
import threading

__all__ = ["Service", "public_address"]


class Service:
    """A server answering every connection with ``reply``, on a TCP address or a Unix path;
    ``reached`` counts the connections it answered."""

    def __init__(
        self, family: int, address: tuple[str, int] | str, reply: bytes = b"secret\n"
    ) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(8)
        self.reply = reply
        self.port = int(self.sock.getsockname()[1]) if family == socket.AF_INET else 0
        self.reached = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.reached += 1
                conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.close()


def public_address() -> str | None:
    """This machine's own non-loopback IPv4 address, if it has one (no traffic leaves it)."""
    done = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                          capture_output=True, text=True)  # fmt: skip
    for line in done.stdout.splitlines():
        words = line.split()
        if "inet" in words:
            return words[words.index("inet") + 1].split("/")[0]
    return None
