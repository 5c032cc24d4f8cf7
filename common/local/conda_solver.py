"""A conda file's conda packages solved and installed from its channels, as Azure's image build installs them, with
py-rattler (conda's solver and installer as a library: no conda installation needed).

The solve and install run in a child process that writes its outcome to a file: rattler's runtime has crashed the
interpreter on its way out (a segmentation fault after the work was done, about one run in four here), which must
never take a deployment command with it. The parent reads the outcome whatever the child's exit.

Outcomes: installed (the prefix holds the environment), unreachable (no channel answered: the caller installs the
packages from PyPI instead), unsolvable (the channels answer, but no set of packages satisfies the file).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# conda's own meaning of `defaults` (and of a file without channels): Anaconda's main and r channels
DEFAULT_CHANNELS = ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r")
CHILD_TIMEOUT_SECONDS = 1800  # the largest environments (CUDA) download gigabytes


@dataclass(frozen=True)
class Outcome:
    kind: str  # installed, unreachable, unsolvable, failed
    message: str = ""
    packages: tuple[str, ...] = ()  # NAME==VERSION of what was installed
    seconds: float = 0.0


def channels_of(written: list[str]) -> tuple[str, ...]:
    """The channels to solve from, conda's alias `defaults` (and no channels at all) as conda reads them."""
    found: list[str] = []
    for channel in written or ["defaults"]:
        found.extend(DEFAULT_CHANNELS if channel == "defaults" else [channel])
    return tuple(dict.fromkeys(found))


def solve_and_install(
    channels: tuple[str, ...], specs: tuple[str, ...], prefix: Path, cache: Path, log: Path
) -> Outcome:
    """Solve `specs` from `channels` for this platform and install the packages into `prefix` (the package files
    kept in `cache`, shared by every environment)."""
    started = time.monotonic()
    request = {"channels": list(channels), "specs": list(specs), "prefix": str(prefix), "cache": str(cache)}
    answer = log.with_name("conda-solver.json")
    answer.unlink(missing_ok=True)
    with log.open("a") as output:
        output.write(f"$ rattler solve {' '.join(specs)} from {' '.join(channels)} into {prefix}\n")
        output.flush()
        try:
            subprocess.run(
                [sys.executable, "-m", "common.local.conda_solver", json.dumps(request), str(answer)],
                cwd=Path(__file__).resolve().parents[2],
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=CHILD_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome("failed", f"solving and installing took over {CHILD_TIMEOUT_SECONDS} s")
    try:
        result = json.loads(answer.read_text())
    except (OSError, ValueError):
        return Outcome("failed", f"the conda solver (py-rattler) stopped without an answer: see {log}")
    return Outcome(
        result["kind"], result.get("message", ""), tuple(result.get("packages", ())), time.monotonic() - started
    )


def _first_lines(error: BaseException) -> str:
    """rattler's message and the last 'Caused by' (the reason: a DNS error, a missing file)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")]
    return "; ".join(dict.fromkeys([lines[0] if lines else type(error).__name__, *causes[-1:]]))


def _run(request: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    import rattler
    from rattler.exceptions import GatewayError, SolverError

    try:
        records = asyncio.run(
            rattler.solve(
                request["channels"],
                request["specs"],
                platforms=[rattler.Platform.current(), rattler.Platform("noarch")],
                virtual_packages=rattler.VirtualPackage.detect(),
            )
        )
    except GatewayError as error:
        return {"kind": "unreachable", "message": _first_lines(error)}
    except SolverError as error:
        return {"kind": "unsolvable", "message": " ".join(str(error).split())}
    asyncio.run(rattler.install(records, request["prefix"], cache_dir=request["cache"], show_progress=False))
    return {"kind": "installed", "packages": sorted(f"{r.name.normalized}=={r.version}" for r in records)}


def main(argv: list[str]) -> int:
    request, answer = json.loads(argv[0]), Path(argv[1])
    try:
        result = _run(request)
    except Exception as error:  # any other failure of the solver or installer: said, not a traceback
        result = {"kind": "failed", "message": f"{type(error).__name__}: {_first_lines(error)}"}
    answer.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
