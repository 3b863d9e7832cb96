"""__init__ templates for syntax nodes (nodes.py): one per number of fields, its names filled in per class."""

from __future__ import annotations

_set = object.__setattr__


def _init0(self):
    pass


def _init1(self, a0):
    _set(self, "0", a0)


def _init2(self, a0, a1):
    _set(self, "0", a0)
    _set(self, "1", a1)


def _init3(self, a0, a1, a2):
    _set(self, "0", a0)
    _set(self, "1", a1)
    _set(self, "2", a2)


def _init4(self, a0, a1, a2, a3):
    _set(self, "0", a0)
    _set(self, "1", a1)
    _set(self, "2", a2)
    _set(self, "3", a3)


def _init5(self, a0, a1, a2, a3, a4):
    _set(self, "0", a0)
    _set(self, "1", a1)
    _set(self, "2", a2)
    _set(self, "3", a3)
    _set(self, "4", a4)


def _init6(self, a0, a1, a2, a3, a4, a5):
    _set(self, "0", a0)
    _set(self, "1", a1)
    _set(self, "2", a2)
    _set(self, "3", a3)
    _set(self, "4", a4)
    _set(self, "5", a5)


def _init7(self, a0, a1, a2, a3, a4, a5, a6):
    _set(self, "0", a0)
    _set(self, "1", a1)
    _set(self, "2", a2)
    _set(self, "3", a3)
    _set(self, "4", a4)
    _set(self, "5", a5)
    _set(self, "6", a6)


def _init8(self, a0, a1, a2, a3, a4, a5, a6, a7):
    _set(self, "0", a0)
    _set(self, "1", a1)
    _set(self, "2", a2)
    _set(self, "3", a3)
    _set(self, "4", a4)
    _set(self, "5", a5)
    _set(self, "6", a6)
    _set(self, "7", a7)


def _init9(self, a0, a1, a2, a3, a4, a5, a6, a7, a8):
    _set(self, "0", a0)
    _set(self, "1", a1)
    _set(self, "2", a2)
    _set(self, "3", a3)
    _set(self, "4", a4)
    _set(self, "5", a5)
    _set(self, "6", a6)
    _set(self, "7", a7)
    _set(self, "8", a8)


def _init10(self, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9):
    _set(self, "0", a0)
    _set(self, "1", a1)
    _set(self, "2", a2)
    _set(self, "3", a3)
    _set(self, "4", a4)
    _set(self, "5", a5)
    _set(self, "6", a6)
    _set(self, "7", a7)
    _set(self, "8", a8)
    _set(self, "9", a9)


def _init11(self, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10):
    _set(self, "0", a0)
    _set(self, "1", a1)
    _set(self, "2", a2)
    _set(self, "3", a3)
    _set(self, "4", a4)
    _set(self, "5", a5)
    _set(self, "6", a6)
    _set(self, "7", a7)
    _set(self, "8", a8)
    _set(self, "9", a9)
    _set(self, "10", a10)


def _init12(self, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11):
    _set(self, "0", a0)
    _set(self, "1", a1)
    _set(self, "2", a2)
    _set(self, "3", a3)
    _set(self, "4", a4)
    _set(self, "5", a5)
    _set(self, "6", a6)
    _set(self, "7", a7)
    _set(self, "8", a8)
    _set(self, "9", a9)
    _set(self, "10", a10)
    _set(self, "11", a11)


#: by number of fields
INITS = (_init0, _init1, _init2, _init3, _init4, _init5, _init6, _init7, _init8, _init9, _init10, _init11, _init12)
