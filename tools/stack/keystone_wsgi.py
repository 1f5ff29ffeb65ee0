"""WSGI entry point for Keystone under gunicorn (Keystone 30 ships no wsgi script).

oslo.config would parse gunicorn's own command line and the workers would
die in a loop, so hide it before Keystone is imported.
"""

import sys

sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401  (re-exported for gunicorn)
