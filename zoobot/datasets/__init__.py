"""Datasets for Zoobot: the simulated galaxies and volunteers (torch-free)."""

from zoobot.datasets import simulated

__all__ = ["simulated"]
