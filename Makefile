# bitten: `make lab` builds the whole site on this machine, `make test` runs every check.
# Both install what they need on a fresh Debian machine (host packages, the venv, the base images).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export CONTAINERS_CONF := $(CURDIR)/lab/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help deps deps-vm venv images lab-images lab lab-down test lint pytest pytest-vm molecule molecule-all bench render clean

help:
	@echo "make lab       the whole site on this machine (containers, emulators, playbooks)"
	@echo "make lab-down  remove everything the lab created"
	@echo "make test      lint, type checks, pytest, the roles' Molecule scenarios and the PXE tests on virtual nodes (CI)"
	@echo "make molecule-all  every Molecule scenario, the extended ones too (scripts/molecule-all)"
	@echo "make bench     performance figures (ratios against baselines measured in the same run)"
	@echo "make render    render inventory/bitten into out/bitten"

deps:
	@scripts/host-deps

deps-vm:
	@scripts/host-deps --vm

$(BIN)/.installed: pyproject.toml | deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/.installed

# the tests' images: the base and roles images of both releases (Molecule's), and the lab's provisioning image
images: lab-images
	$(BIN)/bitten lab image --release trixie --release bookworm --roles roles

# what the lab needs and no more: its bare nodes boot the provisioning image; its containers start from the trixie
# base image, which `bitten lab up` builds when its recipe changed (the roles images are Molecule's)
lab-images: venv
	$(BIN)/bitten provision images inventory/lab --build

# deps-vm first: one apt run installs every host package the lab needs
lab: deps-vm lab-images
	$(BIN)/bitten lab up inventory/lab

lab-down: venv
	$(BIN)/bitten lab down inventory/lab

render: venv
	$(BIN)/bitten render inventory/bitten --out out/bitten

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/ansible-lint --profile production

pytest: venv
	$(BIN)/pytest -q

# the PXE path on QEMU virtual nodes (marker vm): QEMU, libvirt, OVMF and iPXE from scripts/host-deps --vm
pytest-vm: images deps-vm
	$(BIN)/pytest -q -m vm

molecule: images
	scripts/molecule-all

molecule-all: images
	scripts/molecule-all --all

test: images lint pytest molecule pytest-vm

# every bench runs (a failed one does not stop the others); the summary lists each figure with its target and
# PASS/MISS; the exit status is non-zero only when a bench failed, never for a missed target
bench: venv
	@mkdir -p out; : > out/bench.log; \
	for b in bench/*.py; do \
	  case $$b in bench/_*|bench/summary.py) continue;; esac; \
	  echo "== $$b" | tee -a out/bench.log; \
	  $(BIN)/python $$b 2>&1 | tee -a out/bench.log; rc=$${PIPESTATUS[0]}; \
	  if [ $$rc -ne 0 ]; then echo "BENCH-ERROR $$b exited $$rc" | tee -a out/bench.log; fi; \
	done; \
	$(BIN)/python bench/summary.py out/bench.log

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
