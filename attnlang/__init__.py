"""attnlang: a language, checker, interpreter, explorer and JIT for attention
dataflows on modeled hardware accelerators."""

__version__ = "0.1.0"
