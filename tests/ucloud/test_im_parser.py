"""The IM's parser rules (bitten.ucloud.im.parser): what the IM refuses, with where and why."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bitten.lab.doubles.ucloud_core import generate_keys
from bitten.ucloud.im.parser import ParsedIM, parse_config, parse_directory, parse_public_key, parse_server
from bitten.ucloud.im.products import products_of

CONFIG = """\
provider:
  id: lab
  hosts:
    ucloud: {address: core.example, port: 443, scheme: https}
    self: {address: 127.0.0.1, port: 8889, scheme: http}
  ipc: {directory: IPC}
  logs: {directory: LOGS}
  envoy: {directory: ENVOY, executable: EXE}
services:
  type: Slurm
  identityManagement: {type: Scripted, onUserConnected: EXE, onProjectUpdated: EXE}
  fileSystems:
    storage:
      management: {type: Scripted, onQuotaUpdated: EXE, onUsageReporting: EXE}
      payment: {type: Resource, unit: GB}
      driveLocators:
        home: {entity: User, pattern: "/home/#{localUsername}", freeQuota: 10}
  slurm:
    accountManagement:
      accounting: {type: Automatic}
      accountMapper: {type: Pattern, users: "#{localUsername}", projects: "#{localGroupName}"}
    machines:
MACHINES
"""

GPU = """\
      b200:
        payment: {type: Resource, unit: Gpu, interval: Minutely}
        partition: gpu
        qos: ucloud-b200
        cpu: [16, 32]
        memory: [275, 550]
        gpu: [1, 2]
"""


def parse(machines: str = GPU, **kw: object) -> ParsedIM:
    return parse_config(CONFIG.replace("MACHINES", machines.rstrip("\n")), "config.yml", **kw)  # type: ignore[arg-type]


def messages(parsed: ParsedIM) -> list[str]:
    return [i.message for i in parsed.issues]


def test_valid_config_gives_gpu_products_named_by_gpu_count() -> None:
    parsed = parse()
    assert parsed.ok, messages(parsed)
    names = [(p["category"]["name"], p["name"], p["price"]) for p in products_of(parsed)]
    assert names == [("b200", "b200-1", 1), ("b200", "b200-2", 2), ("storage", "storage", 1)]
    product = products_of(parsed)[1]
    assert product["category"]["accountingUnit"]["name"] == "GPU"
    assert product["category"]["accountingFrequency"] == "PERIODIC_MINUTE"
    assert (product["cpu"], product["memoryInGigs"], product["gpu"]) == (32, 550, 2)


def test_list_lengths_must_match_cpu() -> None:
    machines = GPU.replace("memory: [275, 550]", "memory: [275]").replace("gpu: [1, 2]", "gpu: [1, 2, 4]")
    parsed = parse(machines)
    found = messages(parsed)
    assert "memory must have the same length as cpu (2 != 1)" in found
    assert "gpu must have the same length as cpu (2 != 3)" in found
    issue = next(i for i in parsed.issues if i.message.startswith("memory"))
    assert issue.path == ("services", "slurm", "machines", "b200", "memory")
    assert issue.line == CONFIG.replace("MACHINES", machines).splitlines().index("        memory: [275]") + 1
    assert str(issue).startswith(f"config.yml:{issue.line}: services.slurm.machines.b200.memory: ")
    assert not parsed.machines


def test_payment_rules() -> None:
    bad_type = parse(GPU.replace("type: Resource, unit: Gpu", "type: Credits, unit: Gpu"))
    assert any("expected 'Credits' to be one of [Resource Money]" in m for m in messages(bad_type))
    bad_unit = parse(GPU.replace("unit: Gpu", "unit: GPU"))
    assert any("expected 'GPU' to be one of [Cpu Memory Gpu]" in m for m in messages(bad_unit))
    money = parse(GPU.replace("type: Resource, unit: Gpu", "type: Money"))
    assert "could not find property 'currency' but it is mandatory" in messages(money)
    money_no_price = parse(GPU.replace("type: Resource, unit: Gpu", "type: Money, currency: DKK"))
    assert "price must be specified for all machine groups when payment type is Money!" in messages(money_no_price)
    resource_price = parse(GPU + "        price: [1.5, 3.0]\n")
    assert "price must not be specified for all machine groups when payment type is Resource!" in messages(
        resource_price)
    money_ok = parse(GPU.replace("type: Resource, unit: Gpu", "type: Money, currency: DKK") +
                     "        price: [1.5, 3.0]\n")
    assert money_ok.ok, messages(money_ok)
    assert [p["price"] for p in products_of(money_ok)][:2] == [1_500_000, 3_000_000]
    assert products_of(money_ok)[0]["category"]["accountingUnit"]["name"] == "DKK"


def test_name_suffix_enum_and_v2_names_and_duplicates() -> None:
    bad = parse(GPU.replace("qos: ucloud-b200", "qos: ucloud-b200\n        nameSuffix: Gpus"))
    assert any("to be one of [Cpu Gpu Memory CpuV2 GpuV2 MemoryV2]" in m for m in messages(bad))
    v2 = parse(GPU.replace("qos: ucloud-b200", "qos: ucloud-b200\n        nameSuffix: GpuV2"))
    assert [p["name"] for p in products_of(v2)][:2] == ["b200-1-gpu", "b200-2-gpu"]
    duplicate = parse(GPU.replace("memory: [275, 550]", "memory: [4, 4]").replace(
        "qos: ucloud-b200", "qos: ucloud-b200\n        nameSuffix: Memory"))
    issue = next(i for i in duplicate.issues if "product name 'b200-4'" in i.message)
    assert not issue.im_rule  # the IM accepts it; Core would keep one product
    assert not duplicate.errors


def test_counts_must_be_positive_and_cpu_list_not_empty() -> None:
    assert "cpu count must be greater than zero" in messages(parse(GPU.replace("cpu: [16, 32]", "cpu: [0, 32]")))
    empty = parse(GPU.replace("cpu: [16, 32]", "cpu: []").replace("memory: [275, 550]", "memory: []")
                  .replace("gpu: [1, 2]", "gpu: []"))
    assert "You must specify at least one machine via cpu, memory (+ gpu/price)" in messages(empty)


def test_mandatory_sections_and_hosts() -> None:
    parsed = parse_config("provider:\n  id: x\n  hosts:\n    ucloud: {address: a, port: 0}\n", "config.yml")
    found = messages(parsed)
    assert "Port 0 is not a valid choice. Did you remember to specify a port?" in found
    assert "could not find property 'self' but it is mandatory" in found
    assert "could not find property 'services' but it is mandatory" in found


def test_freeipa_needs_secrets_and_locators_need_quota_rules() -> None:
    ipa = CONFIG.replace("{type: Scripted, onUserConnected: EXE, onProjectUpdated: EXE}", "{type: FreeIPA}")
    parsed = parse_config(ipa.replace("MACHINES", GPU.rstrip("\n")), "config.yml")
    assert any("Could not find secrets.yaml but it is required" in m for m in messages(parsed))
    with_secrets = parse_config(ipa.replace("MACHINES", GPU.rstrip("\n")), "config.yml",
                                secrets_text="freeipa: {url: https://ipa, username: admin, password: pw}\n")
    assert with_secrets.ok, messages(with_secrets)
    no_quota = parse(GPU).issues
    assert not no_quota
    project_quota = parse_config(CONFIG.replace('home: {entity: User, pattern: "/home/#{localUsername}", '
                                                'freeQuota: 10}', 'p: {entity: Project, pattern: "/w", freeQuota: 1}')
                                 .replace("MACHINES", GPU.rstrip("\n")), "config.yml")
    assert "freeQuota can only be specified for user mappings" in messages(project_quota)


def test_server_yml_rules() -> None:
    issues: list = []
    parse_server("refreshToken: t\ndatabase:\n  host: {address: db}\n  username: u\n  database: d\n", "server.yml",
                 issues)
    assert [i.message for i in issues] == ["could not find property 'password' but it is mandatory",
                                           "could not find property 'ssl' but it is mandatory"]
    issues = []
    server = parse_server("refreshToken: t\ndatabase: {host: {address: db}, username: u, password: p, database: d, "
                          "ssl: false}\n", "server.yml", issues)
    assert not issues and server.db_port == 5432


def test_public_key_rules() -> None:
    public, _ = generate_keys()
    assert parse_public_key(public + "\n") == base64.b64decode(public)
    issues: list = []
    pem = "-----BEGIN PUBLIC KEY-----\n" + public + "\n-----END PUBLIC KEY-----\n"
    assert parse_public_key(pem, issues=issues) is None
    assert "without the PEM header" in issues[0].message
    issues = []
    assert parse_public_key("bm90IGEga2V5", issues=issues) is None
    assert "not a DER public key" in issues[0].message


@pytest.mark.parametrize("broken", ["ipc", "exe"])
def test_file_checks_when_parsing_on_the_frontend(tmp_path: Path, broken: str) -> None:
    ipc, logs, envoy = (tmp_path / n for n in ("ipc", "logs", "envoy"))
    for d in (ipc, logs, envoy):
        d.mkdir()
    exe = tmp_path / "exe"
    exe.write_text("#!/bin/sh\n")
    text = (CONFIG.replace("MACHINES", GPU.rstrip("\n")).replace("IPC", str(ipc) if broken != "ipc" else "/nonexist")
            .replace("LOGS", str(logs)).replace("ENVOY", str(envoy))
            .replace("EXE", str(exe) if broken != "exe" else "/nonexistent/script"))
    (tmp_path / "config.yml").write_text(text)
    (tmp_path / "server.yml").write_text("refreshToken: t\ndatabase: {host: {address: db}, username: u, "
                                         "password: p, database: d, ssl: false}\n")
    (tmp_path / "ucloud_key.pub").write_text(generate_keys()[0])
    parsed = parse_directory(tmp_path)
    assert parsed.errors
    if broken == "ipc":
        assert any("/nonexist is not a valid directory" in i.message for i in parsed.errors)
    else:
        assert any("/nonexistent/script is not a readable file" in i.message for i in parsed.errors)
    (tmp_path / "config.yml").write_text(text.replace("/nonexistent/script", str(exe)).replace("/nonexist",
                                                                                            str(ipc)))
    assert parse_directory(tmp_path).ok
    (tmp_path / "ucloud_key.pub").unlink()
    assert any("Failed to parse/locate public key" in i.message for i in parse_directory(tmp_path).issues)
