"""Unit-test settings shared by the files in tests/unit."""

from __future__ import annotations

import os

from hypothesis import settings

# Property tests: 200 examples by default keeps `pytest tests/unit` fast; CI (HYPOTHESIS_PROFILE=ci, set
# by `make test`) searches ten times harder. No deadline, so a loaded CI machine cannot fail a test on time alone.
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
