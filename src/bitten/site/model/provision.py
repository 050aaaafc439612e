"""The provisioning section (``bitten_provision``): the network nodes PXE-boot on, the OS images bitten builds from
a recipe, and per hardware profile the image its nodes boot and how (stateless or to disk). bitten.provision builds
the provisioner's DHCP/TFTP/HTTP configuration, the per-node boot scripts and identity overlays from these."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from bitten.site.model.types import Name, Section, Strict, keys

SshPublicKey = Annotated[str, StringConstraints(
    pattern=r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
            r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$")]
DebPackage = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9+.-]+$")]
KernelModule = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")]
DevicePath = Annotated[str, StringConstraints(pattern=r"^/dev/[A-Za-z0-9/_.-]+$")]


class ProvisionNetwork(Strict):
    """The network nodes PXE-boot on; the provisioner answers DHCP, TFTP and HTTP there and nowhere else."""

    subnet: ipaddress.IPv4Network
    #: default route DHCP hands out and the nodes' network config sets; None: no default route
    gateway: ipaddress.IPv4Address | None = None
    dns_servers: tuple[ipaddress.IPv4Address, ...] = ()
    #: the provisioner's interface on this network (dnsmasq binds to it only)
    interface: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,15}$")] = "eth0"
    #: IPv6 prefix the provisioner announces router advertisements for: iPXE waits ~13 s for one before it
    #: loads its script when no router answers. None: no advertisements
    ipv6_ra_prefix: ipaddress.IPv6Network | None = None
    #: VLAN of the network (the nodes' boot ports are untagged members; documentation and switch config)
    vlan: int | None = Field(default=None, ge=1, le=4094)
    mtu: int = Field(default=1500, ge=576, le=9216)

    @model_validator(mode="after")
    def _gateway_inside(self) -> ProvisionNetwork:
        if self.gateway is not None and self.gateway not in self.subnet:
            raise ValueError(f"gateway {self.gateway} is outside the provisioning subnet {self.subnet}")
        return self


class ImageRecipe(Strict):
    """An OS image bitten builds (debootstrap); a hash of the recipe and of the builder names each build."""

    release: Literal["trixie", "bookworm"] = "trixie"
    #: packages on top of the base set (systemd, openssh-server, python3, the kernel, ...)
    packages: tuple[DebPackage, ...] = ()
    #: kernel modules the image keeps, with their dependencies; the others are left out to keep the image small.
    #: Empty keeps every module of the kernel package
    kernel_modules: tuple[KernelModule, ...] = ()
    description: str = ""


class ProvisionProfile(Strict):
    """How the nodes of one hardware profile get their operating system."""

    #: name of an image under bitten_provision.images
    image: Name
    #: stateless: the image is the root file system in RAM (default); disk: the image is written to ``disk``
    #: from the ramdisk, the BMC's boot target switches to Hdd and the node reboots into it
    deploy: Literal["stateless", "disk"] = "stateless"
    #: the disk a disk deploy writes (all of it), e.g. /dev/nvme0n1
    disk: DevicePath | None = None
    #: kernel console for boot messages (the BMC's serial console); None: none
    console: str | None = "ttyS0,115200"
    #: extra kernel command-line arguments
    kernel_args: tuple[Annotated[str, StringConstraints(pattern=r"^[^\s'\"]+$")], ...] = ()

    @model_validator(mode="after")
    def _disk_with_disk_deploy(self) -> ProvisionProfile:
        if self.deploy == "disk" and self.disk is None:
            raise ValueError("deploy disk needs disk, the device the image is written to (e.g. /dev/nvme0n1)")
        if self.deploy == "stateless" and self.disk is not None:
            raise ValueError("disk is used only with deploy disk")
        return self


class Provision(Strict):
    network: ProvisionNetwork
    images: dict[Name, ImageRecipe] = Field(min_length=1)
    #: per hardware profile: its image and deploy mode; nodes of profiles not listed are not provisioned by bitten
    profiles: dict[str, ProvisionProfile] = Field(min_length=1)
    #: public keys that may log in as root on a freshly provisioned node (Ansible connects with one of them)
    admin_keys: tuple[SshPublicKey, ...] = ()
    #: the provisioner's HTTP port (iPXE scripts, kernels, images, identity overlays, boot reports)
    http_port: int = Field(default=80, ge=1, le=65535)
    #: how long the boot stage waits for a powered-on node to report "up"
    boot_timeout_s: int = Field(default=900, ge=30)


SECTIONS = (
    Section("bitten_provision", "provision", Provision,
            "provisioning network, OS images and deploy mode per hardware profile, admin keys",
            declares={"provision_images": keys("images")}),
)
