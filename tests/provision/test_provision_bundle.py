"""The controller's side of the boot files: host keys made once, known_hosts kept, overlays from the model."""

from __future__ import annotations

from pathlib import Path

from bitten.capabilities import load_site, render_file
from bitten.provision.bundle import HOST_KEY, HostKey, ensure_host_key, known_hosts_line, node_files, update_known_hosts
from bitten.provision.service.cpio import unpack

from conftest import INVENTORIES


def test_host_keys_are_generated_once_and_private(tmp_path: Path) -> None:
    assert ensure_host_key(tmp_path, "vm01", check=True)
    assert not (tmp_path / "vm01").exists()
    assert ensure_host_key(tmp_path, "vm01")
    private = tmp_path / "vm01" / HOST_KEY
    assert private.stat().st_mode & 0o777 == 0o600 and (tmp_path / "vm01").stat().st_mode & 0o777 == 0o700
    first = private.read_bytes()
    assert not ensure_host_key(tmp_path, "vm01")
    assert private.read_bytes() == first


def test_known_hosts_keeps_other_lines_and_replaces_a_nodes_old_key(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text("10.77.0.10,lab-ctl ssh-ed25519 AAAActl\n10.77.0.41,lab-vm01 ssh-ed25519 AAAAold\n")
    site = load_site(INVENTORIES / "lab")
    line = known_hosts_line(site, "lab-vm01", "ssh-ed25519 AAAAnew root@lab-vm01")
    assert line == "10.77.0.41,lab-vm01,lab-vm01.lab.bitten.test ssh-ed25519 AAAAnew\n"
    assert update_known_hosts(path, {"lab-vm01": line})
    assert path.read_text() == "10.77.0.10,lab-ctl ssh-ed25519 AAAActl\n" + line
    assert not update_known_hosts(path, {"lab-vm01": line})


def test_a_nodes_overlay_is_its_identity_from_the_model() -> None:
    site = load_site(INVENTORIES / "lab")
    key = HostKey(private=b"-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----",
                  public="ssh-ed25519 AAAAkey root@lab-vm01\n")
    files = node_files(site, "lab-vm01", key, lambda path, host: render_file(site, path, host))
    assert sorted(files) == ["nodes/lab-vm01/boot.ipxe", "nodes/lab-vm01/identity.cpio"]
    mode, script = files["nodes/lab-vm01/boot.ipxe"]
    assert mode == 0o644
    assert script.decode() == render_file(site, "/srv/bitten/provision/http/nodes/lab-vm01/boot.ipxe", "lab-ctl")
    mode, cpio = files["nodes/lab-vm01/identity.cpio"]
    assert mode == 0o640
    overlay = unpack(cpio)
    assert overlay["etc/hostname"] == (0o100644, b"lab-vm01\n")
    assert overlay["etc/ssh/ssh_host_ed25519_key"][0] == 0o100600
    assert overlay["etc/ssh/ssh_host_ed25519_key"][1].endswith(b"KEY-----\n")
    assert overlay["root/.ssh"][0] == 0o40700 and overlay["root/.ssh/authorized_keys"][0] == 0o100600
    assert overlay["etc/systemd/network/10-bitten.network"][1].decode() == render_file(
        site, "/etc/systemd/network/10-bitten.network", "lab-vm01")
