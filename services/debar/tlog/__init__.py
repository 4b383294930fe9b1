"""A transparency log's pure parts: RFC 6962 Merkle hashing and proofs (merkle, compact, nodes, proofs), C2SP
signed notes and checkpoints (encoding, keys, note, checkpoint), witness cosignatures and the witness's decision
(cosignature, witness). Nothing here touches storage or the network; callers hand in what a function reads."""
