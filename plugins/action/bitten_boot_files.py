"""Ansible front end of bitten.provision.bundle: every provisioned node's host key, known_hosts line, boot script and
identity overlay, made on the controller into one bundle file.

Runs on the controller (it imports bitten and reads the host keys there; nothing is sent anywhere): generates a
node's SSH host key once (0600), records each node's key in the known_hosts file, and writes the bundle when its
content differs. The role then copies the bundle to the provisioner and installs it (bitten-provision
install-bundle). In check mode nothing is generated or written; the result says what would change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("host_keys_dir", "known_hosts", "dest"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        from bitten.capabilities import render_file, site_from_play
        from bitten.provision.bundle import (
            HOST_KEY,
            bundle,
            ensure_host_key,
            known_hosts_line,
            node_files,
            update_known_hosts,
        )
        from bitten.provision.nodes import boot_nodes
        from bitten.site import SiteError

        result = super().run(tmp, task_vars)
        args = self._task.args
        keys_dir = Path(str(args.get("host_keys_dir") or ""))
        dest = Path(str(args.get("dest") or ""))
        known_hosts = Path(str(args["known_hosts"])) if args.get("known_hosts") else None
        if not str(keys_dir) or not str(dest) or not keys_dir.is_absolute() or not dest.is_absolute():
            raise AnsibleActionFail("host_keys_dir and dest must be absolute paths on the controller")
        check = bool(self._play_context.check_mode)
        try:
            site = site_from_play(task_vars or {})
        except SiteError as exc:
            raise AnsibleActionFail(f"the site description is invalid; nothing was written:\n{exc}") from None
        nodes = sorted(boot_nodes(site))
        generated = [node for node in nodes if ensure_host_key(keys_dir, node, check=check)]
        files: dict[str, tuple[int, bytes]] = {}
        lines: dict[str, str] = {}
        for node in nodes:
            key = self._host_key(keys_dir / node / HOST_KEY, node, check and node in generated)
            if key is None:
                continue
            lines[node] = known_hosts_line(site, node, key.public)
            files.update(node_files(site, node, key, lambda path, host: render_file(site, path, host)))
        known_changed = update_known_hosts(known_hosts, lines, check=check) if known_hosts else False
        data = bundle(files)
        bundle_changed = not dest.exists() or dest.read_bytes() != data
        if bundle_changed and not check:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp_file = dest.with_name(f".{dest.name}.tmp")
            tmp_file.write_bytes(data)
            tmp_file.chmod(0o600)
            tmp_file.replace(dest)
        result.update(changed=bool(generated) or known_changed or bundle_changed, generated=generated,
                      known_hosts_changed=known_changed, bundle=str(dest), nodes=nodes)
        return result

    def _host_key(self, private: Path, node: str, pending: bool) -> Any:
        """The node's key pair; a vault-encrypted private key is decrypted in memory (Ansible's loader)."""
        from bitten.provision.bundle import HostKey

        if pending:
            return None  # check mode: the key would be generated now
        loader = self._loader
        try:
            real = loader.get_real_file(str(private), decrypt=True)
            try:
                content = Path(real).read_bytes()
            finally:
                loader.cleanup_tmp_file(real)
            public = Path(f"{private}.pub").read_text()
        except (OSError, AnsibleError) as exc:
            raise AnsibleActionFail(f"{node}: cannot read its SSH host key {private}: {exc}") from None
        return HostKey(private=content, public=public)
