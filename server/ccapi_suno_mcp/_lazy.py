"""Lazy package exports (PEP 562): a package's names load their module on first use, not at import.

Start-up imports only what listing the tools needs; the CCAPI client, the ledger and their models load when
a tool first uses them. Each package keeps a `TYPE_CHECKING` import of every name, so type checkers and readers
see them as ordinary imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports `package.<module>` when one of its names is first read.

    `exports` maps each exported name to its module's name within the package.
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later reads find it directly
        return value

    return __getattr__
