"""A webhook receiver for tests/cli/hooks.sh (not a test itself).

usage: hook_receiver.py PORTFILE LOGFILE [STATUS...]
Listens on 127.0.0.1:0, writes its port to PORTFILE, answers each POST with
the next STATUS (the last one repeats; default 200) and appends one JSON line
per request to LOGFILE: {"status", "headers", "body"}.  Exits after 120 s at
the latest, so a test that forgets it leaves nothing running for long.
"""
import http.server
import json
import sys
import threading

portfile, logfile = sys.argv[1], sys.argv[2]
statuses = [int(s) for s in sys.argv[3:]] or [200]
lock = threading.Lock()
count = [0]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode("utf-8", "replace")
        with lock:
            status = statuses[min(count[0], len(statuses) - 1)]
            count[0] += 1
            with open(logfile, "a") as f:
                f.write(json.dumps({"status": status, "path": self.path,
                                    "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body": body}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(portfile + ".tmp", portfile)
threading.Timer(120, srv.shutdown).start()
srv.serve_forever()
