"""Retraining on drift behind an evaluation gate (RetrainingPolicy, RetrainingRun).

- `gate`: the evaluation gate's verdict on the evaluator's scores (pure);
- `policy`: when a trigger starts a run, within the guards; the policy's status (pure);
- `machine`: a run's phases, Training → Evaluating → Promoting → Promoted (pure);
- `jobs`: the trainer's and the evaluator's Job manifests (pure);
- `loop`: the apply step: observes the cluster, MLflow and Prometheus, runs the plans, writes.
"""
