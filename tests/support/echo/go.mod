// A tiny HTTP backend for the platform tests (tests/platform): real pods whose answers say which
// backend served them. Standard library only.
module modeldeploy.dev/tests/echo

go 1.24.0
