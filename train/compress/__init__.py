"""Compression of trained models (issue 6, docs/compression.md): train -> compress -> export.

A TOML recipe (``recipe``) lists stages run in order, each followed by optional fine-tuning:
structured filter pruning with the papers' criteria (``criteria``) and real surgery, progressive
magnitude pruning and DSD (``schedule``), 2:4 semi-structured sparsity (``schedule``), k-means weight
sharing, the ``.edgez`` store (relative-index CSC + Huffman) and INT8 QAT. The pure parts (criteria,
recipe validation, schedules, the 2:4 checker) come first; the stages that touch a model build on them.
Submodules are imported by name; this package exports nothing so importing it stays cheap.
"""
