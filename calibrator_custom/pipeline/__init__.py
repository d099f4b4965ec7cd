"""The pipeline above calibration, planning and the fixed model: statistics -> plan -> fixed model ->
measure -> re-plan (``pipeline.convert.convert``; L4 in ``sensitivity``, L5 in ``l5``, measurements in
``measure``), and quant_param export (``pipeline.export``). See docs/architecture.md."""
