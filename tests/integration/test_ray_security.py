"""The app's Ray instance is closed to drivers without its token, and workers hash strings the same way (findings 4, 12).

A real local Ray started by `ray_api.init`, as `streamlearn run` starts it; the
stranger is a second process with its own HOME (no ~/.ray/auth_token).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.polling import poll

OWNER = textwrap.dedent("""
    import os, sys, ray
    from streamlearn.runtime import ray_api

    class Probe:
        def facts(self):
            return os.environ.get("PYTHONHASHSEED"), hash("streamlearn-categorical-value")

    ray_api.init(None, 1)
    actor = ray_api.spawn(Probe, num_cpus=0)
    seed, h = ray_api.get(ray_api.call(actor, "facts"), timeout=120)
    print("GCS", ray.get_runtime_context().gcs_address, "SEED", seed, "HASH", h, "AUTH", os.environ.get("RAY_AUTH_MODE"), flush=True)
    sys.stdin.read()  # keep the instance up until the test closes stdin
""")

STRANGER = textwrap.dedent("""
    import sys, ray
    try:
        ray.init(address=sys.argv[1], logging_level="ERROR")
    except Exception as exc:
        print("REFUSED", type(exc).__name__, flush=True)
        sys.exit(0)
    print("JOINED", ray.cluster_resources())
""")


def _expected_hash() -> int:
    out = subprocess.run([sys.executable, "-c", "print(hash('streamlearn-categorical-value'))"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
    return int(out.stdout)


def test_a_driver_without_the_token_cannot_join_and_workers_use_the_fixed_hash_seed(tmp_path: Path) -> None:
    log = tmp_path / "owner.log"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS", "PYTHONHASHSEED")}
    with log.open("w") as fh:
        owner = subprocess.Popen([sys.executable, "-c", OWNER], stdin=subprocess.PIPE, stdout=fh, stderr=subprocess.STDOUT,
                                 env=env, start_new_session=True)
    try:
        line = poll(lambda: next((x for x in log.read_text().splitlines() if x.startswith("GCS ")), None), 180,
                    "the app's Ray instance and its probe actor", check=lambda: _alive(owner, log))
        words = line.split()
        gcs, seed, h, auth = words[1], words[3], int(words[5]), words[7]
        assert auth == "token"  # set explicitly, not left to Ray's default
        assert seed == "0" and h == _expected_hash()  # every worker hashes str like PYTHONHASHSEED=0

        home = tmp_path / "stranger-home"
        home.mkdir()
        clean = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
        for extra in ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"}, {}):
            # Ray retries a refused connect once a second for 20 s by default; 2 tries show the same
            # refusal, and the stderr check below proves it is the token that was refused, not a timeout.
            res = subprocess.run([sys.executable, "-c", STRANGER, gcs], capture_output=True, text=True, timeout=180,
                                 env={**clean, "HOME": str(home), "RAY_gcs_server_port_wait_time_s": "2", **extra})
            assert "REFUSED" in res.stdout and "JOINED" not in res.stdout, f"a driver without the token joined ({extra}): {res.stdout}{res.stderr[-2000:]}"
            assert "InvalidAuthToken" in res.stderr, f"refused for another reason than the token ({extra}): {res.stderr[-2000:]}"
    finally:
        if owner.stdin is not None:
            owner.stdin.close()
        try:
            owner.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(owner.pid, 9)
            owner.wait()


def _alive(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        raise AssertionError(f"the owner exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
