"""How the server listens: address, key, queue. Generation defaults are GenerationSettings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import SettingsError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ServerSettings:
    """host, port: where to listen (port 0 picks a free one, printed at start).
    api_key: when set, every route but /health needs `Authorization: Bearer <key>`.
    queue: requests that may wait while one generates; past that they get HTTP 429.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = None
    queue: int = 8

    def __post_init__(self) -> None:
        if not (isinstance(self.port, int) and 0 <= self.port <= 65535):
            raise SettingsError(
                f"port {self.port} is out of range.", "use --port 1-65535, or 0 for a free one"
            )
        if not (isinstance(self.queue, int) and 0 <= self.queue <= 4096):
            raise SettingsError(
                f"queue {self.queue} is out of range.",
                "use --queue 0 (refuse while busy) up to 4096, e.g. 8",
            )
        if self.api_key is not None and not self.api_key.strip():
            raise SettingsError("The API key is empty.", "give a non-empty --api-key, or none")
        if not self.host:
            raise SettingsError("The host is empty.", "use --host 127.0.0.1 (this machine only)")

    @property
    def loopback(self) -> bool:
        """True when only this machine can connect."""
        if self.host in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
