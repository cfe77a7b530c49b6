"""Registry-driven rollouts: spec.model.source followed, resolved, pinned and remembered.

- `mlflow`: the MLflow REST client (what an alias or version resolves to; the model file's
  digest through the artifact proxy);
- `poller`: when each followed registry is asked, and its latest answer;
- `follow`: pure decisions: what to pin for the pods, status.resolved and status.rejected, the
  SourceReachable and InSyncWithRegistry conditions and their Events.
"""
