#!/bin/bash
# Interleaved A/B of two checkouts: bench.profile_worker (the real worker loop in-process, no Ray) on the
# real broker and Redis of `streamlearn services up`, 150k events over 4 partitions, exactly-once.
#   OLD, NEW: the two checkouts (each run with its own code on PYTHONPATH); NAMES: the arms' labels;
#   MEASURE: count_turns.py (the loop's turns; ab-inprocess*.txt: OLD = the parent of 1e5f724, NEW = 1e5f724)
#            or loop_idle.py (the loop's time; ab-poll-while-held.txt: NAMES="base pwh", OLD = 1e5f724,
#            NEW = 1e5f724 + ../commit-defer-s30/poll-while-held/poll-while-held.patch).
HERE=$(dirname "$(readlink -f "$0")")
OLD=${OLD:?checkout A}
NEW=${NEW:?checkout B}
read -r A B <<< "${NAMES:-old new}"
PY=${PY:-$NEW/.venv/bin/python}
MEASURE=$HERE/${MEASURE:-count_turns.py}
for r in $(seq 1 "${ROUNDS:-4}"); do
  for arm in "$A" "$B"; do
    if [ "$arm" = "$A" ]; then src=$OLD; else src=$NEW; fi
    echo "== round $r arm $arm load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd "$src" && PYTHONPATH=$src timeout 300 "$PY" "$MEASURE" --bootstrap 127.0.0.1:9092 \
      --redis-url redis://127.0.0.1:6379/0 -n 150000 --no-profile 2>&1 | grep -E "events/s|COUNTS|IDLE")
  done
done
