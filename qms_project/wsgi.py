"""WSGI entry point: plain HTTP through a WSGI server (gunicorn), measured against Daphne in bench/http_path.py.

WebSockets need ASGI (qms_project/asgi.py, Daphne); this serves every HTTP path the same as Daphne does.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

application = get_wsgi_application()
