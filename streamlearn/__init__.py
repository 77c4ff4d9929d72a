"""streamlearn: online machine learning on Kafka streams with exactly-once predictions."""

__version__ = "0.1.0"
