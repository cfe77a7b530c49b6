"""modeldeploy controller: the typed API, pure builders of desired objects, and the kopf reconciler."""
