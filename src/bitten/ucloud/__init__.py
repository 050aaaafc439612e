"""UCloud: register the cluster as a provider on UCloud/Core and configure the Integration Module on its frontend.

- ``bitten.ucloud.im``: the IM's parser rules and the products it registers (shipped inside the IM test double);
- ``bitten.ucloud.imconfig``: /etc/ucloud/{config,server,secrets}.yml from the site model;
- ``bitten.ucloud.core``: a client for UCloud/Core (provider, token refresh, products);
- ``bitten.ucloud.provider``: the provider on Core, created or adopted idempotently (Pulumi and Ansible use it);
- ``bitten.ucloud.check``: are the site's products registered on Core?
- ``bitten.lab.doubles.ucloud_core`` and ``bitten.lab.doubles.ucloud_im``: test doubles of Core and of the IM.
"""
