"""Version numbers that look like IP addresses.

Presidio's IP recognizer takes any dotted quad of numbers up to 255 for an address, and four-part
versions have that shape: "version 10.2.3.4", "firmware 4.12.0.217", "build 6.1.0.18". Masking them
breaks the question ("does <IP_ADDRESS_1> fix the bug?") and hides nothing. A dotted quad right after
a word that names a version (within a few characters: "Version: 10.2.3.4", "release 4.12.0.217") is
left alone; an address after "IP", "server", "host" or nothing at all is still masked.
"""

from __future__ import annotations

import re

__all__ = ["VERSION_BEFORE", "is_version"]

VERSION_BEFORE = re.compile(
    r"\b(?:v|ver|version|versions|release|released|build|builds|firmware|fw|kernel|patch|patched|rev|revision"
    r"|update|updated|upgrade|upgraded|downgrade|downgraded|sdk|bios|driver|drivers|package|pkg)\b[^\w\n]{0,4}$",
    re.IGNORECASE,
)


def is_version(text: str, start: int) -> bool:
    """Whether the dotted number at ``start`` follows a word that names a version."""
    return bool(VERSION_BEFORE.search(text[max(0, start - 24) : start]))
