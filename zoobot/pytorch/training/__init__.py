"""Zoobot 2.x's module paths, kept for compatibility: see :mod:`zoobot.zoobot2`."""
