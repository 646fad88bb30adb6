"""Tests of zoobot.datasets."""
