"""Published model versions: lineage records, signed blobs, the validation gate, the publisher.

Public: ``streamlearn.models.load(path, secret)`` loads a file written by
``streamlearn models export``, verifying its HMAC before unpickling::

    from streamlearn.models import load
    m = load("model-p0-v3.slmodel", secret)   # secret: STREAMLEARN_CHECKPOINT_SECRET
    prediction, proba = m.predict({"x0": 0.1, "x1": 1.2})
    m.meta["version"], m.meta["offset"]       # lineage
"""

from __future__ import annotations

from streamlearn.models.blob import PublishedModel, dev_secret, load

__all__ = ["PublishedModel", "dev_secret", "load"]
