"""The per-candidate electron-phonon chain as data: one :class:`Step` per job.

Everything else follows from :data:`STEPS`: the rules of ``rules/dft.smk`` (one per step, inputs
from :attr:`Step.inputs`), the job's dispatch (:data:`BY_RULE` -> :attr:`Step.func`), the record
each step leaves, and the inputs of the final ``tc`` step. Adding a QE step means one entry here
and one function in :mod:`tcflow.dft.steps`.

Layout under ``results/dft/<cid>/``: one directory per step (``ph_q/<chunk>`` per q-chunk) holding
its QE inputs and outputs and its record ``<record>``, a JSON with ``status`` written last.

ph.x runs in one of two modes (config ``dft.ph_jobs``): ``single`` (1: one ph.x job over every
irreducible q-point, rule ``dft_ph_all``) or ``split`` (n >= 2: ``dft_ph_init`` lists the
q-points, a fixed number n of ``dft_ph_q`` jobs share them out at run time (:func:`q_chunks`,
by ph.x's k-points per q-point; a chunk left without q-points finishes at once) and ``dft_ph``
collects them). The DAG is static past the ``candidates`` checkpoint: no per-candidate
checkpoint. Standard library only: the Snakefile imports this at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass

BOTH, SINGLE, SPLIT = "both", "single", "split"


@dataclass(frozen=True)
class Step:
    """One job of the chain.

    ``name``: its directory under the candidate (also the input name downstream rules use);
    ``rule``: the Snakemake rule; ``func``: ``module:function`` in :mod:`tcflow.dft.steps`;
    ``code``: the QE executable it runs (None: Python only); ``inputs``: upstream step names;
    ``gate``: the upstream (or upstreams) whose status must be ``ok`` (else this step records the
    first other status and runs nothing); ``mpi``: runs under the MPI launcher; ``mode``: the ph.x mode it belongs to;
    ``runtime_min`` / ``mem_mb``: portable resource defaults (profiles override them);
    ``second_grid``: only in protocols with a second la2F grid (``second_dense_kgrid_factor``);
    ``elph2``: only where the el-ph coefficients are recomputed on it (not ``dos_rescaled``).
    """

    name: str
    rule: str
    func: str
    record: str
    code: str | None = None
    inputs: tuple[str, ...] = ()
    gate: str | tuple[str, ...] | None = None
    mpi: bool = False
    mode: str = BOTH
    runtime_min: int = 10
    mem_mb: int = 2000
    chunked: bool = False
    second_grid: bool = False
    elph2: bool = False

    @property
    def gates(self) -> tuple[str, ...]:
        """The upstream steps that gate this one, in order."""
        return (self.gate,) if isinstance(self.gate, str) else tuple(self.gate or ())


PW_RUNTIME_MIN = 240
PH_RUNTIME_MIN = 720
MPI_MEM_MB = 8000

STEPS: tuple[Step, ...] = (
    Step("structure", "dft_structure", "structure:structure", "structure.json"),
    Step("relax", "dft_relax", "pw:relax", "relax.json", "pw.x", ("structure",), "structure",
         mpi=True, runtime_min=PW_RUNTIME_MIN, mem_mb=MPI_MEM_MB),
    Step("scf_fit", "dft_scf_fit", "pw:scf_fit", "scf_fit.json", "pw.x", ("structure", "relax"), "relax",
         mpi=True, runtime_min=PW_RUNTIME_MIN, mem_mb=MPI_MEM_MB),
    Step("scf", "dft_scf", "pw:scf", "scf.json", "pw.x", ("structure", "relax", "scf_fit"), "scf_fit",
         mpi=True, runtime_min=PW_RUNTIME_MIN, mem_mb=MPI_MEM_MB),
    Step("ph_init", "dft_ph_init", "ph:init", "qpoints.json", "ph.x", ("structure", "relax", "scf"), "scf",
         mpi=True, mode=SPLIT, runtime_min=PW_RUNTIME_MIN, mem_mb=MPI_MEM_MB),
    Step("ph_q", "dft_ph_q", "ph:chunk", "ph.json", "ph.x", ("structure", "relax", "scf", "ph_init"), "ph_init",
         mpi=True, mode=SPLIT, runtime_min=PH_RUNTIME_MIN, mem_mb=MPI_MEM_MB, chunked=True),
    Step("ph", "dft_ph", "ph:collect", "ph.json", None, ("ph_init", "ph_q"), "ph_init", mode=SPLIT),
    Step("ph", "dft_ph_all", "ph:run_all", "ph.json", "ph.x", ("structure", "relax", "scf"), "scf",
         mpi=True, mode=SINGLE, runtime_min=PH_RUNTIME_MIN, mem_mb=MPI_MEM_MB),
    Step("q2r", "dft_q2r", "post:q2r", "q2r.json", "q2r.x", ("structure", "ph"), "ph", runtime_min=30, mem_mb=4000),
    Step("matdyn", "dft_matdyn", "post:matdyn", "matdyn.json", "matdyn.x", ("structure", "relax", "q2r"), "q2r",
         runtime_min=60, mem_mb=4000),
    Step("lambda", "dft_lambda", "post:lambda_", "lambda.json", "lambda.x", ("structure", "ph"), "ph"),
    # the second dense grid: la2F scf on it (its N(E_F) is all broadening_rule dos_rescaled uses);
    # with two_grids also ph.x's el-ph from the saved dvscf (trans = .false.), its a2F through q2r.x
    # and matdyn.x
    Step("scf_fit2", "dft_scf_fit2", "pw:scf_fit2", "scf_fit2.json", "pw.x", ("structure", "relax", "scf_fit"),
         "scf_fit", mpi=True, runtime_min=PW_RUNTIME_MIN, mem_mb=MPI_MEM_MB, second_grid=True),
    Step("elph2", "dft_elph2", "ph:elph2", "elph2.json", "ph.x", ("structure", "relax", "scf", "ph", "scf_fit2"),
         ("ph", "scf_fit2"), mpi=True, runtime_min=PH_RUNTIME_MIN, mem_mb=MPI_MEM_MB, second_grid=True, elph2=True),
    Step("q2r2", "dft_q2r2", "post:q2r2", "q2r2.json", "q2r.x", ("structure", "ph", "elph2"), "elph2",
         runtime_min=30, mem_mb=4000, second_grid=True, elph2=True),
    Step("matdyn2", "dft_matdyn2", "post:matdyn2", "matdyn2.json", "matdyn.x", ("structure", "relax", "q2r2"), "q2r2",
         runtime_min=60, mem_mb=4000, second_grid=True, elph2=True),
)
#: the final job: tc.json and metadata.json from every step's record
TC_RULE = "dft_tc"
#: the report's phonon dispersion: a step under the same contract (staging, record, gate), after
#: tc.json and outside the chain (tc.json never waits for it; rule in rules/dft.smk)
DISPERSION = Step("dispersion", "dft_dispersion", "dispersion:dispersion", "dispersion.json", "matdyn.x",
                  ("structure", "relax", "q2r"), "q2r", runtime_min=30, mem_mb=4000)
BY_RULE = {s.rule: s for s in (*STEPS, DISPERSION)}
#: step name -> its record file (the two ph.x modes share the name and record of `ph`)
BY_NAME_RECORD = {s.name: s.record for s in STEPS}


def mode_of(ph_jobs: int) -> str:
    """``single`` for ``dft.ph_jobs == 1``, else ``split``."""
    if int(ph_jobs) < 1:
        raise ValueError(f"dft.ph_jobs must be >= 1, got {ph_jobs}")
    return SINGLE if int(ph_jobs) == 1 else SPLIT


def chain(ph_jobs: int, second_grid: bool = False, elph2: bool | None = None) -> tuple[Step, ...]:
    """The steps of one run, in chain order; the second-grid steps only with ``second_grid``, its
    el-ph steps only with ``elph2`` (default: ``second_grid``)."""
    mode = mode_of(ph_jobs)
    elph2 = second_grid if elph2 is None else elph2
    return tuple(s for s in STEPS if s.mode in (BOTH, mode) and (second_grid or not s.second_grid)
                 and (elph2 or not s.elph2))


def q_chunks(n_irr_q: int, n_jobs: int, costs: list[float] | None = None) -> list[tuple[int, int]]:
    """1-based inclusive (first, last) irreducible q-points of each of the ``n_jobs`` split ph.x
    jobs; ``(first, first - 1)`` is an empty chunk (more jobs than q-points).

    Without ``costs``, as even as can be in number (sizes differ by at most one). With ``costs``
    (one per q-point, e.g. the k-points ph.x treats there, :mod:`tcflow.dft.kcount`), contiguous
    chunks whose largest total cost is the smallest possible, so that the slowest job, which
    the candidate waits for, is as short as it can be; every job still gets a q-point while
    there are enough."""
    if n_jobs < 1:
        raise ValueError(f"dft.ph_jobs must be >= 1, got {n_jobs}")
    n_irr_q, n_jobs = int(n_irr_q), int(n_jobs)
    if costs is not None and len(costs) != n_irr_q:
        raise ValueError(f"q_chunks: {len(costs)} costs for {n_irr_q} q-points")
    if costs is None or n_irr_q <= n_jobs:
        base, extra = divmod(n_irr_q, n_jobs)
        sizes = [base + (k < extra) for k in range(n_jobs)]
    else:
        sizes = _balanced_sizes([float(c) for c in costs], n_jobs)
    out, first = [], 1
    for size in sizes:
        out.append((first, first + size - 1))
        first += size
    return out


def _greedy_sizes(costs: list[float], limit: float) -> list[int]:
    """Contiguous blocks, each filled while its total stays within ``limit``."""
    sizes, total = [0], 0.0
    for c in costs:
        if sizes[-1] and total + c > limit * (1 + 1e-12):
            sizes.append(0)
            total = 0.0
        sizes[-1] += 1
        total += c
    return sizes


def _balanced_sizes(costs: list[float], n_jobs: int) -> list[int]:
    """Sizes of ``n_jobs`` non-empty contiguous blocks of ``costs`` (n_jobs <= len) minimising
    the largest block total: the smallest feasible limit among all contiguous sums, then blocks
    split (the largest first) until there are ``n_jobs``."""
    prefix = [0.0]
    for c in costs:
        prefix.append(prefix[-1] + c)
    n = len(costs)
    limits = sorted({prefix[j] - prefix[i] for i in range(n) for j in range(i + 1, n + 1)})
    lo, hi = 0, len(limits) - 1          # the whole sum is always feasible
    while lo < hi:
        mid = (lo + hi) // 2
        if len(_greedy_sizes(costs, limits[mid])) <= n_jobs:
            hi = mid
        else:
            lo = mid + 1
    sizes = _greedy_sizes(costs, limits[lo])
    while len(sizes) < n_jobs:           # more jobs than blocks: split the costliest splittable block
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        i = max((i for i in range(len(sizes)) if sizes[i] > 1),
                key=lambda i: prefix[starts[i] + sizes[i]] - prefix[starts[i]])
        a, b = starts[i], starts[i] + sizes[i]
        half = min(range(1, sizes[i]), key=lambda h: max(prefix[a + h] - prefix[a], prefix[b] - prefix[a + h]))
        sizes[i:i + 1] = [half, sizes[i] - half]
    return sizes


def step_dir(cand: str, step: Step, chunk: int | str | None = None) -> str:
    """The output directory of ``step`` under candidate directory ``cand``."""
    return f"{cand}/{step.name}/{chunk}" if step.chunked else f"{cand}/{step.name}"
