#!/usr/bin/env bash
# Figure 4 pieces on one GPU, every algorithm in its own process at the same time.
#
#   OUT=/tmp/f4 N=4 BUDGET=medium LIMIT=420 bash benchmarks/fig4_gpu.sh [key=value ...]
#
# One update of these small networks leaves a GPU mostly idle (the time goes to launching
# kernels and to the loops' host round trips), so four processes share one card at little
# cost to each. Each algorithm trains into its own directory, $OUT/<algo>, since pieces of one
# `reproduce fig4` directory must not be written by two processes at once; copy the finished
# <algo>/n<N>/<algo> directories into one Figure 4 directory afterwards and run
# `qtran reproduce fig4 ... algos=<the finished ones>` there, which skips finished pieces and
# draws the panels. A piece still running after LIMIT seconds is stopped; its metrics.csv
# keeps the evaluations so far. Results (no checkpoints) are packed into $OUT/fig4_n$N.tgz.
set -u
OUT=${OUT:-runs/fig4_gpu}
N=${N:-4}
BUDGET=${BUDGET:-medium}
LIMIT=${LIMIT:-420}
ALGOS=${ALGOS:-"qtran-base qtran-alt vdn qmix"}
mkdir -p "$OUT"
count=$(echo $ALGOS | wc -w)
start=$(date +%s)
for a in $ALGOS; do
  # Each process takes a share of the GPU's memory instead of JAX's default 75%.
  XLA_PYTHON_CLIENT_MEM_FRACTION=$(python3 -c "print(round(0.9 / $count, 3))") \
    timeout "$LIMIT" python3 -m qtran reproduce fig4 budget="$BUDGET" n="$N" algos="$a" out="$OUT/$a" \
    progress=false "$@" > "$OUT/$a.log" 2>&1 &
done
wait
echo "all pieces ended after $(( $(date +%s) - start )) s"
for a in $ALGOS; do
  echo "== $a: $(tail -c 600 "$OUT/$a.log" | tail -n 4)"
done
tar czf "$OUT/fig4_n$N.tgz" --exclude=checkpoints --exclude=tb -C "$OUT" $ALGOS $(cd "$OUT" && ls *.log)
ls -la "$OUT"
