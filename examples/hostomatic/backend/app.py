"""hostomatic's backend: a small JSON API that says which version answers."""

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("VERSION", "unknown")
SECRETS = ["DB_PASSWORD", "STRIPE_KEY", "OPENAI_API_KEY"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/health":
            body = {"status": "ok", "version": VERSION}
        else:
            body = {
                "service": "backend",
                "version": VERSION,
                "path": self.path,
                # Which secrets it was given, never their values.
                "secrets": {name: name in os.environ for name in SECRETS},
            }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


def main():
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    # SIGTERM: stop taking connections, let requests in progress finish.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"backend {VERSION} listening on port {os.environ['PORT']}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
