# The README's two commands: `make demo` (the main job) and `make test` (the whole suite).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install test test-vm test-systemd test-lab dist demo demo-down demo-docker demo-docker-down \
	lint typecheck format bench bench-fabric bench-vni

install:
	@bash scripts/install.sh

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict evpnd/core/ evpnd/api/
	rm -rf .test-results && mkdir -p .test-results
	$(PY) -m pytest -q -p no:cacheprovider --junitxml=.test-results/host.xml
	EVPND_TEST_RESULTS=.test-results bash scripts/vm-tier.sh
	EVPND_TEST_RESULTS=.test-results bash scripts/systemd-tier.sh
	$(PY) scripts/test_summary.py .test-results

# The full-kernel tier alone (VRF, geneve, gretap in a QEMU VM; README "Full-kernel test tier").
test-vm: install
	bash scripts/vm-tier.sh

# systemd as PID 1 (a Debian 12 root booted with systemd-nspawn; README "systemd tier"): the
# wheel installed as the README says, then start/reload/kill -9/watchdog/journal under systemd.
test-systemd: install
	bash scripts/systemd-tier.sh

# The sdist and the wheel, in dist/ (README "Installing on a server").
dist: install
	rm -rf dist
	$(PY) -m build --outdir dist .

demo: install
	$(PY) -m evpnd.lab demo

demo-down: install
	$(PY) -m evpnd.lab down

# The same demo with real containers: Debian's docker.io and the project's own dockerd
# (scripts/docker.sh installs and starts it, builds the node images on the first run).
demo-docker: install
	$(PY) -m evpnd.lab demo --runtime docker

# Removes the container demo (its containers, namespaces, the images it built), then stops the
# project's dockerd unless other containers still run on it.
demo-docker-down: install
	$(PY) -m evpnd.lab down evpn-l2-docker
	bash scripts/docker.sh stop

# The lab tests alone: both topologies, the docker runtime, the 18-leaf fabric (shortened).
test-lab: install
	$(PY) -m pytest -q -p no:cacheprovider tests/netns/test_lab_l2.py tests/netns/test_lab_l3.py \
		tests/netns/test_lab_cli.py tests/netns/test_lab_docker.py tests/netns/test_lab_fabric.py

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# mypy --strict on the pure core and the control API (settings in pyproject.toml [tool.mypy]).
typecheck: install
	$(VENV)/bin/mypy --strict evpnd/core/ evpnd/api/

format: install
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: install
	$(PY) benchmarks/core.py

# Start, restart, full pass, RSS and `show vni` against 10..4,000 VNIs (README "Many VNIs").
bench-vni: install
	$(PY) benchmarks/vni_scale.py

# The 18-leaf fabric at full size (1,000 MACs per leaf); about 2 minutes (README, lab section).
bench-fabric: install
	$(PY) benchmarks/fabric.py

# The overlay benchmark's full-kernel part (GENEVE, gretap, GRE next to VXLAN and native, in the
# VM under TCG: slow, ratios only) into docs/bench/overlay-vm.{md,json,png}.
.PHONY: bench-overlay-vm
bench-overlay-vm: install
	VM_RWDIR=$(CURDIR)/docs/bench VM_TIMEOUT=3600 \
	  PYTEST_ARGS="-s -o python_files=bench_*.py" \
	  bash scripts/vm-tier.sh

# The chaos suite (README "Chaos suite"): faults injected into a running evpnd, a table of
# entries lost/stale and recovery times; root, under 15 minutes; not part of `make test`
# (its --quick mode is: tests/netns/test_chaos.py).
.PHONY: chaos
chaos: install
	$(PY) -m chaos
