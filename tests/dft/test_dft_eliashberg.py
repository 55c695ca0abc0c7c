"""McMillan / Allen-Dynes Tc against hand-computed values and lambda.x's own output."""

import math
import re

import pytest

from tcflow.dft.eliashberg import allen_dynes_tc, choose_broadening, mcmillan_tc, tc_table
from workflow_helpers import SHARED

LAMBDA_X_REF = SHARED / "reference" / "qe_test_suite_ph_metal_al" / "benchmark.out.git.inp=lambda.in.args=5"
LAMBDA_X_PRINT_K = 0.0015  # lambda.x prints Tc with 3 decimals


def test_mcmillan_hand_value():
    # lambda = 1, Theta_D = 300 K, mu* = 0.1: exponent -1.04*2/(1 - 0.1*1.62) = -2.482100...
    expected = 300 / 1.45 * math.exp(-2.08 / 0.838)
    assert mcmillan_tc(1.0, 300.0, 0.1) == pytest.approx(expected, rel=1e-12)
    assert mcmillan_tc(1.0, 300.0, 0.1) == pytest.approx(17.2898, abs=1e-3)


def test_allen_dynes_hand_value():
    # lambda.x's Al row at degauss 0.010: lambda 0.43490, omega_log 352.859 K -> 2.311 K
    assert allen_dynes_tc(0.43490, 352.859, 0.1) == pytest.approx(2.3109, abs=1e-3)


def test_weak_coupling_gives_zero():
    assert allen_dynes_tc(0.1, 300.0, 0.1) == 0.0
    assert mcmillan_tc(0.05, 300.0, 0.13) == 0.0


def test_allen_dynes_matches_lambda_x_reference_output():
    text = LAMBDA_X_REF.read_text()
    rows = re.findall(r"^\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", text.split("T_c", 1)[1], re.M)
    assert len(rows) == 10
    for lam, wlog, tc in rows:
        assert allen_dynes_tc(float(lam), float(wlog), 0.1) == pytest.approx(float(tc), abs=LAMBDA_X_PRINT_K)


def test_choose_broadening_rule():
    lams = [0.292, 0.435, 0.426, 0.398, 0.376]
    assert choose_broadening(lams, 0.05) == (1, True)
    assert choose_broadening(lams, 0.001) == (4, False)


def test_tc_table_adds_tc():
    rows = tc_table([{"lambda": 0.4349, "omega_log_K": 352.859}], 0.1)
    assert rows[0]["tc_K"] == pytest.approx(2.311, abs=2e-3)
