"""What the UCloud Integration Module does with its /etc/ucloud files: parse them (with its rules) and derive the
products it registers on UCloud/Core.

This package depends on the standard library and PyYAML only (cryptography is optional), because it is also
shipped inside the IM test double that runs on Debian hosts without bitten installed.
"""
