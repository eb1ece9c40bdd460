"""Support modules for the test suite, one per concern, imported by tests (never a conftest):
`http` (request helpers), `files` (sample files and generated CSVs), `workers` (real worker
processes), `app_server` (the pytest plugin that runs the app for the browser tests). The fake
OpenAI-compatible server lives with the client it fakes, in `llm.fake_server`."""
