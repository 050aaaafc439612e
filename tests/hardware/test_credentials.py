"""Where BMC credentials come from: the environment or an owner-only file; never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitten.core.redfish.errors import CredentialsError
from bitten.hardware.credentials import CredentialStore


def test_environment_pair() -> None:
    store = CredentialStore.from_env({"BITTEN_BMC_USERNAME": "admin", "BITTEN_BMC_PASSWORD": "s3cret"})
    creds = store.for_host("gpu01")
    assert (creds.username, creds.password) == ("admin", "s3cret")
    assert "s3cret" not in repr(creds) and "s3cret" not in repr(store)


def test_half_a_pair_is_an_error() -> None:
    with pytest.raises(CredentialsError, match="BITTEN_BMC_PASSWORD is not set"):
        CredentialStore.from_env({"BITTEN_BMC_USERNAME": "admin"})


def test_missing_credentials_name_the_host_and_the_fix() -> None:
    with pytest.raises(CredentialsError, match=r"no BMC credentials for host gpu01.*BITTEN_BMC_USERNAME"):
        CredentialStore.from_env({}).for_host("gpu01")


def test_file_with_per_host_entries(tmp_path: Path) -> None:
    path = tmp_path / "bmc.yml"
    path.write_text("username: admin\npassword: default-pw\nhosts:\n  gpu02: {username: root, password: other}\n")
    path.chmod(0o600)
    store = CredentialStore.from_env({"BITTEN_BMC_CREDENTIALS": str(path)})
    assert store.for_host("gpu01").password == "default-pw"
    assert store.for_host("gpu02").username == "root"


def test_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bmc.yml"
    path.write_text("username: admin\npassword: pw\n")
    path.chmod(0o644)
    with pytest.raises(CredentialsError, match=r"accessible to others.*chmod 600"):
        CredentialStore.from_file(path)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bmc.yml"
    path.write_text("username: admin\npasword: typo\n")
    path.chmod(0o600)
    with pytest.raises(CredentialsError, match=f"{path}: needs both username and password"):
        CredentialStore.from_file(path)
    with pytest.raises(CredentialsError, match="cannot read"):
        CredentialStore.from_file(tmp_path / "missing.yml")
