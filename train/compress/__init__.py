"""Compression of trained models (issue 6, docs/compression.md): train -> compress -> export.

A TOML recipe (``recipe``) lists stages that ``pipeline`` runs in order, each fine-tuned and measured:
structured filter pruning with the papers' criteria (``criteria``) and real surgery (``surgery``),
progressive magnitude pruning, DSD and 2:4 sparsity (``masks``, ``schedule``), k-means weight sharing
(``kmeans``), the ``.edgez`` store (``store``: relative-index CSC + Huffman) and INT8 QAT (``qat``).
Submodules are imported by name; this package exports nothing so importing it stays cheap.
"""
