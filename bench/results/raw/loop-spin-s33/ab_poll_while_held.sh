#!/bin/bash
# Interleaved A/B: base = $BASE (1e5f724, the spin fix) and pwh = $PWH (the same + the
# poll-while-held patch, ../commit-defer-s30/poll-while-held/poll-while-held.patch), each a checkout;
# bench.profile_worker in-process on `streamlearn services up`, 150k events, loop time accounted.
BASE=${BASE:?checkout of 1e5f724}
PWH=${PWH:?checkout of 1e5f724 with the patch applied}
PY=${PY:-$BASE/.venv/bin/python}
IDLE=$(dirname "$(readlink -f "$0")")/loop_idle.py
for r in $(seq 1 "${ROUNDS:-4}"); do
  for arm in base pwh; do
    if [ $arm = base ]; then src=$BASE; else src=$PWH; fi
    echo "== round $r arm $arm load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd "$src" && PYTHONPATH=$src timeout 300 "$PY" "$IDLE" --bootstrap 127.0.0.1:9092 \
      --redis-url redis://127.0.0.1:6379/0 -n 150000 --no-profile 2>&1 | grep -E "events/s|IDLE")
  done
done
