"""The test run's settings: the project's, with the demo shop on, as `make run` has it.

The demo is an app in INSTALLED_APPS, decided once as settings load, and pytest-django loads
them before any conftest runs: hence this module. Processes the tests start (Daphne) inherit
the environment, so they serve the demo too; a test of the product without it says so.
"""

import os

os.environ["REPLAY_DEMO"] = "1"

from replay.settings import *  # noqa: E402, F403
