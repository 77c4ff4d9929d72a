"""The exactly-once protocol: ownership, restore + replay, process, commit, checkpoint.

One partition's life under the protocol, step by step; the invariants I1–I4
it keeps are stated at the top of ``streamlearn.eos.task``. It drives the
model step (``streamlearn.model``) and the state stores (``streamlearn.state``)
below it, and is driven by the Ray runtime (``streamlearn.runtime``) above it.
"""
