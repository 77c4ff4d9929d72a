"""The model step: build a river pipeline from its spec, decode events and encode
predictions, and run the per-event hot path (decode → predict → emit → learn).

Nothing here knows about Kafka transactions, Redis or Ray: the exactly-once
protocol (``streamlearn.eos``) drives this step, live and during replay alike.
"""
