#!/usr/bin/env bash
# Success rates of the equivariant policy and the two Diffusion Policy baselines at equal data (100
# scripted demos per task, state observations) and equal compute (the same number of training steps at
# the same batch size), evaluated on the same 50 unseen scenes per task. Thin over the `equirobot`
# command; every number lands in $OUT/eval/results.{md,csv} with a plot and videos.
#
#   TASKS="stack_d1 square_d2" STEPS=1500 bash scripts/compare_methods.sh
set -euo pipefail
TASKS=${TASKS:-stack_d1 square_d2 nut_assembly_d0}
METHODS=${METHODS:-equidiff diffpo_c diffpo_c_aug}
STEPS=${STEPS:-1500}
EPISODES=${EPISODES:-50}
WORKERS=${WORKERS:-2}
OUT=${OUT:-runs/compare}
runs=()
for task in $TASKS; do
  data=datasets/${task}_abs_state_100
  test -d "$data.zarr" || equirobot collect task="$task" obs=[state] n_demos=100 workers="$WORKERS" out="$data"
  for method in $METHODS; do
    run=$OUT/${task}_${method}
    equirobot train task="$task" obs=[state] policy="$method" dataset="$data.zarr" steps="$STEPS" \
      eval_episodes=0 run_dir="$run"
    runs+=("$run")
  done
done
list=$(IFS=,; echo "${runs[*]}")
equirobot eval "checkpoints=[$list]" episodes="$EPISODES" workers="$WORKERS" hydra.run.dir="$OUT/eval"
