"""The site model from a play's variables when ansible-core hands them over as lazy containers."""

from __future__ import annotations

import pytest

from bitten.site.model import Account
from bitten.site.play import _resolved
from bitten.site.problems import origin_of

lazy = pytest.importorskip("ansible._internal._templating._lazy_containers")
engine = pytest.importorskip("ansible._internal._templating._engine")
utils = pytest.importorskip("ansible._internal._templating._utils")
tags = pytest.importorskip("ansible._internal._datatag._tags")


def test_lazy_lists_become_plain_values_pydantic_can_read() -> None:
    from ansible.parsing.dataloader import DataLoader

    templar = engine.TemplateEngine(loader=DataLoader(), variables={})
    with utils.TemplateContext(template_value="", templar=templar, options=engine.TemplateOptions.DEFAULT):
        value = lazy.lazify_container({"name": "research", "qos": ["normal", "gpu"], "users": ["alice"]})
        # what a play's hostvars can hold: read directly, the list has unresolved wrappers
        with pytest.raises(ValueError, match="valid string"):
            Account.model_validate(value)
        account = Account.model_validate(_resolved(value))
    assert account.qos == ("normal", "gpu") and account.users == ("alice",)


def test_resolved_keeps_where_values_came_from() -> None:
    origin = tags.Origin(path="/inv/group_vars/all/slurm.yml", line_num=7)
    value = origin.tag({"qos": tags.Origin(path="/inv/group_vars/all/slurm.yml", line_num=9).tag(["normal"])})
    plain = _resolved(value)
    assert origin_of(plain) == "/inv/group_vars/all/slurm.yml:7"
    assert origin_of(plain["qos"]) == "/inv/group_vars/all/slurm.yml:9"
