"""Byte sizes as sysadmins write them ("500MB", "2 GiB", "1.5G") or bare bytes."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000 ** 2, "mb": 1000 ** 2, "mib": 1024 ** 2,
          "g": 1000 ** 3, "gb": 1000 ** 3, "gib": 1024 ** 3, "t": 1000 ** 4, "tb": 1000 ** 4, "tib": 1024 ** 4}
SIZE_HINT = "a size such as 500MB, 2GiB or a number of bytes"


def parse_size(value: object) -> int:
    """Bytes for ``value``; ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"expected {SIZE_HINT}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value.strip().lower())
        if not match or match[2] not in _UNITS:
            raise ValueError(f"expected {SIZE_HINT}")
        size = int(float(match[1]) * _UNITS[match[2]])
    else:
        raise ValueError(f"expected {SIZE_HINT}")
    if size <= 0:
        raise ValueError(f"expected {SIZE_HINT} greater than zero")
    return size


ByteSize = Annotated[int, BeforeValidator(parse_size)]
