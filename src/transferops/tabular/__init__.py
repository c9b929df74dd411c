"""The tabular stage (issue 16): tables through the same commands as text.

``transferops train --data loans.parquet --label-column default --time-column date --out runs/t`` (a table
without a text column, or ``--modality tabular``) → ``evaluate`` → ``export`` → ``serve`` → ``monitor``, and
``adapt --modality tabular --unlabeled rows.parquet`` for self-supervised pretraining. See docs/tabular.md.

Modules: :mod:`~transferops.tabular.api` (train: splits, search over trees / FT-Transformer / stack,
thresholds), :mod:`~transferops.tabular.models` (FT-Transformer on the project's TrainLoop, pretraining,
stacking), :mod:`~transferops.tabular.artifact` (the ``tabular`` artifact kind), :mod:`~transferops.tabular.report`
(evaluate), :mod:`~transferops.tabular.export` (ONNX with the parity gate), :mod:`~transferops.tabular.monitoring`
(drift over the shared prediction log). Serving is the shared server's (:mod:`transferops.deploy.routers.tables`).
"""
