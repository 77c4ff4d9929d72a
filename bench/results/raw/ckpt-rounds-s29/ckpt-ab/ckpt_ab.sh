OUT=/work/notes/s29/ckpt
for v in new old; do
  if [ $v = old ]; then PP=/work/wt-s29-old; else PP=/work/main; fi
  (cd $PP && PYTHONPATH=$PP /work/main/.venv/bin/python -m bench.run --ckpt-only --ckpt-rounds 4 --ckpt-side-rounds 0 \
     --bootstrap 127.0.0.1:9092 --redis-url redis://127.0.0.1:6379/0 \
     --out $OUT/ckpt-$v-summary.json --raw-dir $OUT/ckpt-$v --note "checkpoint rounds A/B: $v" 2>&1 | grep -E "ckpt_|rror" | sed "s/^/$v /")
done
echo CKPT_AB_DONE
