"""The QE runner: a launcher that never starts QE fails loudly (not a recorded QE failure), and
the child environment is explicit."""

from __future__ import annotations

import os

import pytest

from tcflow.dft.runner import Launch, LaunchError, qe_environment, run_qe


def test_missing_launcher_is_a_launch_error(tmp_path):
    with pytest.raises(LaunchError, match=r"^pw.x: cannot start 'no-such-launcher -n 2 pw.x"):
        run_qe("pw.x", "&control /\n", tmp_path, "t", Launch(mpi="no-such-launcher", tasks=2))


def test_refusing_launcher_is_a_launch_error(tmp_path):
    launch = Launch(mpi="sh -c 'echo mpirun refused to start; exit 3'", tasks=2)
    with pytest.raises(LaunchError, match=r"did not start \(exit 3\): mpirun refused to start$"):
        run_qe("pw.x", "&control /\n", tmp_path, "t", launch)


def test_environment_sets_threads_and_root_opt_in():
    env = qe_environment(Launch(omp_threads=3))
    assert env["OMP_NUM_THREADS"] == "3"
    if os.geteuid() == 0:
        assert env["OMPI_ALLOW_RUN_AS_ROOT"] == env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] == "1"


def test_path_prefix_leads_the_child_path_only(tmp_path):
    """A conda environment's bin/ (Launch.path_prefix) is where QE is found; os.environ is untouched."""
    bindir = tmp_path / "env" / "bin"
    bindir.mkdir(parents=True)
    exe = bindir / "q2r.x"
    exe.write_text("#!/bin/sh\necho 'Program Q2R v.7.2 starts on today'\necho \"$PATH\"\necho 'JOB DONE.'\n")
    exe.chmod(0o755)
    before = os.environ["PATH"]
    res = run_qe("q2r.x", "&input /\n", tmp_path / "run", "q2r", Launch(path_prefix=str(bindir)))
    assert res.ok, res.reason
    assert res.output.read_text().splitlines()[1].split(os.pathsep)[0] == str(bindir)
    assert os.environ["PATH"] == before
