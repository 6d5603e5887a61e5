"""The site as a WSGI app, for any WSGI server:

    ionet http serve --app wsgi:app          (from this folder)
    gunicorn --chdir examples/site wsgi:app
"""

from pathlib import Path

from ionet.web import App

app = App.from_project(Path(__file__).resolve().parent)
