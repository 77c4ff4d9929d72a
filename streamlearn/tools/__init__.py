"""Tooling around the engine, not part of it: the demo, synthetic datasets,
produce/consume helpers and docs generation. The demo's extra dependencies
(rich, matplotlib) come with the ``tools`` extra (``make setup`` installs it).
"""
