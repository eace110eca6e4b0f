"""hostomatic's frontend: serves the pages in public/ and a health check."""

import os
import signal
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("VERSION", "unknown")


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/health":
            data = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        super().do_GET()

    def end_headers(self):
        self.send_header("X-Version", VERSION)
        super().end_headers()

    def log_message(self, format, *args):
        pass


def main():
    handler = partial(Handler, directory=os.path.join(os.path.dirname(os.path.abspath(__file__)), "public"))
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"frontend {VERSION} listening on port {os.environ['PORT']}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
