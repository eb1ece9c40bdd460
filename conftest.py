"""Project-wide test settings: no real network, tasks run in-process, fast backoff."""

from __future__ import annotations

import os

# Never let a test talk to the real DeepSeek API, whatever the developer's shell exports.
os.environ.pop("DEEPSEEK_API_KEY", None)
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("Q_SYNC", "1")
os.environ.setdefault("DEEPSEEK_BACKOFF_SECONDS", "0.01")
