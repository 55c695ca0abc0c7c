"""The `energy` config section: defaults, types and ranges, and directories that must exist, each
refused in one line naming the key."""

from __future__ import annotations

import pytest

from tcflow.config import ConfigError, check_config
from workflow_helpers import REPO

SCHEMA = REPO / "config" / "schema" / "config.schema.json"


def test_defaults():
    cfg = check_config({}, SCHEMA)
    assert cfg["energy"] == {"enabled": False, "max_phases_per_system": 8, "max_phase_atoms": 12,
                             "reference_cifs": None, "element_cifs": None, "dft_3d_phases": False,
                             "dft_3d_file": None, "dft_3d_max_ehull_eV_atom": 0.05, "mlip": "chgnet"}


@pytest.mark.parametrize("energy, message", [
    ({"max_phase_atoms": 0}, "energy.max_phase_atoms: 0 is less than the minimum of 1"),
    ({"max_phases_per_system": -1}, "energy.max_phases_per_system: -1 is less than the minimum of 0"),
    ({"mlip": "mace"}, "energy.mlip: 'mace' is not one of ['chgnet', 'screen', 'none']"),
    ({"enabled": "yes"}, "energy.enabled: 'yes' is not of type 'boolean'"),
    ({"hull": True}, "unknown key energy.hull"),
    ({"dft_3d_max_ehull_eV_atom": -0.1}, "energy.dft_3d_max_ehull_eV_atom: -0.1 is less than the minimum of 0"),
])
def test_bad_values_name_the_key(energy, message):
    with pytest.raises(ConfigError) as err:
        check_config({"energy": energy}, SCHEMA)
    assert str(err.value) == f"config error: {message}"


def test_missing_directories_name_the_key(tmp_path):
    for key in ("reference_cifs", "element_cifs"):
        with pytest.raises(ConfigError, match=rf"^config error: energy.{key}: directory .*nowhere not found$"):
            check_config({"energy": {key: str(tmp_path / "nowhere")}}, SCHEMA)
    assert check_config({"energy": {"element_cifs": str(tmp_path)}}, SCHEMA)["energy"]["element_cifs"] == str(tmp_path)


def test_dft3d_file_must_exist_when_used(tmp_path):
    missing = str(tmp_path / "dft_3d.json.zip")
    with pytest.raises(ConfigError, match=rf"^config error: energy.dft_3d_file: file {missing} not found$"):
        check_config({"energy": {"dft_3d_phases": True, "dft_3d_file": missing}}, SCHEMA)
    assert check_config({"energy": {"dft_3d_phases": False, "dft_3d_file": missing}}, SCHEMA)["energy"]["dft_3d_file"] == missing
