# tcflow: the README's two commands.
#   make run    set up (venv, pinned packages, Quantum ESPRESSO), run the workflow on CONFIG, write
#               the HTML report and print a summary (counts per stage, best candidates, where things are)
#   make test   same setup, then the whole test suite
#   make doctor preflight of a SLURM run on the login node (PROFILE, CONFIG): one line per finding
#   make dgl-env        optional second environment (.venv-dgl) with alignn's DGL-era ALIGNN;
#   make dgl-reference  rewrites tests/screen/fixtures/dgl_alignn/ from it (the port's reference)
# run and test are idempotent: the setup steps do nothing when already done.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
CONFIG ?= config/config.yaml
CORES  ?= 2
PROFILE ?= profiles/slurm
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: Quantum ESPRESSO 6.7 for the DFT stage; SLURM + munge for the cluster tests,
# libpmix-dev (libpmix.so) for srun to start QE's Open MPI ranks through its pmix plugin, and
# chromium for the test that opens the HTML report in a real (headless) browser.
APT_RUN  := quantum-espresso
APT_TEST := quantum-espresso slurm-wlm munge libpmix-dev chromium

.PHONY: run test setup apt-run apt-test dryrun doctor clean dgl-env dgl-reference

$(VENV)/.installed: pyproject.toml
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# torch first: the pinned CPU wheel (an unpinned torch would pull a multi-GB CUDA build)
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

DGL_VENV ?= .venv-dgl
$(DGL_VENV)/.installed: envs/dgl/requirements.txt
	@[ -x $(DGL_VENV)/bin/python ] || $(PYTHON) -m venv $(DGL_VENV)
	$(DGL_VENV)/bin/pip install --quiet --upgrade pip
	$(DGL_VENV)/bin/pip install --quiet -r envs/dgl/requirements.txt
	touch $@

dgl-env: $(DGL_VENV)/.installed

dgl-reference: dgl-env
	$(DGL_VENV)/bin/python envs/dgl/dgl_reference.py

apt-run:
	@command -v pw.x >/dev/null && command -v ph.x >/dev/null || \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_RUN); }

apt-test:
	@command -v pw.x >/dev/null && command -v slurmctld >/dev/null && command -v munged >/dev/null && \
	  command -v chromium >/dev/null && ls /usr/lib/*/libpmix.so >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_TEST); }

run: setup apt-run
	@# plain YAML only: names the file and the tag that Snakemake's loader would refuse without saying which
	$(VENV)/bin/python -m tcflow.config $(CONFIG)
	$(VENV)/bin/snakemake --profile profiles/local --cores $(CORES) --configfile $(CONFIG)
	@# Snakemake's own report: one self-contained HTML file with the figures and tables (captions: rules/report/)
	$(VENV)/bin/snakemake --profile profiles/local --configfile $(CONFIG) --report results/report/report.html
	@echo
	@$(VENV)/bin/python -m tcflow.report.summary

test: setup apt-test
	$(VENV)/bin/pytest

# after `make setup`; exits non-zero on a failing finding, and where no SLURM answers
doctor:
	@$(VENV)/bin/python -m tcflow.doctor --profile $(PROFILE) --configfile $(CONFIG)

dryrun: setup
	$(VENV)/bin/snakemake -n --configfile config/paper.yaml

clean:
	rm -rf results logs .snakemake
