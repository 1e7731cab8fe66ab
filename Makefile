# Two entry points for a fresh machine (see README.md):
#   make demo   set up, then run the main job on the embedded default
#   make test   set up, then lint and run the tests
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl

.PHONY: setup demo test lint clean

setup: $(VENV)/.installed

# escnn's py3nj dependency compiles Fortran; robosuite/mujoco render headless through EGL (Mesa).
$(VENV)/.installed: pyproject.toml
	@command -v gfortran >/dev/null || (apt-get install -y gfortran || (apt-get update && apt-get install -y gfortran))
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

demo: setup
	$(BIN)/equirobot rollout task=stack_d1 agent=expert episodes=10 video=true

lint: setup
	$(BIN)/ruff check equirobot envs tests
	$(BIN)/ruff format --check equirobot envs tests

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs outputs .pytest_cache
