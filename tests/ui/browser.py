#!/usr/bin/env python3
"""ui.browser: the dashboard in a real browser (docs/ui.md, "Tests").

Headless Chromium (Debian's `chromium`, driven over the DevTools protocol
on --remote-debugging-pipe: fds 3 and 4, NUL-terminated JSON; Python's
standard library only) loads the dashboard of `telemachy ui` while a
workflow runs, and checks from the rendered DOM that the graph's nodes go
from pending to completed without a reload, that the failed task's output
shows, that the page has no console errors or exceptions, that it fits a
360 px wide screen, and that the Cancel button cancels a running run.
Screenshots go to $TLM_UI_OUT (default build/tests/ui-out).  A missing
chromium is a failure, not a skip: CI installs it (scripts/bootstrap).
Every wait is bounded; the whole test takes well under a minute."""
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN = os.environ.get("TLM_BIN", "build/telemachy")
OUT = os.environ.get("TLM_UI_OUT", os.path.join(os.path.dirname(BIN), "tests", "ui-out"))
DEADLINE = time.monotonic() + 100  # the whole test, whatever happens

DEMO = """apiVersion: telemachy/v1
metadata: {name: release-1.4}
agents:
  - {name: builder, program: /bin/sh, args: ['-c', 'cat >/dev/null; sleep 1.2; echo built']}
  - name: tester
    program: /bin/sh
    args: ['-c', 'cat >/dev/null; sleep 1; echo "running 12 tests"; echo "FAIL: test_login (expected 200, got 500)" >&2; exit 1']
  - {name: writer, program: /bin/sh, args: ['-c', 'cat >/dev/null; sleep 0.8; echo written']}
teams:
  - name: backend
    agents: [builder]
    tasks:
      - {subject: design schema, description: d}
      - {subject: build api, description: d, blocked_by: [design schema]}
  - name: qa
    agents: [tester]
    tasks:
      - {subject: integration tests, description: d, blocked_by: [backend/build api]}
  - name: docs
    agents: [writer]
    tasks:
      - {subject: write guide, description: d, blocked_by: [backend/design schema]}
      - {subject: publish, description: d, blocked_by: [write guide, qa/integration tests]}
"""

SLOW = """apiVersion: telemachy/v1
metadata: {name: long-haul}
agents: [{name: s, program: /bin/sh, args: ['-c', 'cat >/dev/null; sleep 60']}]
teams: [{name: t, agents: [s], tasks: [{subject: nap, description: d}]}]
"""


def fail(msg):
    print("ui.browser: FAIL: " + msg, file=sys.stderr)
    raise SystemExit(1)


def left(limit):
    """Seconds for a wait: at most limit, never past the test's deadline."""
    return max(0.1, min(limit, DEADLINE - time.monotonic()))


class Browser:
    """Chromium on a DevTools pipe, one page attached in flat mode."""

    def __init__(self, exe, profile):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        # fds 3 and 4 in the child: moved out of the way first.
        a = os.dup(to_child_r)
        b = os.dup(from_child_w)

        def fds():
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.log = open(os.path.join(profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--mute-audio",
             "--user-data-dir=" + profile, "--remote-debugging-pipe", "--window-size=1280,1000",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            close_fds=False, preexec_fn=fds)  # Python's fds are close-on-exec already
        for fd in (to_child_r, from_child_w, a, b):
            os.close(fd)
        self.next_id = 0
        self.replies = {}
        self.events = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.session = None

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.from_child, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.replies[-1] = None
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                data = json.loads(msg)
                with self.cond:
                    if "id" in data:
                        self.replies[data["id"]] = data
                    else:
                        self.events.append(data)
                    self.cond.notify_all()

    def call(self, method, params=None, session=True, timeout=15):
        self.next_id += 1
        mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + left(timeout)
        with self.cond:
            while mid not in self.replies:
                if -1 in self.replies:
                    fail("chromium went away during " + method)
                if not self.cond.wait(max(0.0, end - time.monotonic())) and time.monotonic() >= end:
                    fail("no reply to %s in %d s" % (method, timeout))
            data = self.replies.pop(mid)
        if "error" in data:
            fail("%s: %s" % (method, data["error"]))
        return data.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            fail("evaluating %s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait_for(self, expr, timeout, what):
        end = time.monotonic() + left(timeout)
        while time.monotonic() < end:
            v = self.eval(expr)
            if v:
                return v
            time.sleep(0.1)
        fail("timed out (%d s) waiting for %s; the page is %s: %s" % (
            timeout, what, self.eval("location.href"), self.eval("document.body.innerText")[:600]))

    def navigate(self, url):
        self.call("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && location.href === %s" % json.dumps(url),
                      15, "the page " + url)

    def screenshot(self, path, clip=None):
        params = {"format": "png", "captureBeyondViewport": clip is None}
        if clip is not None:
            params["clip"] = {"x": 0, "y": 0, "width": clip[0], "height": clip[1], "scale": 1}
        data = self.call("Page.captureScreenshot", params)
        import base64
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))

    def problems(self):
        """Console errors, exceptions and error log entries so far."""
        out = []
        with self.cond:
            for e in self.events:
                m, p = e.get("method"), e.get("params", {})
                if m == "Runtime.exceptionThrown":
                    out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:400])
                elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
                    out.append("console.%s: %s" % (p.get("type"), json.dumps(p.get("args"))[:400]))
                elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    out.append("log: " + p["entry"].get("text", "")[:400])
        return out

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except (SystemExit, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def api(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.loads(r.read())


def start_ui(state, tmp):
    out = open(os.path.join(tmp, "ui.out"), "w+")
    err = open(os.path.join(tmp, "ui.err"), "w")
    p = subprocess.Popen([BIN, "ui", "--state-dir", state], stdin=subprocess.DEVNULL, stdout=out,
                         stderr=err)
    end = time.monotonic() + left(15)
    while time.monotonic() < end:
        out.seek(0)
        line = out.readline()
        if line.endswith("\n"):
            return p, line.strip().rstrip("/")
        if p.poll() is not None:
            fail("telemachy ui exited %d" % p.returncode)
        time.sleep(0.05)
    p.kill()
    fail("telemachy ui printed no URL")


def start_run(state, tmp, name, text):
    spec = os.path.join(tmp, name + ".yaml")
    with open(spec, "w") as f:
        f.write(text)
    env = {k: v for k, v in os.environ.items()
           if k not in ("AGAMEMNON_URL", "NATS_URL", "AGAMEMNON_API_KEY", "TELEMACHY_JOURNAL")}
    return subprocess.Popen([BIN, "run", "--state-dir", state, spec], stdin=subprocess.DEVNULL,
                            stdout=open(os.path.join(tmp, name + ".out"), "w"),
                            stderr=open(os.path.join(tmp, name + ".err"), "w"), env=env)


def wait_run(base, workflow, known, timeout):
    """The id of the first run of workflow not in known."""
    end = time.monotonic() + left(timeout)
    while time.monotonic() < end:
        for r in api(base, "/api/runs")["runs"]:
            if r["workflow"] == workflow and r["id"] not in known:
                return r["id"]
        time.sleep(0.05)
    fail("no run of %s appeared" % workflow)


NODES = "JSON.stringify(Array.from(document.querySelectorAll('g.node')).map(n => [n.dataset.task, n.dataset.state]))"


def main():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        fail("chromium is not installed (scripts/bootstrap installs Debian's chromium)")
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="tlm-ui-browser-")
    state = os.path.join(tmp, "state")
    procs = []
    browser = None
    try:
        ui, base = start_ui(state, tmp)
        procs.append(ui)
        profile = os.path.join(tmp, "profile")
        os.makedirs(profile)
        browser = Browser(exe, profile)
        targets = browser.call("Target.getTargets", session=False)["targetInfos"]
        page = next((t["targetId"] for t in targets if t["type"] == "page"), None)
        if page is None:
            page = browser.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        browser.session = browser.call("Target.attachToTarget", {"targetId": page, "flatten": True},
                                       session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(domain + ".enable")

        # 1. The runs page with no journal yet.
        browser.navigate(base + "/")
        if "No runs" not in browser.eval("document.body.innerText"):
            fail("an empty journal should say no runs")

        # 2. A run with three teams and a failure, watched live.
        demo = start_run(state, tmp, "demo", DEMO)
        procs.append(demo)
        run = wait_run(base, "release-1.4", set(), 20)
        browser.navigate(base + "/runs/" + run)
        browser.eval("window.__loaded_once = 1")
        seen = {}
        end = time.monotonic() + left(40)
        final = False
        while time.monotonic() < end and not final:
            for task, st in json.loads(browser.eval(NODES)):
                seen.setdefault(task, [])
                if not seen[task] or seen[task][-1] != st:
                    seen[task].append(st)
            final = browser.eval("(document.querySelector('[data-final]') || {}).getAttribute && "
                                 "document.querySelector('[data-final]').getAttribute('data-final') === '1'")
            time.sleep(0.1)
        if not final:
            fail("the run page never showed the run ended: %s" % seen)
        for task, st in json.loads(browser.eval(NODES)):
            if seen[task][-1] != st:
                seen[task].append(st)
        print("ui.browser: node states seen: %s" % json.dumps(seen))
        if browser.eval("window.__loaded_once") != 1:
            fail("the page was reloaded; it should update in place")
        if len(seen) != 5:
            fail("expected 5 nodes, saw %s" % seen)
        for task in ("backend/build api", "docs/write guide"):
            s = seen[task]
            if s[-1] != "completed" or s[0] == "completed":
                fail("%s should go from not started to completed while watched: %s" % (task, s))
        if seen["qa/integration tests"][-1] != "failed":
            fail("qa/integration tests should end failed: %s" % seen)
        if seen["docs/publish"][-1] != "skipped":
            fail("docs/publish should be skipped: %s" % seen)
        # State by text and shape as well as colour.
        label = browser.eval("document.querySelector('g.node[data-state=failed] text.lbl').textContent")
        if label != "\u2717 failed":
            fail("a failed node says %r" % label)
        out = browser.wait_for(
            "(() => { const d = document.querySelector('details.output[data-task=\"qa/integration tests\"]');"
            " return d && d.open && d.innerText.includes('FAIL: test_login') ? d.innerText : ''; })()",
            10, "the failed task's output")
        if "running 12 tests" not in out:
            fail("the failed task's stdout is missing: %r" % out)
        browser.screenshot(os.path.join(OUT, "dashboard.png"))
        # The first screenful (docs/img/dashboard.png in the README is one),
        # loaded afresh so that the buttons say what the ended run allows.
        browser.eval("window.__old = 1")
        browser.call("Page.reload")
        browser.wait_for("window.__old === undefined && document.readyState === 'complete'", 15,
                         "the reloaded page")
        if browser.eval("document.getElementById('act-cancel').disabled") is not True:
            fail("Cancel should be disabled on an ended run")
        browser.eval("document.querySelectorAll('details.output').forEach(d => { d.open = false; });"
                     "window.scrollTo(0, 0)")
        browser.screenshot(os.path.join(OUT, "dashboard-top.png"), clip=(1280, 860))

        # 3. A phone: 360 px wide, nothing wider than the screen.
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True})
        browser.navigate(base + "/runs/" + run)
        width = browser.eval("document.documentElement.scrollWidth")
        if width > 360:
            fail("the run page is %d px wide on a 360 px screen" % width)
        browser.screenshot(os.path.join(OUT, "dashboard-360.png"))
        browser.call("Emulation.clearDeviceMetricsOverride")
        demo.wait(timeout=left(20))

        # 4. Cancel from the page: a running run, its owner asked through
        # the journal, the run ends cancelled.
        slow = start_run(state, tmp, "slow", SLOW)
        procs.append(slow)
        srun = wait_run(base, "long-haul", {run}, 20)
        end = time.monotonic() + left(20)
        while time.monotonic() < end:
            if any(t["status"] == "running" for t in api(base, "/api/runs/" + srun)["tasks"]):
                break
            time.sleep(0.1)
        else:
            fail("the slow task never ran")
        browser.navigate(base + "/runs/" + srun)
        browser.eval("document.getElementById('act-cancel').click()")
        browser.wait_for("location.search === '?done=cancel' && document.readyState === 'complete'",
                         10, "the page after Cancel")
        if "Cancel requested." not in browser.eval("document.body.innerText"):
            fail("the page does not say the cancel was asked")
        end = time.monotonic() + left(30)
        while time.monotonic() < end:
            doc = api(base, "/api/runs/" + srun)
            if doc["run"]["state"] in ("cancelled", "failed", "completed", "teardown_failed"):
                break
            time.sleep(0.2)
        if doc["run"]["state"] != "cancelled" or doc["run"]["cancel_requested_at"] is None:
            fail("the run should end cancelled with the request recorded: %s" % doc["run"])
        if not any(a["action"] == "cancel" for a in doc["audit"]):
            fail("no cancel in the audit trail: %s" % doc["audit"])
        browser.wait_for("document.getElementById('run-state') && "
                         "document.getElementById('run-state').textContent.includes('cancelled')",
                         10, "the page to show the run cancelled")
        slow.wait(timeout=left(20))

        problems = browser.problems()
        if problems:
            fail("the browser reported problems:\n  " + "\n  ".join(problems))
        # The dashboard stops cleanly (under ASan: and leaks nothing).
        ui.terminate()
        if ui.wait(timeout=left(10)) != 0:
            with open(os.path.join(tmp, "ui.err")) as f:
                fail("telemachy ui exited %d on SIGTERM:\n%s" % (ui.returncode, f.read()[-3000:]))
        print("ui.browser: ok; screenshots in " + OUT)
    finally:
        # Every step on its own: one that fails must not leave the others'
        # processes running.
        if browser is not None:
            try:
                browser.close()
            except (Exception, SystemExit) as e:  # noqa: BLE001 - cleanup goes on
                print("ui.browser: closing chromium: %r" % e, file=sys.stderr)
                browser.proc.kill()
        for p in procs:
            try:
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            except OSError as e:
                print("ui.browser: stopping %s: %r" % (p.args[:2], e), file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
