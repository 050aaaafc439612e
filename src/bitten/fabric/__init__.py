"""The InfiniBand fabric: its cross-checks, the files rendered from it (topology.conf, OpenSM, IPoIB) and the
comparison of the discovered fabric (ibnetdiscover, iblinkinfo) with the inventory (`bitten fabric check`)."""
