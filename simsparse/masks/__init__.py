"""Masks: checkpoint I/O (`io.load`, `native.save`), pattern analysis, synthetic masks, storage formats.

Kept import-free so `import simsparse.masks.patterns` does not pull in torch.
"""
