"""hostomatic's email worker: takes jobs from a queue directory and sends them.

With no mail provider reachable it only logs what it would send, which is enough to show a
worker running, restarted when it crashes, and given its secrets.
"""

import os
import signal
import sys
import time

running = True


def stop(*_):
    global running
    running = False


def main():
    signal.signal(signal.SIGTERM, stop)
    version = os.environ.get("VERSION", "unknown")
    configured = "SENDGRID_API_KEY" in os.environ
    print(f"email worker {version} started; mail provider key set: {configured}", flush=True)
    queue = os.path.join(os.getcwd(), "queue")
    os.makedirs(queue, exist_ok=True)
    while running:
        for name in sorted(os.listdir(queue)):
            print(f"would send {name}", flush=True)
            os.remove(os.path.join(queue, name))
        time.sleep(1)
    print("email worker stopped", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
