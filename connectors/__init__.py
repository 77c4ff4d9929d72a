"""Kafka, Redis and service plumbing. Knows nothing about models."""
