"""Every Ray call goes through here, so the logic around actors can be tested without a cluster."""

from __future__ import annotations

import os
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

ActorError = RayActorError
TimeoutError_ = GetTimeoutError
TaskError = RayTaskError

# Passed to actors so crash points, secrets and log levels reach every worker process.
_FORWARDED_ENV = ("STREAMLEARN_FAULTS", "STREAMLEARN_CHECKPOINT_SECRET", "STREAMLEARN_LOG_LEVEL")
# Measured: SIGKILL → actor error in 0.74 s with 100 ms, 1.8 s with Ray's default 1000 ms.
DEATH_INFO_WAIT_MS = 100


def init(address: str | None, workers: int) -> None:
    if ray.is_initialized():
        return
    env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": "ERROR",
        "log_to_driver": True,
        "configure_logging": True,
        "runtime_env": {"env_vars": env} if env else None,
    }
    if address:
        ray.init(address=address, **kwargs)
    else:
        # The local raylet starts workers at nice 15 by default; the partition workers are
        # the hot path, so on a busy machine they would lose the CPU to everything else
        # (the broker included). Measured in docs/benchmarks.md; an explicit setting wins.
        os.environ.setdefault("RAY_worker_niceness", "0")
        # Logical CPUs: one per worker even on a small machine (they mostly wait on I/O),
        # plus one per worker for replacements: a hung (zombie) worker keeps its CPU
        # reservation until it retires, and its replacement must not wait for it.
        # A task on an actor that died waits this long for the GCS's "why" before it fails
        # (default 1 s, seen as 1.8 s from SIGKILL to the error here). The Coordinator
        # restarts on any actor error whatever the reason, so the wait is pure recovery time.
        ray.init(num_cpus=max(os.cpu_count() or 1, workers) + workers,
                 _system_config={"timeout_ms_task_wait_for_death_info": DEATH_INFO_WAIT_MS}, **kwargs)


def shutdown() -> None:
    if ray.is_initialized():
        ray.shutdown()


def spawn(cls: type, *args: Any, name: str | None = None, max_restarts: int = 0, num_cpus: float = 1, max_concurrency: int = 4) -> Any:
    actor_cls: Any = ray.remote(cls)
    return actor_cls.options(
        name=name,
        max_restarts=max_restarts,
        max_task_retries=0,
        num_cpus=num_cpus,
        max_concurrency=max_concurrency,
        get_if_exists=False,
    ).remote(*args)


def call(handle: Any, method: str, *args: Any) -> Any:
    return getattr(handle, method).remote(*args)


def get(ref: Any, timeout: float | None = None) -> Any:
    return ray.get(ref, timeout=timeout)


def ready(refs: list[Any]) -> list[Any]:
    if not refs:
        return []
    done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
    return list(done)


def kill(handle: Any, restart: bool = False) -> None:
    ray.kill(handle, no_restart=not restart)
