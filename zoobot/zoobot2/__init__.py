"""The Zoobot 2.x compatibility layer, in one place.

Zoobot 2.9's module paths (``zoobot.pytorch.training.finetune``,
``zoobot.pytorch.predictions.predict_on_catalog``, ``zoobot.pytorch.training.representations``,
``zoobot.pytorch.estimators.define_model``, ``zoobot.shared.schemas``,
``zoobot.shared.load_predictions``) are thin re-exports of this package, which translates 2.9's
argument names, checkpoints and prediction files to the project's own API. Use the project's own
API (:mod:`zoobot.finetune`, :mod:`zoobot.predict`, :mod:`zoobot.schemas`) for new code;
``docs/zoobot_compat.md`` lists every name and each behaviour that differs on purpose.

Modules: :mod:`.arguments` (argument and checkpoint translation), :mod:`.models` (the 2.9-named
classes), :mod:`.predictions` (``predict`` and prediction files).
"""
