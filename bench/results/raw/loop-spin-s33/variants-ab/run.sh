#!/bin/bash
# commit_interval_ms 1000 / 10 variants (and eos_1w at 100), old (f6a930b worktree) vs new (dc4cda0), alternating
for r in 1 2; do
  if [ $r = 1 ]; then order="old new"; else order="new old"; fi
  for arm in $order; do
    if [ $arm = old ]; then src=/tmp/old; else src=/work/main; fi
    echo "== round $r arm $arm $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd $src && PYTHONPATH=$src /work/main/.venv/bin/python -m bench.run --systems streamlearn_eos_1w --runs 1 --no-latency --no-recovery --no-serving --ckpt-rounds 0 --ckpt-side-rounds 0 --events 120000 --out /tmp/ci1000/$arm-$r/summary.json --raw-dir /tmp/ci1000/$arm-$r/raw 2>&1 | grep -E "run 0:|provenance|error|Error" | cut -c1-200)
  done
done
