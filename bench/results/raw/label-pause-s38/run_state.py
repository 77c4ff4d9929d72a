"""What a bench run left in Redis: `python run_state.py TOPIC` (shared services at their default addresses).

Per partition: the prequential metric of the predictions the stream made (label mode: each prediction as
made at its event, scored when its label joined), the last and the previous checkpoint's size in bytes.
"""

from __future__ import annotations

import sys

import redis


def main() -> None:
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    topic = sys.argv[1]
    for p in range(4):
        row: dict[str, object] = {}
        for key in r.scan_iter(match=f"*:{topic}:{p}:*".encode(), count=1000):
            name = key.decode().rsplit(":", 2)
            if key.endswith(b":status"):
                row["metric"] = (r.hget(key, "metric_name") or b"").decode() + " " + (r.hget(key, "metric_value") or b"").decode()
            elif key.endswith(b":ckpt") or key.endswith(b":ckpt:prev"):
                row["prev" if name[-1] == "prev" else "ckpt"] = int(r.hget(key, "size") or 0)
        print(p, row)


if __name__ == "__main__":
    main()
