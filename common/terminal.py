"""Text from a deployment (its logs, its error messages, a line it printed) made safe to print on a terminal.

A deployment's output is not the toolkit's: a score.py can print terminal control sequences that set the window
title, write the clipboard (OSC 52), clear the screen or hide what follows, and a single line of megabytes. Every
control character but tab and newline is printed escaped (ESC as \\x1b), so the sequence shows and does nothing;
a line longer than MAX_LINE_CHARACTERS is cut, saying how much was cut.
"""

from __future__ import annotations

import re

MAX_LINE_CHARACTERS = 4000
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 (but tab and newline), DEL and C1


def _escaped(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group(0)):02x}"


def printable(text: str, max_line: int = MAX_LINE_CHARACTERS) -> str:
    """`text` with its control characters escaped and each overlong line cut."""
    lines = CONTROL.sub(_escaped, text).split("\n")
    return "\n".join(
        line if len(line) <= max_line else f"{line[:max_line]} [... {len(line) - max_line} more characters cut]"
        for line in lines
    )
