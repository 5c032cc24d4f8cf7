"""Exact pins (NAME==VERSION) in requirements.txt and in environment.yml's pip section."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yaml

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)")


def parse_pins(lines: Iterable[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)  # PEP 503: prometheus_client
    return found


def pinned_versions(conda_file: Path) -> dict[str, str]:
    """The pip pins of a conda environment file."""
    document = yaml.safe_load(conda_file.read_text()) or {}
    pip_sections = [d["pip"] for d in document.get("dependencies", []) if isinstance(d, dict) and "pip" in d]
    return parse_pins(line for section in pip_sections for line in section)


def requirement_pins(requirements: Path) -> dict[str, str]:
    return parse_pins(requirements.read_text().splitlines())
