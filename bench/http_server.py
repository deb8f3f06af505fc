"""One HTTP server process for bench/http_path.py: Daphne or gunicorn, QMS or the no-middleware baseline.

    python bench/http_server.py {daphne-stock,daphne,gunicorn} {qms,baseline} PORT

daphne-stock serves with Django's own ASGIHandler (every sync middleware hook a thread hop); daphne with
QMS's one-hop handler (qms_project/http.py), as `manage.py serve` does; gunicorn with qms_project/wsgi.py's
WSGI handler (gthread workers). Each is one process, so its CPU is the server's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    server, app, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.http_baseline" if app == "baseline" else "qms_project.settings"
    if server == "gunicorn":
        threads = os.environ.get("BENCH_GUNICORN_THREADS", "8")
        os.execv(str(ROOT / ".venv" / "bin" / "gunicorn"),
                 ["gunicorn", "qms_project.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                  "--worker-class", "gthread", "--threads", threads, "--log-level", "warning",
                  "--backlog", "4096", "--chdir", str(ROOT)])
    import django

    django.setup(set_prefix=False)
    from django.core.handlers.asgi import ASGIHandler

    from qms_project.http import OneHopASGIHandler
    from queues.management.commands.serve import daphne_server

    application = ASGIHandler() if server == "daphne-stock" else OneHopASGIHandler()
    daphne_server(application, "127.0.0.1", port, 4096, lambda: print("ready", flush=True), verbosity=0).run()


if __name__ == "__main__":
    main()
