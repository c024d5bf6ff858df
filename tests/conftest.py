"""Test-wide settings."""

import os

# Inside GitHub Actions, `check` and `report` default to annotations: the tests expect the
# text format unless they ask for another (test_outputs sets the variable where it tests it).
os.environ.pop("GITHUB_ACTIONS", None)
