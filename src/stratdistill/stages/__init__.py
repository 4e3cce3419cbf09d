"""The pipeline's cached stages: one module each, every one a :class:`~stratdistill.stages.base.Stage`.

This file imports nothing on purpose: a stage's code version follows its imports, and a package
``__init__`` that imported every stage would put each stage's code into every other stage's version.
The order in which they run is :data:`stratdistill.pipeline.STAGES`.
"""
