"""Text-to-text fine-tuning (``mode: ft``): pair files, the GLUE task table, metrics, predictions.

Data flows as in pretraining, with pairs instead of token windows: ``finetune.train`` (jsonl /
csv / tsv / parquet pairs, GLUE files through :mod:`~synthlm.finetune.tasks`, or a synthetic
dataset's prompt/answer examples) -> :class:`~synthlm.finetune.data.PairDataset` -> objective
``text_to_text`` -> the usual loop, checkpoints and exact resume. Evaluation generates outputs
for ``finetune.valid`` and scores them (:mod:`~synthlm.finetune.metrics`); ``predict_only``
writes them to ``RUN/predictions.jsonl``.
"""
