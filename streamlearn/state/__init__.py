"""Model state that outlives a worker: authenticated checkpoint blobs and the
forked child that writes them from a copy-on-write snapshot.

Why apart from the protocol: a blob must be verified before it is unpickled
wherever it is read (recovery, status, tests), and the forked writer runs in a
process that must not reach back into the worker's objects.
"""
