"""Where a command runs (Azure, or the local target) and how the follow-up commands the library suggests in its
messages are written. The library names no script: the commands layer implements this (commands/target.py) and
hands it down, in place of a `local` flag."""

from __future__ import annotations

from typing import Protocol


class Target(Protocol):
    @property
    def local(self) -> bool: ...

    def show(self, endpoint: str) -> str:
        """The command that shows an endpoint (to check on an operation)."""
        ...

    def create_endpoint(self, endpoint: str) -> str: ...

    def register_model(self, model: str) -> str: ...

    def start(self, endpoint: str) -> str:
        """The command that starts a stopped local endpoint."""
        ...

    def stop(self, endpoint: str) -> str: ...

    def delete_deployment(self, endpoint: str, deployment: str) -> str:
        """The command that deletes one deployment of an endpoint."""
        ...

    def verb(self, name: str, *arguments: str) -> str:
        """A verb named in prose, as the commands layer writes it (with its script's name)."""
        ...
