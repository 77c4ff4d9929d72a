"""Every Ray call goes through here, so the logic around actors can be tested without a cluster.

It is also the one place that knows Ray's exception types: `outcome()` turns
what `ray.get` raised into a `Failure`, so the Coordinator decides on kinds
of failure (the method raised, the process died and Ray restarts it, the
actor is gone for good) and never on message text, which Ray rewords
between releases.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorDiedError, GetTimeoutError, RayActorError, RayError, RayTaskError

from streamlearn.errors import ConfigError
from streamlearn.runtime import ray_join


class Failure(enum.Enum):
    """How a call on an actor failed, in the terms the Coordinator acts on."""

    RAISED = "raised"  # the method raised: the actor process lives on
    # The process died or is unreachable; Ray is restarting it (ActorUnavailableError: what
    # an in-flight call gets while restarts remain, measured on Ray 2.60).
    RESTARTING = "restarting"
    # The actor is gone for good (ActorDiedError): restarts exhausted, ray.kill, or its
    # __init__ raised. Calling it again fails at once, so it must be replaced.
    DEAD = "dead"
    TIMEOUT = "timeout"  # no answer within the timeout given to outcome()
    # The call's result is gone but the actor may live (cancelled, worker or raylet died,
    # object lost): retry, and a dead actor then shows itself as RESTARTING or DEAD.
    LOST = "lost"


def classify(exc: RayError) -> Failure:
    # RayTaskError first: ray.get raises a class derived from both RayTaskError and the
    # method's own exception, which may itself be a Ray error (a nested call's).
    if isinstance(exc, RayTaskError):
        return Failure.RAISED
    if isinstance(exc, GetTimeoutError):
        return Failure.TIMEOUT
    if isinstance(exc, ActorDiedError):
        return Failure.DEAD
    if isinstance(exc, RayActorError):  # ActorUnavailableError, or the base class on older Rays
        return Failure.RESTARTING
    return Failure.LOST


@dataclass(frozen=True)
class Outcome:
    """What one call returned, or how it failed: a value the Coordinator can decide on."""

    value: Any = None
    failure: Failure | None = None
    exc: RayError | None = None

    @property
    def error(self) -> BaseException | None:
        """What went wrong at the source: for RAISED the method's own exception, not Ray's wrapper."""
        if self.failure is Failure.RAISED and getattr(self.exc, "cause", None) is not None:
            return self.exc.cause  # type: ignore[union-attr]
        return self.exc

    @property
    def error_type(self) -> str:
        return type(self.error).__name__ if self.error is not None else ""

    def describe(self, limit: int = 300) -> str:
        return f"{self.error_type}: {str(self.error)[:limit]}" if self.error is not None else ""

    def unwrap(self) -> Any:
        if self.exc is not None:
            raise self.exc
        return self.value


# Passed to actors so crash points and log levels reach every worker process. Never a secret:
# Ray shows a job's runtime_env to every user of the cluster (the checkpoint secret travels in
# the actors' config argument instead, `AppConfig.to_wire`).
_FORWARDED_ENV = ("STREAMLEARN_FAULTS", "STREAMLEARN_LOG_LEVEL")
# Fixed in every worker: str hashes (and so the iteration order of sets of strings, which river's
# nominal splitters walk) must not differ between the process that crashed and the one that
# recovers (I2).
HASH_SEED = "0"
AUTH_MODE_ENV = "RAY_AUTH_MODE"  # ray/_private/authentication/authentication_token_setup.py


def require_token_auth() -> None:
    """Turn on Ray's token authentication explicitly; refuse to run with it disabled.

    Ray 2.60 enables it by default for a new local instance, but that is a
    library default: we state it, so an upgrade or a stray setting cannot open
    the app's cluster (Ray's gRPC servers listen on all interfaces) to anyone
    who can reach the machine.
    """
    mode = os.environ.get(AUTH_MODE_ENV)
    if mode is not None and mode.lower() != "token":
        raise ConfigError(
            f"{AUTH_MODE_ENV}={mode}: streamlearn runs Ray only with token authentication",
            hint=f"unset {AUTH_MODE_ENV} (or set it to token); on a cluster, give every node the same token "
                 "(RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH) from your secret store",
        )
    if mode is None:
        os.environ[AUTH_MODE_ENV] = "token"
        # Ray caches its config when it is imported: refresh it, as Ray itself does when it turns
        # token mode on (authentication_token_setup._enable_token_auth), or this driver would
        # talk to its own token-protected GCS without the token.
        from ray import _raylet

        _raylet.Config.initialize("")  # type: ignore[attr-defined]  # compiled module, no stubs


def runtime_env() -> dict[str, Any]:
    env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
    return {"env_vars": {**env, "PYTHONHASHSEED": HASH_SEED}}
# Measured: SIGKILL → actor error in 0.74 s with 100 ms, 1.8 s with Ray's default 1000 ms.
DEATH_INFO_WAIT_MS = 100


def init(address: str | None, workers: int, worker_niceness: int = 0, *, metrics: bool = False, idle_workers: bool = False) -> None:
    """Start a local Ray instance of our own (address None) or join a cluster.

    `worker_niceness`, `metrics` and `idle_workers` (`ray.*`) apply to a local
    instance only: a cluster's processes run with their head's and nodes' settings.
    """
    if ray.is_initialized():
        return
    require_token_auth()
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": "ERROR",
        "log_to_driver": True,
        "configure_logging": True,
        "runtime_env": runtime_env(),
    }
    if address:
        _join(address, kwargs)
    else:
        # Logical CPUs: one per worker even on a small machine (they mostly wait on I/O),
        # plus one per worker for replacements: a hung (zombie) worker keeps its CPU
        # reservation until it retires, and its replacement must not wait for it.
        # A task on an actor that died waits this long for the GCS's "why" before it fails
        # (default 1 s, seen as 1.8 s from SIGKILL to the error here). The Coordinator
        # restarts on any actor error whatever the reason, so the wait is pure recovery time.
        # address="local": always a new instance of our own. Without it ray.init() joins the
        # last cluster `ray start` left on this machine (someone else's), where the
        # settings below are refused and our actors would run on their nodes.
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, workers) + workers,
                 _system_config={"timeout_ms_task_wait_for_death_info": DEATH_INFO_WAIT_MS,
                                 # Ray starts workers at nice 15 by default: on a busy machine the hot path
                                 # would lose the CPU to everything else, the broker included. The system
                                 # config beats a RAY_worker_niceness in the environment (checked on Ray 2.60).
                                 "worker_niceness": worker_niceness,
                                 **local_overhead(metrics=metrics, idle_workers=idle_workers)},
                 **kwargs)


def local_overhead(*, metrics: bool, idle_workers: bool) -> dict[str, Any]:
    """Ray system settings that only cost CPU for an app of a few long-lived actors (`ray.metrics`,
    `ray.idle_workers`). Measured on an idle 1-worker app: each `ray::IDLE` process about 1 % of a core;
    both off (and the driver's status read less often), 15.7-17.8 → 11.8-12.6 % of a core for the whole
    app (bench/results/raw/control-plane-s28/)."""
    out: dict[str, Any] = {}
    if not metrics:
        out["enable_metrics_collection"] = False
    if not idle_workers:
        # Idle workers above this are killed after `idle_worker_killing_time_threshold_ms` (1 s). Ray
        # still prestarts one per CPU for the first driver, so the first actors start without waiting.
        out["num_workers_soft_limit"] = 0
    return out


def _join(address: str, kwargs: dict[str, Any]) -> None:
    """Join a running cluster; a host:port address is checked first (bounded, one clear error).

    `ray.init(address=...)` refuses `_system_config`: a cluster's node-death detection
    and task settings are the head's (`ray start --head --system-config`, docs/scale-out.md).
    `auto` and `ray://` addresses are Ray's to resolve.
    """
    if address == "auto" or "://" in address:
        ray.init(address=address, **kwargs)
        return
    target = ray_join.resolve(address)
    with ray_join.loopback_driver(target.loopback_only):
        if target.loopback_only:
            kwargs = {**kwargs, "_node_ip_address": "127.0.0.1"}
        ray.init(address=target.address, **kwargs)


def shutdown() -> None:
    if ray.is_initialized():
        ray.shutdown()


# Ray gives the head node this resource (1.0); Ray Train pins its state actor the same way.
HEAD_RESOURCE = "node:__internal_head__"


def spawn(cls: type, *args: Any, name: str | None = None, max_restarts: int = 0, num_cpus: float = 1, max_concurrency: int = 4,
          on_head: bool = False, spread: bool = False, node: str | None = None, namespace: str | None = None) -> Any:
    """An actor of `cls`. `on_head`: placed on the head node (it lives as long as the cluster);
    `spread`: over as many nodes as possible, so one node's loss takes as few workers as it can;
    `node`: preferably on that node (`placement`), elsewhere if it is gone or full;
    `namespace`: a detached actor there (it outlives its creator: see `named`)."""
    actor_cls: Any = ray.remote(cls)
    placement: dict[str, Any] = {}
    if namespace is not None:
        placement.update(lifetime="detached", namespace=namespace)
    if on_head:
        placement["resources"] = {HEAD_RESOURCE: 0.001}
    if node is not None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # soft: a node that died meanwhile or cannot fit the actor is no reason to wait;
        # _spill_on_unavailable (Ray 2.60, util/scheduling_strategies.py): nor is a node whose
        # CPUs are all taken right now (a zombie keeps its slot until it retires).
        placement["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True, _spill_on_unavailable=True)
    elif spread:
        placement["scheduling_strategy"] = "SPREAD"
    return actor_cls.options(
        name=name,
        max_restarts=max_restarts,
        max_task_retries=0,
        num_cpus=num_cpus,
        max_concurrency=max_concurrency,
        get_if_exists=False,
        **placement,
    ).remote(*args)


def named(namespace: str, prefix: str) -> dict[str, Any]:
    """name → handle of the live named actors of `namespace` whose name starts with prefix."""
    from ray.util import list_named_actors

    out = {}
    for entry in list_named_actors(all_namespaces=True):
        if entry["namespace"] == namespace and entry["name"].startswith(prefix):
            try:
                out[entry["name"]] = ray.get_actor(entry["name"], namespace=namespace)
            except ValueError:  # gone between the listing and the lookup
                continue
    return out


def restarted() -> bool:
    """True inside an actor that Ray has re-created after its process died."""
    return bool(ray.get_runtime_context().was_current_actor_reconstructed)


def call(handle: Any, method: str, *args: Any) -> Any:
    return getattr(handle, method).remote(*args)


def get(ref: Any, timeout: float | None = None) -> Any:
    return ray.get(ref, timeout=timeout)


def outcome(ref: Any, timeout: float | None = None) -> Outcome:
    """The call's value, or its classified failure; errors that are not Ray's propagate."""
    try:
        return Outcome(value=ray.get(ref, timeout=timeout))
    except RayError as exc:
        return Outcome(failure=classify(exc), exc=exc)


def ready(refs: list[Any]) -> list[Any]:
    if not refs:
        return []
    done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
    return list(done)


def wait_any(refs: list[Any], timeout: float) -> bool:
    """Block until one of the refs is ready or `timeout` passes; whether one is."""
    if not refs:
        return False
    done, _ = ray.wait(refs, num_returns=1, timeout=timeout)
    return bool(done)


def kill(handle: Any, restart: bool = False) -> None:
    ray.kill(handle, no_restart=not restart)


def node() -> dict[str, str]:
    """The Ray node this process runs on ({"node_id", "node_ip"}); {} outside Ray.

    A worker reports it in its ping and its partitions' status, so an operator sees
    which machine holds which partition (what a node's loss would move).
    """
    if not ray.is_initialized():
        return {}
    try:
        node_id = ray.get_runtime_context().get_node_id()
        # The address the node registered with (`--node-ip-address`), from the GCS: inside a worker
        # process `ray.util.get_node_ip_address()` guesses the machine's route instead (seen:
        # 192.0.2.2 for a node started on 127.0.0.1).
        ip = next((str(n["NodeManagerAddress"]) for n in ray.nodes() if n.get("NodeID") == node_id), "")
    except Exception:  # a driver mid-shutdown: the node is unknown, never an error
        return {}
    return {"node_id": node_id, "node_ip": ip}


def cpu_nodes() -> list[str]:
    """Ids of the alive nodes that can run a worker (a head with num_cpus=0 cannot), in the GCS's order."""
    if not ray.is_initialized():
        return []
    return [str(n["NodeID"]) for n in ray.nodes() if n.get("Alive") and (n.get("Resources") or {}).get("CPU", 0) > 0]


def request_resources(num_cpus: int) -> str | None:
    """Ask Ray's autoscaler for room for `num_cpus` one-CPU actors (the request replaces the last one).

    `ray.autoscaler.sdk.request_resources` records the request in the GCS, where the
    autoscaler of a cluster that has one (KubeRay's in-tree autoscaler, `ray up`)
    reads it and adds or, once lowered, lets go of nodes. A local instance or a
    fixed cluster has no autoscaler reading it: the request is then a no-op. It
    is a hint and must never stop the app: None when it was made, else why not
    (for the caller's log line).
    """
    from ray.autoscaler.sdk import request_resources as ray_request

    if not ray.is_initialized():
        return "Ray is not initialized"
    try:
        ray_request(bundles=[{"CPU": 1}] * max(int(num_cpus), 0))
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None
