"""Sparse inputs: scipy.sparse matrices are recognised without importing SciPy."""

from __future__ import annotations

from typing import Any

__all__ = ["is_sparse"]


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is a scipy.sparse matrix or array (SciPy is imported only if it already is)."""
    import sys

    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(x))
