# cython: language_level=3
"""Cython binding of rnnfast's C kernels (csrc/)."""

cdef extern from "rnnfast.h":
    int rnnfast_openmp_enabled()


def openmp_enabled():
    """True if the compiled kernels were built with OpenMP."""
    return bool(rnnfast_openmp_enabled())
