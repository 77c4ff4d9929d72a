"""The Ray runtime: ``PartitionWorker`` actors, the ``Coordinator`` that assigns
partitions and restarts workers, the driver-side ``Runner``, and the one thin
wrapper (``ray_api``) every Ray call goes through.

``roster`` holds one record per worker and ``supervisor`` the Coordinator's
decisions (failover, restart, replace, leases, zombies) behind a small port,
so they are unit-tested without a cluster. The runtime drives partition tasks
(``streamlearn.eos``); nothing below it calls back up.
"""
