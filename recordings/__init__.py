"""Recordings as evidence: index, storage, retention, complaints, retrieval and audited access."""
