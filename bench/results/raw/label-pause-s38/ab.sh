for r in 3 4; do
for arm in old new; do
  if [ $arm = old ]; then cd /tmp/wt-old; else cd /work/main; fi
  /work/main/.venv/bin/python -m bench.run --bootstrap 127.0.0.1:9092 --redis-url redis://127.0.0.1:6379/0 --systems streamlearn_labels_1w --events 1200000 --runs 1 --warmup-rounds 0 --no-variants --no-latency --no-recovery --no-serving --out /tmp/lp/ab-$arm-$r.json --raw-dir /tmp/lp/ab-$arm-$r > /tmp/lp/ab-$arm-$r.log 2>&1
  T=$(grep -o "bench-in-unlab-[0-9a-f]*" /tmp/lp/ab-$arm-$r.log | head -1)
  /work/main/.venv/bin/python /tmp/lp/ckpt_sizes.py $T > /tmp/lp/ab-$arm-$r.ckpt
done; done
echo ALLDONE > /tmp/lp/ab.done
