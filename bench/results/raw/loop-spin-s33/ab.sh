#!/bin/bash
# Interleaved A/B of the run loop's poll wait: old = a worktree of the parent commit at $OLD,
# new = this checkout. Each run: bench.profile_worker (the real worker loop in-process, real
# broker and Redis from `streamlearn services up`), 150k events, 4 partitions, turns counted.
OLD=${OLD:-/tmp/old}
NEW=${NEW:-$(git rev-parse --show-toplevel)}
PY=${PY:-$NEW/.venv/bin/python}
COUNT=$NEW/bench/results/raw/loop-spin-s33/count_turns.py
for r in $(seq 1 "${ROUNDS:-4}"); do
  for arm in old new; do
    if [ $arm = old ]; then src=$OLD; else src=$NEW; fi
    echo "== round $r arm $arm load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd "$src" && PYTHONPATH=$src timeout 300 "$PY" "$COUNT" --bootstrap 127.0.0.1:9092 \
      --redis-url redis://127.0.0.1:6379/0 -n 150000 --no-profile 2>&1 | grep -E "events/s|COUNTS")
  done
done
