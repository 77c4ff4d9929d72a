"""The Ray runtime: ``PartitionWorker`` actors, the ``Coordinator`` that assigns
partitions and restarts workers, the driver-side ``Runner``, and the one thin
wrapper (``ray_api``) every Ray call goes through.

The runtime drives partition tasks (``streamlearn.eos``); nothing below it
calls back up.
"""
