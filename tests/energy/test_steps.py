"""A phase's step settings: the cutoffs of its key, a molecule's Γ point and fixed-cell relax input,
and the label that decides which energies may share a hull."""

from __future__ import annotations

import pytest

from tcflow.dft import inputs as qi
from tcflow.dft.protocol import get_protocol
from tcflow.energy.elements import element_structure
from tcflow.energy.steps import energy_label, phase_config, protocol_hash

DFT = {"protocol": "sssp", "overrides": {"degauss_ry": 0.03}, "pseudo_dir": None, "pseudo_map": {}}


def test_phase_config_sets_the_cutoffs_of_its_key_and_a_molecules_gamma_point():
    crystal = phase_config(DFT, "45-360", molecule=False)
    assert crystal["overrides"] == {"degauss_ry": 0.03, "ecutwfc_ry": 45.0, "ecutrho_ry": 360.0}
    assert crystal["phase_molecule"] is False and DFT["overrides"] == {"degauss_ry": 0.03}  # not mutated
    mol = phase_config(DFT, "45-360", molecule=True)
    assert mol["overrides"]["kgrid"] == [1, 1, 1] and mol["phase_molecule"] is True
    proto = get_protocol("sssp", mol["overrides"])
    assert proto["ecutwfc_ry"] == 45.0 and proto["kgrid"] == [1, 1, 1]


@pytest.mark.parametrize("name", ["fast", "jarvis", "sssp"])
def test_a_molecule_is_computed_at_the_gamma_point_only_and_shares_the_label(name):
    from tcflow.dft.protocol import derive_grids

    cfg = phase_config({**DFT, "protocol": name, "overrides": {}}, "45-360", molecule=True)
    proto = get_protocol(name, cfg["overrides"])
    grids = derive_grids(proto, (12.0, 12.0, 12.0))
    assert grids["k_relax"] == grids["k_dense"] == [1, 1, 1]
    assert protocol_hash(proto) == protocol_hash(get_protocol(name))


def test_molecule_relax_input_moves_ions_in_a_fixed_box():
    s, _ = element_structure("N")
    proto = get_protocol("fast")
    kw = dict(proto=proto, cutoffs={"ecutwfc_ry": 25.0, "ecutrho_ry": 200.0}, kgrid=[1, 1, 1], pseudo_dir="/p",
              pseudos={"N": "N.upf"})
    relax = qi.pw_input(s, calculation="relax", **kw)
    assert "calculation = 'relax'" in relax and "&ions" in relax and "&cell" not in relax
    assert "forc_conv_thr" in relax and "K_POINTS automatic\n 1 1 1 0 0 0" in relax
    vc = qi.pw_input(s, calculation="vc-relax", **kw)
    assert "&cell" in vc and "&ions" in vc
    assert "&ions" not in qi.pw_input(s, calculation="scf", **kw)


def test_label_ignores_cutoff_overrides_and_kgrid_but_not_physics():
    cand = get_protocol("sssp")
    phase = get_protocol("sssp", {"ecutwfc_ry": 50.0, "ecutrho_ry": 400.0, "kgrid": [1, 1, 1]})
    cut = {"ecutwfc_ry": 50.0, "ecutrho_ry": 400.0}
    assert protocol_hash(cand) == protocol_hash(phase)
    assert energy_label("6.7MaX", "/r/sssp_pbesol_efficiency_1.3.0", cand, cut) == \
        energy_label("6.7MaX", "/x/sssp_pbesol_efficiency_1.3.0", phase, cut) == \
        f"QE 6.7MaX / sssp_pbesol_efficiency_1.3.0 / protocol sssp [{protocol_hash(cand)}] / ecutwfc 50 Ry, " \
        "ecutrho 400 Ry / non-spin-polarised"
    smeared = get_protocol("sssp", {"degauss_ry": 0.01})
    assert protocol_hash(smeared) != protocol_hash(cand)
    assert energy_label("6.7MaX", "/r/f", cand, cut) != energy_label("7.2", "/r/f", cand, cut)
    assert energy_label("6.7MaX", "/r/f", cand, cut) != energy_label("6.7MaX", "/r/f", cand, {**cut, "ecutrho_ry": 360})
    with pytest.raises(KeyError):
        energy_label("6.7MaX", "/r/f", cand, {"ecutwfc_ry": 50.0})
