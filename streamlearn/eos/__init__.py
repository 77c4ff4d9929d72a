"""The exactly-once protocol for one input partition, one module per step.

The invariants it keeps, on a real broker and a real Redis:

  I1  every input offset has exactly one prediction visible to read_committed
  I2  a recovered model equals the model of a fault-free run
  I3  a fenced zombie can neither commit output nor overwrite a checkpoint
  I4  the Redis checkpoint offset never exceeds Kafka's committed offset

Steps, in the order they happen (``task.PartitionTask`` runs them in this
order; each module can be read on its own):

1. take ownership (``ownership``): INCR the partition's epoch in Redis, then
   create the transactional producer `{app}-{topic}-{p}` and
   init_transactions(). The broker bumps the producer epoch, which fences any
   older owner and aborts its open transaction (I3 for output). The Redis
   epoch fences its checkpoints (I3 for state: the CAS refuses a stale epoch).
2. restore (``restore``): load the checkpoint (R, model), HMAC verified
   before unpickling, and Kafka's committed offset K for the group. R <= K by
   I4. Records in [R, K) are replayed through the same predict → learn
   sequence with no output (their predictions are already committed), then
   live processing starts at K. This is what makes I1 and I2 hold together.
3. process (``task`` with ``emitter``): live records go decode → predict →
   produce → learn inside the open transaction (``streamlearn.model.step``);
   outputs and dead letters go out through the emitter.
4. commit (``commit``): send_offsets_to_transaction(next offset) +
   commit_transaction(): outputs, DLQ records and the input offset become
   visible atomically (I1). A failed commit aborts and rebuilds the model
   from step 2 (I2).
5. checkpoint (``checkpointing``): only after a successful commit, so the
   blob reflects exactly the committed offset K; written by a Lua
   compare-and-set on (epoch, offset), so it never moves backwards and never
   comes from a zombie (I4). Written inline or by a forked child
   (``streamlearn.state.forked``) from an immutable snapshot.

at_least_once replaces 1's fencing and 4's transaction with a flush and a
Redis offset write; a crash between the two re-emits predictions. In both
modes the producer's delivery reports are read before any offset moves: an
output the broker refused is never skipped (a transient refusal replays the
batch, a permanent one halts the partition, see ``commit``), and a batch is
processed in time-bounded chunks (``pacing``) so it never outlives its
transaction.

Direction of calls: the Ray runtime (``streamlearn.runtime``) drives a
``PartitionTask``; the task drives these steps; the steps use the model
(``streamlearn.model``), the state stores (``streamlearn.state``) and the
clients (``connectors``) below them. Nothing here imports the runtime, and
nothing below imports this package. ``phase`` names where a partition is in
its life (the values written to status), ``heartbeat`` is the liveness value
the runtime reads, ``status`` the fields a task publishes.
"""
