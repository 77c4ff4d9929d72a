#!/bin/bash
# Latency at 10k ev/s, streamlearn_eos_1w, old (147fb9e, /tmp/old) vs new (/work/main), alternating.
for r in 1 2 3; do
  for arm in old new; do
    if [ $arm = old ]; then src=/tmp/old; else src=/work/main; fi
    echo "== round $r arm $arm load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd $src && PYTHONPATH=$src timeout 900 /work/main/.venv/bin/python -m bench.run --systems streamlearn_eos_1w --runs 0 --warmup-rounds 0 \
      --no-variants --no-serving --no-recovery --rates 10000 --latency-runs 2 --bootstrap 127.0.0.1:9092 --redis-url redis://127.0.0.1:6379/0 \
      --out /tmp/s35/lat/$arm-$r/summary.json --raw-dir /tmp/s35/lat/$arm-$r/raw 2>&1 | grep -E "@ 10000")
  done
done
