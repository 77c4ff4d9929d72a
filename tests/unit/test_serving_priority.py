"""serving.nice → the CPU priority of `streamlearn serve` and every thread and process it starts afterwards.

Each case runs in a child interpreter: a priority, once lowered, cannot be
raised back without privileges, and the test process must keep its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from streamlearn.config import AppConfig
from streamlearn.errors import ConfigError
from streamlearn.serving import priority

BASE = {"app": "a", "kafka": {"bootstrap": "localhost:9092", "input_topic": "in", "output_topic": "out"},
        "model": {"estimator": "river.linear_model.LogisticRegression"}}


def _child(body: str) -> dict[str, object]:
    code = "import json, os, sys, threading\nfrom streamlearn.serving import priority\n" + textwrap.dedent(body)
    # A session of its own: an autogroup's nice is the whole session's, and this one's is the test runner's.
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, start_new_session=True)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_realtime_is_off_by_default_and_out_of_range_names_the_key() -> None:
    assert AppConfig.model_validate(BASE).serving.realtime_priority is None
    assert AppConfig.model_validate({**BASE, "serving": {"realtime_priority": 1}}).serving.realtime_priority == 1
    for bad in (0, 100):
        with pytest.raises((ConfigError, ValueError), match="realtime_priority"):
            AppConfig.model_validate({**BASE, "serving": {"realtime_priority": bad}})


def _may_use_realtime() -> bool:
    import resource

    return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 1


@pytest.mark.skipif(not _may_use_realtime(), reason="needs root or RLIMIT_RTPRIO >= 1 to enter SCHED_RR")
def test_realtime_reaches_every_thread_and_later_child_process() -> None:
    """Like a nice value: a thread started before the call (Ray's would be) and processes started after it (Ray's)."""
    out = _child("""
        started, done = threading.Event(), threading.Event()
        seen = {}
        def early():
            started.set(); done.wait(); seen["early"] = os.sched_getscheduler(0)
        t = threading.Thread(target=early); t.start(); started.wait()
        priority.apply(None, 1)
        done.set(); t.join()
        import subprocess
        child = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)"],
                               capture_output=True, text=True, check=True)
        print(json.dumps({"main": os.sched_getscheduler(0), **seen, "child": child.stdout.split(), "rr": os.SCHED_RR}))
    """)
    rr = out.pop("rr")
    assert out == {"main": rr, "early": rr, "child": [str(rr), "1"]}


def test_realtime_without_the_right_fails_naming_the_key_and_the_fix() -> None:
    out = _child("""
        import resource
        from streamlearn.errors import ConfigError
        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
        if os.geteuid() == 0:  # root has CAP_SYS_NICE: drop it the only way a child can, by becoming nobody
            os.setgid(65534); os.setuid(65534)
        try:
            priority.apply(None, 5)
            print(json.dumps({"raised": False}))
        except ConfigError as exc:
            print(json.dumps({"raised": True, "msg": str(exc), "hint": exc.hint or "",
                              "normal": os.sched_getscheduler(0) == os.SCHED_OTHER}))
    """)
    assert out["raised"] is True and out["normal"] is True
    assert "serving.realtime_priority" in str(out["msg"]) and "LimitRTPRIO=5" in str(out["hint"])


def test_default_is_inherited_and_out_of_range_names_the_key() -> None:
    assert AppConfig.model_validate(BASE).serving.nice is None
    assert AppConfig.model_validate({**BASE, "serving": {"nice": -5}}).serving.nice == -5
    for bad in (-21, 20):
        with pytest.raises((ConfigError, ValueError), match="nice"):
            AppConfig.model_validate({**BASE, "serving": {"nice": bad}})


def test_every_thread_and_later_child_process_runs_at_the_new_priority() -> None:
    """Linux keeps nice per thread: a thread started before the call (Ray's would be) must be moved too."""
    target = min(os.getpriority(os.PRIO_PROCESS, 0) + 3, 19)
    out = _child(f"""
        started, done = threading.Event(), threading.Event()
        seen = {{}}
        def early():
            started.set(); done.wait(); seen["early"] = os.getpriority(os.PRIO_PROCESS, 0)
        t = threading.Thread(target=early); t.start(); started.wait()
        priority.apply({target})
        done.set(); t.join()
        import subprocess
        child = subprocess.run([sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"],
                               capture_output=True, text=True, check=True)
        group = int(open("/proc/self/autogroup").read().split()[-1]) if priority._autogroup_on() else {target}
        print(json.dumps({{"main": os.getpriority(os.PRIO_PROCESS, 0), **seen, "child": int(child.stdout), "group": group}}))
    """)
    assert out == {"main": target, "early": target, "child": target, "group": target}


@pytest.mark.skipif(not priority._autogroup_on(), reason="this kernel shares the CPU by nice value alone (no autogroups)")
def test_the_sessions_autogroup_gets_the_value_too() -> None:
    """With autogroups the CPU is split between sessions first: a process's own nice then only counts inside its session."""
    out = _child("""
        priority.apply(7)
        print(json.dumps({"group": open("/proc/self/autogroup").read().split()[-1]}))
    """)
    assert out == {"group": "7"}


def test_none_leaves_the_priority_alone() -> None:
    out = _child("""
        before = os.getpriority(os.PRIO_PROCESS, 0)
        priority.apply(None)
        print(json.dumps({"same": os.getpriority(os.PRIO_PROCESS, 0) == before}))
    """)
    assert out == {"same": True}


def test_raising_priority_without_the_right_fails_naming_the_key_and_the_fix() -> None:
    """Without CAP_SYS_NICE and with RLIMIT_NICE at 0, Linux refuses a lower nice value: a ConfigError, not a silent no-op."""
    out = _child("""
        import resource
        from streamlearn.errors import ConfigError
        resource.setrlimit(resource.RLIMIT_NICE, (0, 0))
        if os.geteuid() == 0:  # root has CAP_SYS_NICE: drop it the only way a child can, by becoming nobody
            os.setgid(65534); os.setuid(65534)
        before = os.getpriority(os.PRIO_PROCESS, 0)
        try:
            priority.apply(before - 1)
            print(json.dumps({"raised": False}))
        except ConfigError as exc:
            print(json.dumps({"raised": True, "msg": str(exc), "hint": exc.hint or "",
                              "after": os.getpriority(os.PRIO_PROCESS, 0) == before}))
    """)
    assert out["raised"] is True and out["after"] is True
    assert "serving.nice" in str(out["msg"]) and "CAP_SYS_NICE" in str(out["hint"])
