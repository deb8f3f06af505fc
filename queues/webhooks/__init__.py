"""Signed webhooks: operators' endpoints hear of admissions and queue changes.

`outbox` writes one row per (change, subscribed endpoint) in the change's own transaction; `delivery` sends
them later (Celery, or the embedded server's loop), signed by `signing`, to addresses `addresses` allows.
"""
