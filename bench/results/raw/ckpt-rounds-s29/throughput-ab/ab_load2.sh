cd /work/main
OUT=/work/notes/s29/ab
mkdir -p $OUT
for r in 3 4 5; do
  for v in new old; do
    if [ $v = old ]; then PP=/work/wt-s29-old; else PP=/work/main; fi
    (cd $PP && PYTHONPATH=$PP /work/main/.venv/bin/python -m bench.run --systems io_baseline,streamlearn_eos_1w --runs 1 --events 120000 \
      --no-latency --no-variants --no-serving --no-recovery --ckpt-rounds 0 --bootstrap 127.0.0.1:9092 --redis-url redis://127.0.0.1:6379/0 \
      --out $OUT/load-$v-$r-summary.json --raw-dir $OUT/load-$v-$r --note "rounds A/B round $r: $v" 2>&1 | grep -E "run 0:|error|Error" | sed "s/^/$v $r /")
  done
done
echo AB_LOAD_DONE
