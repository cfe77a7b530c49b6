"""modeldeploy model server and storage initializer (the code every serving pod runs)."""
