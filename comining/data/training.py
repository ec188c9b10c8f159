"""The name engine.py imports from here: in-memory training sets live in in_memory.py."""

from comining.data.in_memory import InMemoryData

__all__ = ["InMemoryData"]
