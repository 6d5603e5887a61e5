"""Settings of the example site (see ionet.web.settings for every name).

Both ways of running it read this file: in-process (``wsgi.py``), and
``ionet web serve examples/site``, which also takes HOST and PORT from here.
"""

import os

#: Tracebacks on error pages: only on your own machine.
DEBUG = os.environ.get("SITE_DEBUG", "") == "1"

#: Signs the session cookies.  Every process serving the site must share it;
#: set SITE_SECRET_KEY in production, the fallback is for trying it out.
SECRET_KEY = os.environ.get("SITE_SECRET_KEY", "example-site-not-secret-change-me")

ROOT_URLCONF = "urls"
TEMPLATES = "templates"
STATIC = "static"
STATIC_URL = "/static/"

#: Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed, such as
#: ["127.0.0.1"] behind an nginx on this machine.  None here: browsers talk to
#: the server directly (behind ``ionet http serve --upstream`` the framework
#: learns the client's address from the split protocol itself).
TRUSTED_PROXIES = []

MIDDLEWARE = ["middleware.SecurityHeaders"]

#: Where ``ionet web serve`` listens (its --host/--port win).
HOST = "127.0.0.1"
PORT = 9000

#: The project's own settings: any other upper-case name.
SITE_NAME = "ionet example site"
GUESTBOOK_SIZE = 50
