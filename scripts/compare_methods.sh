#!/usr/bin/env bash
# Success rates of the equivariant policy and the two Diffusion Policy baselines at equal data (100
# scripted demos per task, state observations) and equal compute (the same number of training steps at
# the same batch size), evaluated on the same 50 unseen scenes per task. Thin over the `equirobot`
# command: trainings run LANES at a time (one torch thread each), then one `equirobot eval` writes
# every number to $OUT/eval_<tasks>/results.{md,csv} with a plot and videos.
#
#   TASKS="stack_d1 square_d2" STEPS=2000 bash scripts/compare_methods.sh
set -euo pipefail
TASKS=${TASKS:-stack_d1 square_d2 nut_assembly_d0}
METHODS=${METHODS:-equidiff diffpo_c diffpo_c_aug}
STEPS=${STEPS:-2000}
EPISODES=${EPISODES:-50}
LANES=${LANES:-2}
OUT=${OUT:-runs/compare}
for task in $TASKS; do
  data=datasets/${task}_abs_state_100
  test -d "$data.zarr" || equirobot collect task="$task" obs=[state] n_demos=100 workers="$LANES" out="$data"
done
runs=()
for task in $TASKS; do for method in $METHODS; do runs+=("$task $method"); done; done
printf '%s\n' "${runs[@]}" | xargs -P "$LANES" -L 1 sh -c '
  equirobot train task="$0" obs=[state] policy="$1" dataset=datasets/$0_abs_state_100.zarr steps='"$STEPS"' \
    eval_episodes=0 threads=1 run_dir='"$OUT"'/$0_$1 > '"$OUT"'/$0_$1.log 2>&1'
list=$(printf "$OUT/%s," $(printf '%s\n' "${runs[@]}" | tr ' ' '_')); list=${list%,}
equirobot eval "checkpoints=[$list]" episodes="$EPISODES" workers="$LANES" hydra.run.dir="$OUT/eval_${TASKS// /_}"
