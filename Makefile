# The two commands: `make demo` and `make test`. Both install what they need and are safe to re-run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .cache/stamps
APT_PACKAGES := qemu-utils
# make demo builds a bootable sample guest (a Debian kernel, busybox, syslinux and systemd-boot on a FAT
# partition: no root, no loop devices), checks its libvirt domain and boots the migrated VM under QEMU.
DEMO_APT_PACKAGES := linux-image-amd64 qemu-system-x86 ovmf mtools dosfstools fdisk syslinux syslinux-common systemd-boot-efi busybox-static libvirt-clients libxml2-utils
# Guest fixes (hyper2kvm FIX through libguestfs) are tested for real: the appliance needs a kernel.
# The session's Prefect server runs on a throwaway PostgreSQL cluster (tests/support/postgres.py).
# qemu-storage-daemon (qemu-system-common) writes a qcow2 over NBD as it downloads (--stream).
TEST_APT_PACKAGES := $(DEMO_APT_PACKAGES) qemu-system-common libguestfs-tools python3-guestfs e2fsprogs postgresql
BENCH_APT_PACKAGES := nginx-light aria2 curl time iproute2 util-linux $(DEMO_APT_PACKAGES) libguestfs-tools python3-guestfs virt-v2v nbdkit
PYTEST_ARGS ?=
# Each provider's test set-up (its Debian packages, emulators from npm, simulators built from source) lives in
# mk/<provider>.mk: it adds to TEST_APT_PACKAGES and hangs its own targets on test-deps.
-include $(sort $(wildcard mk/*.mk))

.PHONY: demo test typecheck bench bootstrap system-deps demo-deps test-deps bench-deps venv clean

$(STAMPS):
	@mkdir -p $(STAMPS)

# Debian packages, installed only where missing; `apt-get update` runs once.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  [ -f $(STAMPS)/apt-updated ] || { $$SUDO apt-get update -qq && touch $(STAMPS)/apt-updated; }; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

# Debian's python3 lacks ensurepip (so venv cannot bootstrap pip) until python3-venv is installed.
VENV_APT_PACKAGE := $(shell $(PYTHON) -c "import ensurepip" 2>/dev/null || echo python3-venv)

system-deps: | $(STAMPS)
	$(call apt_install,$(APT_PACKAGES) $(VENV_APT_PACKAGE))

demo-deps: system-deps
	$(call apt_install,$(DEMO_APT_PACKAGES))

test-deps: system-deps
	$(call apt_install,$(TEST_APT_PACKAGES))

bench-deps: system-deps
	$(call apt_install,$(BENCH_APT_PACKAGES))

$(STAMPS)/venv: pyproject.toml | $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[all,test]"
	@touch $@

venv: system-deps $(STAMPS)/venv

demo: venv demo-deps
	@rm -rf demo-output && mkdir -p demo-output
	$(PY) -m hyperexport.kvm demo-output/sample-vm.ova
	$(VENV)/bin/hyperexport --provider local --vm demo-output/sample-vm.ova --output demo-output/migrated --convert --boot-check
	@echo; echo "qcow2 disks: $$(ls demo-output/migrated/*.qcow2)"; echo "domain:      $$(ls demo-output/migrated/*.xml)"; \
	  echo "report:      demo-output/migrated/migration-report.json"

test: venv test-deps typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

# mypy over the engine, as pyproject.toml's [tool.mypy] says (the Prefect layer is not checked yet).
typecheck: venv
	$(VENV)/bin/mypy

# Work pool, tag limits, block types, zombie-run automation and deployments on PREFECT_API_URL's server.
bootstrap: venv
	$(PY) -m deployments.bootstrap

bench: venv bench-deps
	$(PY) bench/convert_bench.py
	$(PY) bench/transfer_bench.py
	$(PY) bench/e2e_bench.py

clean:
	rm -rf $(VENV) .cache demo-output
