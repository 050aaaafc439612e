"""Provisioning: the nodes' operating system over PXE, from the site model.

The provisioner (group ``provisioners``) answers DHCP with one reservation per node (its ``bitten_boot_mac`` and
``bitten_ip``; unknown MACs get no lease), serves iPXE, per-node boot scripts, the images bitten builds and each
node's identity overlay over HTTP, and records what every node reports when it is up. Stateless nodes run the
image as their root file system in RAM; disk nodes boot it once as a ramdisk that writes the image to their disk.

- :mod:`bitten.provision.nodes`: which nodes are provisioned, with what (``BootNode``), and the provisioner's URLs
- :mod:`bitten.provision.recipe`: image recipes and their hash; :mod:`bitten.provision.image` builds them
- :mod:`bitten.provision.checks`: the cross-checks of ``bitten_provision``
- :mod:`bitten.provision.boot`: the boot stage on the controller (wait for reports, disk deploys, BMC views)
- :mod:`bitten.provision.service`: what runs on the provisioner (standard library only)
"""
