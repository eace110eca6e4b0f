"""hostomatic's backend: a small JSON API that says which version answers, and whether it
reaches its Redis (the cache the orchestrator runs on master)."""

import json
import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("VERSION", "unknown")
SECRETS = ["DB_PASSWORD", "STRIPE_KEY", "OPENAI_API_KEY", "REDIS_PASSWORD"]


def redis_command(*words):
    """Sends one command to Redis (after AUTH) and returns its first reply line."""
    host, port = os.environ["REDIS_HOST"], int(os.environ["REDIS_PORT"])
    with socket.create_connection((host, port), timeout=2) as connection:
        def send(*parts):
            message = "*%d\r\n" % len(parts) + "".join(
                "$%d\r\n%s\r\n" % (len(p.encode()), p) for p in parts
            )
            connection.sendall(message.encode())
            return connection.makefile("rb").readline().decode().strip()

        if "REDIS_PASSWORD" in os.environ:
            answer = send("AUTH", os.environ["REDIS_PASSWORD"])
            if answer != "+OK":
                return answer
        return send(*words)


def redis_state():
    if "REDIS_HOST" not in os.environ:
        return "not configured"
    try:
        return redis_command("PING").lstrip("+")
    except OSError as error:
        return "unreachable: %s" % error


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/health":
            body = {"status": "ok", "version": VERSION, "redis": redis_state()}
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
