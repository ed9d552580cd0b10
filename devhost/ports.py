"""Local ports: each is a setting, and a port already taken stops the stack with a clear message."""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

# Every port the local stack listens on, the variable that moves it, and its default.
DEFAULTS = {
    "FOLIO_PORT": 7071,  # the Functions host (/api)
    "FOLIO_WEB_PORT": 4280,  # the web app, as Static Web Apps serves it
    "FOLIO_PG_PORT": 54329,  # make dev's PostgreSQL
    "FOLIO_AZURITE_PORT": 10000,  # Azurite's blob endpoint (queue and table take the next two)
    "FOLIO_COSMOS_PORT": 8081,  # the Cosmos DB emulator, when COSMOS_ENDPOINT does not name a port
}


class PortInUse(RuntimeError):
    """A port the stack needs is taken; the message names the holder if it can, and the setting to change."""


@dataclass(frozen=True)
class Holder:
    pid: int
    name: str


def port(setting: str, environ: dict[str, str] | None = None) -> int:
    """The port ``setting`` (e.g. FOLIO_PORT) chooses, else its default."""
    env = os.environ if environ is None else environ
    raw = env.get(setting, "").strip()
    if not raw:
        return DEFAULTS[setting]
    try:
        value = int(raw)
    except ValueError:
        raise PortInUse(f"{setting}={raw!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise PortInUse(f"{setting}={value} is not a port number (1-65535)")
    return value


def ensure_free(number: int, setting: str, host: str = "127.0.0.1") -> None:
    """Raise :class:`PortInUse` when ``host:number`` cannot be listened on."""
    with socket.socket() as probe:
        try:
            probe.bind((host, number))
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
            who = holder(number)
            by = f" (by pid {who.pid}, {who.name}?)" if who else ""
            raise PortInUse(f"port {number} is in use{by}; set {setting} to another port") from None


def holder(number: int) -> Holder | None:
    """The process listening on TCP ``number`` on this machine, when /proc can tell (Linux, same user or root)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == number:
                inodes.add(fields[9])  # state 0A: LISTEN
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    name = (proc / "comm").read_text().strip()
                    return Holder(int(proc.name), name)
        except OSError:
            continue
    return None
