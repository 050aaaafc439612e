"""The OS baseline every host of the site shares: /etc/hosts from the inventory, the site's time zone."""
