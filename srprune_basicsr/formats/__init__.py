"""File formats and sample identities: atomic outputs, keys, LMDBs, scores, keep lists, histories (no torch)."""
