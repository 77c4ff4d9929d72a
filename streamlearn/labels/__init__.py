"""Delayed labels: the join of unlabelled events with labels that arrive later on their own topic.

Pure state and logic, no Kafka, no Redis: the exactly-once protocol
(``streamlearn.eos.label_step``) feeds it the records of one journalled
chunk and sends what it emits into the open transaction. Because the join
outcome depends only on the chunk's records (merged in a fixed order) and
the clock advances written in the join journal, replaying the journal gives
the same state, the same model and the same sample log (I5, I2 in label
mode; docs/labels.md).

- ``pending``: the pending-event store, early labels and done ids (bounded).
- ``journal``: the journal record codec.
- ``join``: the join state machine, one chunk at a time.
- ``records``: label records decoded, kept labels rebuilt for the DLQ, sample records encoded.
"""
