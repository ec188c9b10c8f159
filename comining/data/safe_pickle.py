"""Unpickling that cannot run code: only numpy arrays and plain Python data get through.

The CIFAR python batches are pickles, and a pickle can name any callable. This unpickler refuses
every global except the handful numpy needs to rebuild arrays and scalars.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ..errors import UserError

# Pickles written under numpy 1.x name `numpy.core.*`; numpy 2 moved it to `numpy._core.*` and
# warns on the old path, so both spellings resolve to the new module's object.
_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "scalar"), ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode")}
_ALIASES = {"numpy.core.multiarray": "numpy._core.multiarray", "numpy.core.numeric": "numpy._core.numeric"}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _resolve(module: str, name: str) -> Any:
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        # numpy < 2 has no numpy._core; fall back to the old location.
        old = module.replace("numpy._core", "numpy.core")
        return getattr(importlib.import_module(old), name)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        key = (_ALIASES.get(module, module), name)
        if key not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return _resolve(*key)


def load_pickle(path: str | Path) -> Any:
    """Unpickle `path` (keys and str values come back as bytes, like Python 2's CIFAR files).
    Returns the unpickled object (dicts, lists, numbers, bytes/str, numpy arrays). Raises
    UserError, without executing anything, if the file is missing, truncated, not a pickle, or
    names any other global (e.g. os.system)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return _RestrictedUnpickler(fh, encoding="bytes").load()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or _one_line(exc)}; check the path and "
                        "permissions") from exc
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refused global"):
            raise UserError(f"{path} is not a plain data pickle ({_one_line(exc)}); it may be malicious, "
                            "replace it with the original file") from exc
        raise UserError(f"{path} is not a valid pickle ({_one_line(exc)}); re-download or re-unpack it") from exc
    except Exception as exc:  # truncated or garbled streams fail in many ways (EOFError, ValueError, ...)
        raise UserError(f"{path} is truncated or not a pickle ({type(exc).__name__}: {_one_line(exc)}); "
                        "re-download or re-unpack it") from exc
