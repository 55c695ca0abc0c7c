"""The MLIP steps run NumPy/SciPy's BLAS on one thread (small matrices; measured reason in
tcflow.screen.mlip.small_matrix_blas) and give back the process's setting afterwards."""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

from tcflow.screen import mlip


def _blas_threads():
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_small_matrix_blas_is_one_thread_inside_and_restores_outside():
    import numpy  # noqa: F401  (loads NumPy's BLAS)
    import scipy.linalg  # noqa: F401  (and SciPy's)

    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert before and all(n == 2 for n in before.values())
        with mlip.small_matrix_blas():
            assert all(n == 1 for n in _blas_threads().values())
        assert _blas_threads() == before
