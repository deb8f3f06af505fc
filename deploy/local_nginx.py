"""deploy/nginx.conf as a runnable nginx.conf on one machine: `make run-prod`, the e2e test of the routing
(tests/e2e/test_nginx_routing.py) and bench/arrival.py run the production file with local addresses
(`runnable` wraps any site the same way: the gate's tests run its generated configuration).

    python deploy/local_nginx.py OUT_DIR LISTEN_PORT HTTP_PORT WS_PORT [WS_PORT ...] STATIC_ROOT
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

SITE = Path(__file__).resolve().parent / "nginx.conf"


def render(directory: Path, listen: int, http_ports: list[int], ws_ports: list[int], static_root: Path, *,
           serve_static: bool = True) -> Path:
    """Write DIRECTORY/nginx.conf (pid, logs and temp files in DIRECTORY, in the foreground); returns its path.

    `http_ports` serve pages and the API (gunicorn), `ws_ports` WebSockets (Daphne). `serve_static=False` proxies
    /static/ too, as docs/DEPLOYMENT.md had it before (bench/arrival.py measures both).
    """
    directory, static_root = directory.resolve(), static_root.resolve()  # nginx reads paths from its prefix

    def servers(ports: list[int]) -> str:
        return "".join(f"    server 127.0.0.1:{port};\n" for port in ports)

    site = SITE.read_text()
    site = re.sub(r"upstream qms \{.*?keepalive", f"upstream qms {{\n{servers(ws_ports)}    keepalive", site,
                  count=1, flags=re.S)
    site = re.sub(r"upstream qms_http \{.*?keepalive", f"upstream qms_http {{\n{servers(http_ports)}    keepalive",
                  site, count=1, flags=re.S)
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{listen};")
    site = site.replace("/srv/qms/staticfiles/", f"{static_root}/")
    if not serve_static:
        site = re.sub(r"\n    # Collected static files:.*?\n    location /static/ \{.*?\n    \}\n", "\n", site,
                      flags=re.S)
    return runnable(directory, site)


def runnable(directory: Path, site: str) -> Path:
    """DIRECTORY/nginx.conf running `site` (text for the http {} block) in the foreground, with its pid, logs and
    temp files in DIRECTORY; returns its path. The gate's tests run `manage.py qms_gate_config nginx` this way."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    # As root, nginx's workers would run as "nobody", who may not read a private checkout or temp directory.
    user = "user root;" if os.geteuid() == 0 else ""
    config = directory / "nginx.conf"
    config.write_text(f"""{user}
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {directory}/body; proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi; uwsgi_temp_path {directory}/uwsgi; scgi_temp_path {directory}/scgi;
{site}
}}
""")
    return config


if __name__ == "__main__":
    out, listen, http_port, *ws, static_root = sys.argv[1:]
    print(render(Path(out), int(listen), [int(http_port)], [int(p) for p in ws], Path(static_root)))
