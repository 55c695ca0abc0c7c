"""Moved to :mod:`tcflow.structures`; this alias remains only for tcflow/report/aggregate.py,
which is outside this change. Delete it once that module imports tcflow.structures."""

from tcflow.structures import StructureError, read_structure

__all__ = ["StructureError", "read_structure"]
