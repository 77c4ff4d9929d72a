import sys, time, runpy
from streamlearn.state import forked
orig = forked.ForkedCheckpointer.start
T0=time.monotonic()
def start(self, snaps):
    print(f"FORK t={time.monotonic()-T0:.3f} parts={[s.partition_id for s in snaps]} inflight={sorted(self.in_flight)}", file=sys.stderr)
    return orig(self, snaps)
forked.ForkedCheckpointer.start = start
sys.argv = ["profile_worker"] + sys.argv[1:]
runpy.run_module("bench.profile_worker", run_name="__main__")
