for r in 1 2 3 4 5; do
for arm in old new; do
  cd /tmp/wt-$arm
  /work/main/.venv/bin/python -m bench.run --bootstrap 127.0.0.1:9092 --redis-url redis://127.0.0.1:6379/0 --systems streamlearn_labels_1w --events 240000 --runs 1 --warmup-rounds 0 --no-variants --no-latency --no-recovery --no-serving --out /tmp/gw/ab-$arm-$r.json --raw-dir /tmp/gw/ab-$arm-$r > /tmp/gw/ab-$arm-$r.log 2>&1
done; done
echo ALLDONE > /tmp/gw/ab.done
