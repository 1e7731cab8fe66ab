# Two entry points for a fresh machine (see README.md):
#   make demo   set up, then run the main job on the embedded default
#   make test   set up, then lint and run the tests
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl

.PHONY: setup demo test test-slow lint clean

setup: $(VENV)/.installed

# escnn's py3nj dependency compiles Fortran; robosuite/mujoco render headless through EGL (Mesa).
# `equirobot deploy transport=ros1` and its tests use ROS 1 from Debian (roscore, rostopic, rospy); the
# venv reaches rospy through a .pth file that appends Debian's dist-packages (venv packages come first).
ROS_DEBS := ros-core python3-rospy python3-geometry-msgs python3-sensor-msgs python3-std-msgs
SITE := $(VENV)/lib/python3.11/site-packages
$(VENV)/.installed: pyproject.toml setup.py
	@command -v gfortran >/dev/null || (apt-get install -y gfortran || (apt-get update && apt-get install -y gfortran))
	@dpkg -s $(ROS_DEBS) >/dev/null 2>&1 || (apt-get install -y $(ROS_DEBS) || (apt-get update && apt-get install -y $(ROS_DEBS)))
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	echo /usr/lib/python3/dist-packages > $(SITE)/debian_ros.pth
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

# The main job on 2 CPU cores (~15 min): 100 expert demos of Stack D1 (state observations), a CPU-sized
# equivariant diffusion policy trained on them, then 50 evaluation episodes with a plot and videos.
# Running it again reuses the dataset and the finished run (an interrupted one resumes).
DEMO_DATA := datasets/demo_stack_d1
DEMO_RUN := runs/demo_stack_d1
demo: setup
	@test -d $(DEMO_DATA).zarr || $(BIN)/equirobot collect task=stack_d1 obs=[state] n_demos=100 workers=2 out=$(DEMO_DATA)
	$(BIN)/equirobot train task=stack_d1 obs=[state] dataset=$(DEMO_DATA).zarr steps=2000 eval_episodes=0 run_dir=$(DEMO_RUN)
	$(BIN)/equirobot eval checkpoint=$(DEMO_RUN) episodes=50 workers=2 hydra.run.dir=$(DEMO_RUN)/eval

# Style, the import layering (pyproject's [tool.importlinter] contracts) and types (mypy).
lint: setup
	$(BIN)/ruff check equirobot envs tests scripts
	$(BIN)/ruff format --check equirobot envs tests scripts
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/hadolint docker/*.Dockerfile

# Two pytest workers (one torch thread each), a test file per worker: the module-scoped fixtures
# (trained runs, collected datasets) are built once.
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The checks marked slow (the new tasks' delta-control experts, the C8 bc evaluation, eval's refusal of
# mismatched checkpoints across the suite).
test-slow: setup
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs outputs .pytest_cache
