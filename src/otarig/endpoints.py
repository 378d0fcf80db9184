"""Where a bench's parts are reached: the one description a real bench file and a simulated
bench both produce, so the rig is composed from it the same way (`otarig.compose`)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Endpoints:
    """API URL and token, a serial port per board, the tester's port, the PSU's VISA resource.

    The token is held only in memory (`repr` hides it); it never goes to a file or a log.
    """

    api_url: str
    token: str = field(repr=False)
    boards: dict[str, str] = field(default_factory=dict)
    tester_port: str | None = None
    psu_resource: str | None = None
