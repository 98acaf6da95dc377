"""The pieces of ``wmi train``, one idea per module; :mod:`wmi.training.loop` is the loop.

- :mod:`wmi.training.config`: :class:`TrainConfig`, config files, resume policy, checks
  (torch-free).
- :mod:`wmi.training.run`: the run folder, its log, Ctrl-C handling, distributed setup.
- :mod:`wmi.training.state`: the model, fine-tuning, and the checkpointed training state.
- :mod:`wmi.training.loader`: datasets, the resumable sampler and the loaders.
- :mod:`wmi.training.step`: one optimizer step (autocast, loss, backward) and the lr schedule.
- :mod:`wmi.training.validate`: Table I metrics and previews on the validation split.

Importing this package imports nothing heavy; each module imports what it needs.
"""
