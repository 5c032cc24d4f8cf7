"""A conda channel on disk for the tests (conda channels cannot be reached here): a `python` package made from the
interpreter running the tests, and small noarch Python packages, indexed by py-rattler as any channel is."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import platform
import sys
import tarfile
from pathlib import Path

# what a copy of the interpreter leaves out: other packages, and the parts of the standard library nothing here uses
LEFT_OUT = {"site-packages", "test", "tests", "idlelib", "tkinter", "turtledemo", "__pycache__", "ensurepip", "lib2to3"}


def _package(
    channel: Path,
    subdir: str,
    index: dict[str, object],
    files: dict[str, Path | bytes],
    links: dict[str, str] | None = None,
) -> None:
    """A .tar.bz2 conda package: the files and symbolic links, and info/index.json, paths.json and files (and
    link.json for noarch)."""
    name = f"{index['name']}-{index['version']}-{index['build']}.tar.bz2"
    (channel / subdir).mkdir(parents=True, exist_ok=True)
    paths: list[dict[str, object]] = []
    with tarfile.open(channel / subdir / name, "w:bz2", compresslevel=1) as tar:

        def add(arcname: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(arcname)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for relative, target in (links or {}).items():
            link = tarfile.TarInfo(relative)
            link.type, link.linkname = tarfile.SYMTYPE, target
            tar.addfile(link)
            paths.append({"_path": relative, "path_type": "softlink"})
        for relative, source in files.items():
            data = source.read_bytes() if isinstance(source, Path) else source
            add(relative, data, (source.stat().st_mode & 0o777) if isinstance(source, Path) else 0o644)
            digest = hashlib.sha256(data).hexdigest()
            paths.append({"_path": relative, "path_type": "hardlink", "sha256": digest, "size_in_bytes": len(data)})
        add("info/index.json", json.dumps(index).encode())
        add("info/paths.json", json.dumps({"paths": paths, "paths_version": 1}).encode())
        add("info/files", "\n".join(str(entry["_path"]) for entry in paths).encode())
        if index.get("noarch") == "python":
            add("info/link.json", json.dumps({"noarch": {"type": "python"}, "package_metadata_version": 1}).encode())


def python_package(channel: Path) -> str:
    """This interpreter as conda's `python` package (bin/python linked to it, as conda-forge's is); its version."""
    base = Path(sys.base_prefix)
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    files: dict[str, Path | bytes] = {f"bin/{minor}": (base / "bin" / minor).resolve()}
    for path in (base / "lib" / minor).rglob("*"):
        relative = path.relative_to(base)
        if path.is_file() and not LEFT_OUT & set(relative.parts) and not relative.parts[2].startswith("config-"):
            files[str(relative)] = path
    for library in (base / "lib").glob("libpython3*.so*"):  # an interpreter built --enable-shared needs it
        files[str(library.relative_to(base))] = library
    version = platform.python_version()
    index = {"name": "python", "version": version, "build": "h0_local", "build_number": 0, "depends": []}
    subdir = {"subdir": "linux-64", "platform": "linux", "arch": "x86_64"}
    _package(channel, "linux-64", {**index, **subdir}, files, links={"bin/python": minor})
    return version


def noarch_package(channel: Path, name: str, version: str) -> None:
    """A pure-Python package `name` whose module says its VERSION: what only this channel has."""
    index = {"name": name, "version": version, "build": "py_0", "build_number": 0, "depends": ["python"]}
    module = f"VERSION = {version!r}\n".encode()
    _package(
        channel,
        "noarch",
        {**index, "subdir": "noarch", "noarch": "python"},
        {f"site-packages/{name}/__init__.py": module},
    )


def index(channel: Path) -> str:
    """The channel's repodata, written by py-rattler; its file:// URL, as a conda file's channels: take it."""
    import rattler

    asyncio.run(rattler.index.index_fs(channel))
    return channel.resolve().as_uri()
