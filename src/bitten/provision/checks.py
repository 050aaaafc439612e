"""Cross-checks of ``bitten_provision``: what each value gets right alone but the site gets wrong as a whole."""

from __future__ import annotations

from collections.abc import Iterator

from bitten.provision.nodes import provision_profile, provisioners
from bitten.site import model as m
from bitten.site.locate import Declared, Locator
from bitten.site.problems import Problem

VAR = "bitten_provision"


def check_provision(site: m.Site, locator: Locator, declared: Declared) -> Iterator[Problem]:
    serving = provisioners(site)
    provision = site.provision
    if provision is None:
        if serving:
            yield Problem(file=locator.find(serving[0], "bitten_ip"), host=serving[0],
                          field=f"group {m.GROUP_PROVISIONERS}",
                          message="a provisioner, but the site sets no bitten_provision",
                          fix="describe the provisioning network and images in bitten_provision (group_vars/all)")
        return
    where = locator.find(None, VAR)
    if len(serving) != 1:
        found = ", ".join(serving) or "none"
        yield Problem(file=where, field=f"group {m.GROUP_PROVISIONERS}",
                      message=f"bitten_provision needs exactly one provisioner on its network (found {found})",
                      fix=f"put the service node that serves DHCP/TFTP/HTTP in group {m.GROUP_PROVISIONERS}")
    subnet = provision.network.subnet
    for host in serving:
        # an address that did not validate (None) is reported as such already: no follow-on
        if site.nodes[host].ip is not None and site.nodes[host].ip not in subnet:
            yield Problem(file=locator.find(host, "bitten_ip"), host=host, field="bitten_ip",
                          message=f"the provisioner's address {site.nodes[host].ip} is outside the provisioning "
                                  f"network {subnet}",
                          fix="give the provisioner its address on the provisioning network, or correct "
                              "bitten_provision.network.subnet")
    images = declared.get("provision_images", set())
    known = ", ".join(sorted(images)) or "none defined"
    for name, profile in provision.profiles.items():
        if name not in declared["profiles"]:
            yield Problem(file=locator.find(None, VAR, ["profiles", name]), field=f"{VAR}.profiles.{name}",
                          message=f"unknown hardware profile {name!r}",
                          fix=f"use one of: {', '.join(sorted(declared['profiles']))}")
        if profile.image not in images:
            yield Problem(file=locator.find(None, VAR, ["profiles", name, "image"]),
                          field=f"{VAR}.profiles.{name}.image", message=f"unknown image {profile.image!r}",
                          fix=f"use one of: {known}, or define it under {VAR}.images")
        hardware = site.hardware_profiles.get(name)
        if hardware is not None and hardware.boot.target != "Pxe":
            yield Problem(file=locator.find(None, "bitten_hardware_profiles", [name, "boot", "target"]),
                          field=f"bitten_hardware_profiles.{name}.boot.target",
                          message=f"profile {name} is provisioned over PXE but its BMC boots {hardware.boot.target}",
                          fix="set boot.target: Pxe (the one-time boot that starts the provisioning)")
    for host, node in sorted(site.nodes.items()):
        if provision_profile(site, host) is None or host in serving:
            continue
        if node.boot_mac is None:
            yield Problem(file=locator.find(host, "bitten_ip"), host=host, field="bitten_boot_mac",
                          message="a provisioned node without a boot MAC: DHCP could not give it its address",
                          fix="set bitten_boot_mac to the MAC of the port it PXE-boots from")
        if node.ip is not None and node.ip not in subnet:
            yield Problem(file=locator.find(host, "bitten_ip"), host=host, field="bitten_ip",
                          message=f"{node.ip} is outside the provisioning network {subnet}: the DHCP reservation "
                                  "would hand out an address the node cannot use",
                          fix=f"give the node an address in {subnet}")
        if node.bmc is None:
            yield Problem(file=locator.find(host, "bitten_ip"), host=host, field="bitten_bmc",
                          message="a provisioned node without a BMC: nothing could power it on or report its state",
                          fix="set bitten_bmc (the iLO's address)")
