"""The interpreter's tensor value: its data, dtype and storage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class TV:
    """A tensor value: its data, dtype and storage (a machine Buffer)."""

    data: np.ndarray
    dtype: str
    buf: object
