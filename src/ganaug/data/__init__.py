"""Datasets: sources (fetch + load), splits and the prepared-array store."""
