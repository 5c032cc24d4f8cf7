"""A broken release for `make demo-rollout`: it starts, then fails every request (the server answers 500, the
endpoint 424), so a staged rollout rolls it back at its first step."""


def init() -> None:
    pass


def run(raw_data: str) -> list[str]:
    raise RuntimeError("this release fails every request")
