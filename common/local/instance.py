"""One running server of a local deployment (a generation): its process, its socket, its probes and its stop."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from pathlib import Path

from common.local import processes, upstream
from common.local.settings import LOCAL_READINESS, Probe

log = logging.getLogger("frontdoor")

STOP_GRACE_SECONDS = 10.0


class Instance:
    """One server process of one generation of a deployment, reached on its Unix socket."""

    def __init__(
        self,
        generation: int,
        socket: Path,
        process: subprocess.Popen[bytes] | None,
        readiness: Probe = LOCAL_READINESS,
    ) -> None:
        self.generation, self.socket, self.process = generation, socket, process
        self.readiness = readiness  # its generation's readiness probe, which decides when it first serves
        self.in_flight = 0
        self.answered = False  # answered a scoring request since the last probe (a busy server is a live one)
        self.started = time.monotonic()
        self.last_liveness = self.last_readiness = 0.0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process else None

    async def score(self, body: bytes, content_type: str) -> upstream.Answer:
        """POST /score; upstream.Unreachable when the socket does not answer (the caller bounds the time)."""
        return await upstream.exchange(str(self.socket), upstream.scoring_request(body, content_type))

    async def probe(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                answer = await upstream.exchange(str(self.socket), upstream.PROBE_REQUEST)
        except (upstream.Unreachable, TimeoutError):
            return False
        return answer.status == 200

    async def stop(self, grace: float = STOP_GRACE_SECONDS, drain: float = 0.0) -> None:
        """Let requests in flight finish (at most `drain` s), then stop the process group."""
        deadline = time.monotonic() + drain
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.process is not None:
            await asyncio.to_thread(processes.stop, self.process.pid, None, grace)
            self.process.poll()
        self.socket.unlink(missing_ok=True)
