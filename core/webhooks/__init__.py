"""Webhooks consumers can trust: Standard Webhooks signing, secrets with rotation, and the
outbox that writes events in the transaction that ends a task."""
