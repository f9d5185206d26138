"""ganaug: does GAN synthetic data help your image classifier, how much of it, and which of it."""

__version__ = "0.1.0"
