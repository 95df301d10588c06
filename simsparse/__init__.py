"""simsparse: trained sparse masks -> hardware cost models, beside measured kernels."""

__version__ = "0.1.0"
