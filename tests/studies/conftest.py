"""Fixtures shared by the study tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def in_repo(monkeypatch):
    """Run in the repository's root, where the examples' relative paths start."""
    monkeypatch.chdir(Path(__file__).resolve().parents[2])


@pytest.fixture
def sat():
    """python-sat (the [sat] extra, in [dev]): attn schedule --prove."""
    return pytest.importorskip("pysat")


def _attention(q, k, v, causal=False):
    """softmax(Q Kᵀ / sqrt(d)) V in float64 with NumPy, causal-masked on request."""
    s = q.astype(np.float64) @ k.astype(np.float64).T / np.sqrt(q.shape[1])
    if causal:
        s = np.where(np.tri(len(q), dtype=bool), s, -np.inf)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)) @ v


@pytest.fixture
def reference():
    return _attention
