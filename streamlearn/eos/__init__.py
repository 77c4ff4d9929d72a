"""The exactly-once protocol for one input partition, one module per step.

The invariants it keeps, on a real broker and a real Redis:

  I1  every input offset has exactly one prediction visible to read_committed
  I2  a recovered model equals the model of a fault-free run
  I3  a fenced zombie can neither commit output nor overwrite a checkpoint
  I4  the Redis checkpoint offset never exceeds Kafka's committed offset
  I5  (labels.source: topic) every label is learned at most once; every event
      whose label arrived inside its window is learned exactly once with that
      label; every expired event exactly once with the default (never with
      `drop`); read_committed, the samples topic holds exactly one record per
      learning step
  I2 in label mode: after any crash each partition's model equals a fresh
      model of the same spec trained, in order, on that partition's
      committed sample log

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
3. process (``inline_step``, or ``joined_step`` in label mode, with
   ``emitter``): live records go decode → predict → produce → learn inside
   the open transaction (``streamlearn.model.step``); outputs and dead
   letters go out through the emitter.
4. commit (``commit``): send_offsets_to_transaction(next offset) +
   commit_transaction(): outputs, DLQ records and the input offset become
   visible atomically (I1). A failed commit aborts and rebuilds the model
   from step 2 (I2).
5. checkpoint (``checkpointing``): only after a successful commit, so the
   blob reflects exactly the committed offset K; written by a Lua
   compare-and-set on (epoch, offset), so it never moves backwards and never
   comes from a zombie (I4). Written inline or by a forked child
   (``streamlearn.state.forked``) from an immutable snapshot.

Label mode (``joined_step`` → ``label_step``, ``journal``; docs/labels.md). The join's outcome
depends on the order in which event and label records are processed, and
that order depends on poll timing, so it is *logged*: every chunk produces,
in the same transaction as its predictions, samples and label dead letters,
one record to the join journal (partition p for input partition p) naming
the event range, the label range and any idle-clock advance it applied.
Within a chunk the records are merged by (event time, kind, offset), so the
journal record fully determines the step. Step 4 sends BOTH partitions'
next offsets (input and label) into the transaction. Step 5's checkpoint
also holds the join state (pending events, early labels, done ids, clocks,
counters) and the positions (E, L, J). Step 2 loads it, reads the committed
(E_K, L_K), replays every journal record from J to the journal's end
(read_committed; after init_transactions none of ours is open) through the
same step with no outputs, and then requires the positions to be
(E_K, L_K): anything else is a ReplayError naming topic, partition, offsets
and epoch, never a guess. The state is then exactly a crash-free run's, so
I5 and I2 in label mode hold: the model learned the committed sample log,
in its order, and nothing else.

at_least_once replaces 1's fencing and 4's transaction with a flush and a
Redis offset write; a crash between the two re-emits predictions. In both
modes the producer's delivery reports are read before any offset moves: an
output the broker refused is never skipped (a transient refusal replays the
batch, a permanent one halts the partition, see ``commit`` and ``halting``), and a batch is
processed in time-bounded chunks (``pacing``) so it never outlives its
transaction.

Direction of calls: the Ray runtime (``streamlearn.runtime``) drives a
``PartitionTask``; the task drives these steps; the steps use the model
(``streamlearn.model``), the state stores (``streamlearn.state``) and the
clients (``connectors``) below them. Nothing here imports the runtime, and
nothing below imports this package. ``phase`` names where a partition is in
its life (the values written to status), ``heartbeat`` is the liveness value
the runtime reads, ``status`` the fields a task publishes and their writer.
"""
