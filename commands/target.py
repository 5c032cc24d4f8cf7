"""The two targets a command runs on, and every follow-up command line the toolkit prints (common/target.py's
Target, which the library is handed instead of a `local` flag)."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass

MANAGE = "manage_online_endpoint.py"


@dataclass(frozen=True)
class Target:
    local: bool

    def command(self, script: str, *arguments: str) -> str:
        """A command line of this toolkit, for this target, quoted for the shell so it runs as printed."""
        return shlex.join(["python", script, *arguments, *(["--local"] if self.local else [])])

    def show(self, endpoint: str) -> str:
        return self.command(MANAGE, "show", "--endpoint_name", endpoint)

    def create_endpoint(self, endpoint: str) -> str:
        return self.command("create_online_endpoint.py", "--endpoint_name", endpoint)

    def register_model(self, model: str) -> str:
        """How to register `model`: the toolkit's own is trained; any other is your file or folder."""
        from common.assets import MODEL_NAME  # here, not at import: --help stays fast

        if model == MODEL_NAME:
            return self.command("train_model.py", "--register", "--model_name", model)
        return self.command(MANAGE, "register", "--name", model, "--path", "MODEL_FILE_OR_FOLDER")

    def start(self, endpoint: str) -> str:
        return LOCAL.command(MANAGE, "start", "--endpoint_name", endpoint)

    def stop(self, endpoint: str) -> str:
        return LOCAL.command(MANAGE, "stop", "--endpoint_name", endpoint)

    def delete_deployment(self, endpoint: str, deployment: str) -> str:
        return self.command(MANAGE, "delete", "--endpoint_name", endpoint, "--deployment_name", deployment, "--yes")

    def verb(self, name: str, *arguments: str) -> str:
        return " ".join([MANAGE, name, *arguments])


AZURE = Target(local=False)
LOCAL = Target(local=True)


def of(args: argparse.Namespace) -> Target:
    return LOCAL if getattr(args, "local", False) else AZURE
