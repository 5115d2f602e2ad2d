"""What the server takes from Python 3.11's standard library, for Python 3.10 as well.

The course supports Python 3.10 and later (pyproject.toml, `requires-python`). One name is
newer than 3.10: `enum.StrEnum`, whose members are strings that print as their value
(`str(OrderStatus.PAID) == "paid"`); on 3.10 the same class is built here.
"""
from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:
    class StrEnum(str, Enum):
        """enum.StrEnum as Python 3.11 has it: str() and format() give the member's value."""
        def __str__(self) -> str:
            return str.__str__(self)

        def __format__(self, format_spec: str) -> str:
            return str.__format__(self, format_spec)

__all__ = ["StrEnum"]
