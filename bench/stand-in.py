#!/usr/bin/env python3
"""What the scale run starts instead of JupyterLab, through the real helper: a small HTTP
server on the port of JUPYTERHUB_SERVICE_URL that answers every GET with 200, keep-alive,
so that what is measured is the hub, the helper, the proxy and the database."""

import http.server
import os
import urllib.parse

url = urllib.parse.urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])


class Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the second waits for
    # the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# No periodic wake-up (the default polls every 0.5 s: 1,000 wake-ups a second for 500).
http.server.ThreadingHTTPServer((url.hostname or "127.0.0.1", url.port), Ok).serve_forever(
    poll_interval=3600)
