"""What runs on the provisioner: the boot report service, the DHCP event hook, the identity-overlay packer.

The provisioner role installs this package on the provisioner as the stand-alone package ``bitten_provision``
(command ``bitten-provision``): the project's venv is not there, so every module uses the standard library only and
imports its siblings relatively (tests/provision/test_service_package.py keeps it that way).
"""
