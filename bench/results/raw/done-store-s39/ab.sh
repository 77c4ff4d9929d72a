for arm in old new; do
  if [ $arm = old ]; then cd /tmp/wt-new; else cd /work/main; fi
  /work/main/.venv/bin/python -m bench.run --bootstrap 127.0.0.1:9092 --redis-url redis://127.0.0.1:6379/0 --systems streamlearn_labels_1w --events 1200000 --runs 1 --warmup-rounds 0 --no-variants --no-latency --no-recovery --no-serving --out /tmp/ds/ab-$arm.json --raw-dir /tmp/ds/ab-$arm > /tmp/ds/ab-$arm.log 2>&1
  T=$(grep -o "bench-in-unlab-[0-9a-f]*" /tmp/ds/ab-$arm.log | head -1)
  /work/main/.venv/bin/python /work/main/bench/results/raw/label-pause-s38/run_state.py $T > /tmp/ds/ab-$arm.state
done
echo ALLDONE > /tmp/ds/ab.done
