"""The operator surface: the ``streamlearn`` CLI, status read from Kafka and
Redis, and the Prometheus metrics endpoint.
"""
