"""The spread simulator (``spread simulate``): a marked Hawkes process of hashtag spread.

- :mod:`~pipeline.simulate.scenario`: scenario files (TOML + ``schema.json``), built-ins in
  ``scenarios/``;
- :mod:`~pipeline.simulate.model`: the generative model, streamed in time order;
- :mod:`~pipeline.simulate.expect`: expected counts (how targets are solved for);
- :mod:`~pipeline.simulate.measure`: the calibration figures measured from the output;
- :mod:`~pipeline.simulate.output`: JSONL files and progress.

README "Simulator" describes the model, its maths and every scenario field. The package itself
imports nothing, so that ``spread`` starts fast.
"""
