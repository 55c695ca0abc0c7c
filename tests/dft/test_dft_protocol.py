"""Protocols, grids, cutoffs, pseudopotential resolution and input-file regression."""

from pathlib import Path

import pytest

from tcflow.dft import inputs as qi
from tcflow.dft.protocol import ProtocolError, derive_cutoffs, derive_grids, get_protocol, smallest_factor
from tcflow.dft.pseudos import MissingPseudopotential, load_family, resolve_pseudos
from workflow_helpers import SHARED

SSSP = SHARED / "pseudo" / "sssp_pbesol_efficiency_1.3.0"
AL_REF = SHARED / "reference" / "qe_test_suite_ph_metal_al"
FROZEN = Path(__file__).parent / "fixtures" / "inputs"


def test_variants_and_overrides():
    j = get_protocol("jarvis")
    assert (j["ecutwfc_ry"], j["ecutrho_ry"], j["degauss_ry"], j["smearing"]) == (45.0, 250.0, 0.01, "mp")
    assert j["el_ph_sigma_ry"] == 0.005 and j["mustar"] == 0.1
    assert j["tc_formula"] == "mcmillan_allen_dynes"  # tc_K stays the paper's formula
    f = get_protocol("fast", {"relax": False, "kgrid": [8, 8, 8]})
    assert f["relax"] is False and f["kgrid"] == [8, 8, 8]
    with pytest.raises(ProtocolError, match="dft.overrides.ecutwfc: not a protocol key"):
        get_protocol("fast", {"ecutwfc": 30})
    with pytest.raises(ProtocolError, match="unknown protocol 'nope'"):
        get_protocol("nope")
    with pytest.raises(ProtocolError, match="kgrid"):
        get_protocol("fast", {"kgrid": [8, 8]})


def test_jarvis_grids_for_bcc_nb():
    a_prim = 2.86  # Å, bcc Nb primitive vector length
    g = derive_grids(get_protocol("jarvis"), [a_prim] * 3)
    assert g["k_dense"] == [14, 14, 14] and g["q"] == [2, 2, 2] and g["k_scf"] == [14, 14, 14]


def test_prime_kgrid_bumped_and_q_commensurate():
    g = derive_grids(get_protocol("jarvis", {"kpoint_length_A": 13.0}), [1.0, 1.0, 1.0])
    assert g["k_dense"] == [14, 14, 14]  # 13 is prime -> 14
    g = derive_grids(get_protocol("sssp", {"kgrid": [16, 16, 12]}), [3.0] * 3)
    assert g["k_scf"] == [8, 8, 6] and g["k_dense"] == [16, 16, 12] and g["q"] == [2, 2, 2]
    for k, q in zip(g["k_scf"], g["q"]):
        assert k % q == 0
    assert smallest_factor(9) == 3 and smallest_factor(1) == 1


def test_sssp_cutoffs_are_max_over_elements():
    fam = load_family(SSSP)
    c = derive_cutoffs(get_protocol("sssp"), ["Nb", "Si"], fam)
    assert c == {"ecutwfc_ry": max(fam["Nb"]["ecutwfc_ry"], fam["Si"]["ecutwfc_ry"]),
                 "ecutrho_ry": max(fam["Nb"]["ecutrho_ry"], fam["Si"]["ecutrho_ry"])}
    with pytest.raises(ProtocolError, match="no family JSON"):
        derive_cutoffs(get_protocol("sssp"), ["Al"], {})


def test_pseudopotentials_map_and_missing_element():
    assert resolve_pseudos(["Nb"], SSSP)["Nb"] == load_family(SSSP)["Nb"]["filename"]
    assert resolve_pseudos(["Al"], AL_REF, {"Al": "Al.pz-vbc.UPF"}) == {"Al": "Al.pz-vbc.UPF"}
    with pytest.raises(MissingPseudopotential, match="no pseudopotential for Au") as err:
        resolve_pseudos(["Al", "Au"], AL_REF, {"Al": "Al.pz-vbc.UPF"})
    assert err.value.element == "Au"
    with pytest.raises(MissingPseudopotential, match="Al"):
        resolve_pseudos(["Al"], AL_REF, {"Al": "missing.UPF"})


def _al():
    from pymatgen.core import Lattice, Structure

    h = 7.5 * 0.529177210903 / 2
    return Structure(Lattice([[0, h, h], [h, 0, h], [h, h, 0]]), ["Al"], [[0, 0, 0]])


def generated_inputs() -> dict[str, str]:
    s, p = _al(), get_protocol("fast", {"relax": False})
    cut = {"ecutwfc_ry": 15.0, "ecutrho_ry": 60.0}
    return {
        "scf_fit.in": qi.pw_input(s, calculation="scf", proto=p, cutoffs=cut, kgrid=[16, 16, 16],
                                  pseudo_dir="/pseudo", pseudos={"Al": "Al.pz-vbc.UPF"}, la2f=True),
        "relax.in": qi.pw_input(s, calculation="vc-relax", proto=p, cutoffs=cut, kgrid=[8, 8, 8],
                                pseudo_dir="/pseudo", pseudos={"Al": "Al.pz-vbc.UPF"}, max_seconds=100.0),
        "ph_q3.in": qi.ph_input(s, proto=p, qgrid=[4, 4, 4], start_q=3, last_q=3),
        "ph_init.in": qi.ph_input(s, proto=p, qgrid=[4, 4, 4], start_q=1, last_q=1, patterns_only=True),
        "q2r.in": qi.q2r_input(p),
        "matdyn.in": qi.matdyn_input(s, p),
        "lambda.in": qi.lambda_input([[0, 0, 0], [0.5, 0.5, 0.5]], [1, 4], emax_THz=10.0, degauss_THz=0.12,
                                     mustar=0.1),
    }


@pytest.mark.parametrize("name", sorted(generated_inputs()))
def test_generated_inputs_match_frozen(name):
    assert generated_inputs()[name] == (FROZEN / name).read_text()


if __name__ == "__main__":  # refresh the frozen inputs after an intended change
    FROZEN.mkdir(exist_ok=True)
    for n, t in generated_inputs().items():
        (FROZEN / n).write_text(t)


PROTOCOL_SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema" / "protocol.schema.json"


def test_protocol_schema_covers_every_key_with_its_default():
    """protocol.schema.json: one property per key of protocols.yaml's defaults, default equal."""
    import json

    from tcflow.dft.protocol import load_protocols

    props = json.loads(PROTOCOL_SCHEMA.read_text())["properties"]
    defaults = load_protocols()["defaults"]
    assert list(props) == list(defaults)
    for key, value in defaults.items():
        assert props[key]["default"] == value, key
        assert props[key]["description"].strip(), key


@pytest.mark.parametrize("name", ["jarvis", "sssp", "fast", "converged", "converged_dos"])
def test_every_variant_is_valid(name):
    from tcflow.dft.protocol import protocol_names

    assert protocol_names() == ["converged", "converged_dos", "fast", "jarvis", "sssp"]
    get_protocol(name)  # raises ProtocolError naming the variant's key when out of range


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ecutwfc_ry": "thirty"}, "dft.overrides.ecutwfc_ry: 'thirty' is not of type 'number', 'null'"),
        ({"ecutwfc_ry": -5}, "dft.overrides.ecutwfc_ry: -5 is less than or equal to the minimum of 0"),
        ({"mustar": 5}, "dft.overrides.mustar: 5 is greater than the maximum of 0.5"),
        ({"relax": "no"}, "dft.overrides.relax: 'no' is not of type 'boolean'"),
        ({"smearing": "cold"}, "dft.overrides.smearing: 'cold' is not one of"),
        ({"el_ph_nsigma": 2.5}, "dft.overrides.el_ph_nsigma: 2.5 is not of type 'integer'"),
        ({"qgrid": [2, 0, 2]}, "dft.overrides.qgrid: "),
        ({"tc_formula": "bcs"}, "dft.overrides.tc_formula: 'bcs' is not one of"),
    ],
)
def test_overrides_are_checked_at_parse_time(overrides, message):
    """Issue "Interrupts and bad input" 6: a wrong override failed inside a job (a string), ran
    pw.x to a QE error (-5 Ry) or was accepted (mu* = 5)."""
    with pytest.raises(ProtocolError) as err:
        get_protocol("fast", overrides)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_snakemake_stops_before_running_on_a_bad_override(tmp_path):
    """rules/dft.smk calls get_protocol at parse time: a dry run fails naming the override."""
    from workflow_helpers import run_snakemake

    proc = run_snakemake(tmp_path, {"dft": {"overrides": {"mustar": 5}}}, "-n", check=False)
    assert proc.returncode != 0
    assert "dft.overrides.mustar: 5 is greater than the maximum of 0.5" in proc.stdout + proc.stderr


def test_a_bad_variant_value_names_the_variant(monkeypatch):
    from tcflow.dft import protocol

    data = protocol.load_protocols()
    data["variants"]["fast"] = {**data["variants"]["fast"], "degauss_ry": 0}
    monkeypatch.setattr(protocol, "load_protocols", lambda: data)
    with pytest.raises(ProtocolError, match=r"^protocols.yaml: variants.fast.degauss_ry: 0 is less than or equal"):
        protocol.get_protocol("fast")


def test_converged_grids_from_a_qpoint_length():
    """converged: q from the q-point length (>= 6 for 1-2 atom cells), ph.x on 2q, la2F on 4q
    and 6q (fcc Al: q 6, k 12, dense 24 and 36, as benchmarks/dft_experiment.py measured it)."""
    p = get_protocol("converged")
    al = derive_grids(p, [2.857] * 3, n_atoms=1)
    assert al == {"k_dense": [24] * 3, "k_scf": [12] * 3, "k_relax": [8] * 3, "q": [6] * 3, "k_dense2": [36] * 3}
    big = derive_grids(p, [3.1, 3.1, 7.0], n_atoms=3)      # no floor for 3 atoms: round(12 / 7) = 2
    assert big["q"] == [4, 4, 2] and big["k_scf"] == [8, 8, 4] and big["k_dense2"] == [24, 24, 12]
    assert big["k_dense"] == [16, 16, 8]
    small = derive_grids(p, [3.1, 3.1, 7.0], n_atoms=2)    # the floor of 6
    assert small["q"] == [6, 6, 6]
    for k in ("k_dense", "k_dense2", "k_scf"):             # ph.x's interpolation: every q on the grid
        assert all(n % q == 0 for n, q in zip(big[k], big["q"]))
    assert "k_dense2" not in derive_grids(get_protocol("jarvis"), [2.857] * 3)


def test_two_grid_rule_needs_a_second_grid():
    with pytest.raises(ProtocolError, match="dft.overrides.broadening_rule: .*second dense grid"):
        get_protocol("jarvis", {"broadening_rule": "two_grids"})
    with pytest.raises(ProtocolError, match="tc_source must be matdyn"):
        get_protocol("converged", {"tc_source": "lambda_x"})
    with pytest.raises(ProtocolError, match="dft.overrides.second_dense_kgrid_factor"):
        get_protocol("converged", {"second_dense_kgrid_factor": 0.5})
    assert derive_grids(get_protocol("converged", {"second_dense_kgrid_factor": 1.01}), [2.857] * 3)["k_dense2"] == [30] * 3  # 24 -> the next multiple of q = 6
