"""The test run's settings: the project's, with the demo shop on, as `make run` has it.

The demo is an app in INSTALLED_APPS, decided once as settings load, and pytest-django loads
them before any conftest runs: hence this module. Processes the tests start (Daphne) inherit
the environment, so they serve the demo too; a test of the product without it says so.

Static files are served as built, from where they are, without `collectstatic` first; a test
of the collected, hashed and compressed files says so (tests/test_static.py).
"""

import os

os.environ["REPLAY_DEMO"] = "1"

from replay.settings import *  # noqa: E402, F403

STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
