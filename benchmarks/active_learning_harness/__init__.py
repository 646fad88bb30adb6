"""The simulated active-learning harness behind ``active_learning.py`` and its finetune variant.

Research code, not part of the packages: ensembles of zoobot Dirichlet heads on frozen features
(:mod:`active_learning_harness.heads`) and the pool-based loop that trains, scores, selects and
labels (:mod:`active_learning_harness.loop`). The benchmarks import it as a sibling package
(they run as scripts from ``benchmarks/``); ``tests/benchmarks`` puts ``benchmarks/`` on the path.
"""
