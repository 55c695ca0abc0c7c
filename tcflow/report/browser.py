"""Open a report in a real headless Chromium and check that every image in it loads.

A minimal client of the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (JSON messages
ending in NUL on file descriptors 3 and 4: no websocket, no extra package). Snakemake's HTML
report is a single-page app whose results live in its embedded ``results`` object (one
``data_uri`` per file); :func:`check_report` loads the page, decodes every image result in the
page as an ``<img>`` and reports its natural size (0 = not loaded), then opens each image through
the app's own navigation (menu -> category -> result) and checks the ``<img>`` it shows. It can
save a screenshot of the last view.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

#: Debian's chromium, or whatever CHROMIUM names
CHROMIUM = os.environ.get("CHROMIUM", "chromium")
#: launch flags: headless, no network activity of its own, a fresh profile (added per run)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1400,1000")
TIMEOUT_S = 60.0

#: every image result of Snakemake's report, decoded by the browser: [{path, width, height}]
JS_DECODE = """
(async () => {
  if (typeof results === "undefined") return "null";
  const out = [];
  for (const [path, r] of Object.entries(results)) {
    if (!String(r.mime_type).startsWith("image/")) continue;
    const img = new Image();
    const done = new Promise(res => { img.onload = () => res(true); img.onerror = () => res(false); });
    img.src = r.data_uri;
    const ok = await done;
    out.push({path: path, loaded: ok, width: img.naturalWidth, height: img.naturalHeight});
  }
  return JSON.stringify(out);
})()
"""


def chromium_path() -> str | None:
    return shutil.which(CHROMIUM)


class Browser:
    """One headless Chromium with a DevTools pipe and one page session."""

    def __init__(self, binary: str | None = None):
        binary = binary or chromium_path()
        if not binary:
            raise FileNotFoundError(f"{CHROMIUM}: not found (Debian: apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="tcflow-chromium-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def fds():  # chromium reads commands on fd 3 and answers on fd 4 (copies first: a pipe may be 3 or 4)
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        # close_fds=False: subprocess would close 3 and 4 after fds(); os.pipe()'s own ends are not inherited
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
                                      "about:blank"], preexec_fn=fds, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf, self._id, self.events = b"", 0, []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", session=True)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the DevTools pipe (exit {self.proc.poll()})")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, session: bool = False, **params) -> dict:
        """Send one command; return its result (raise on a protocol error)."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def open(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired")

    def eval(self, expression: str):
        """The value of a JavaScript expression (promises awaited)."""
        res = self.send("Runtime.evaluate", session=True, expression=expression, awaitPromise=True,
                        returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JavaScript error: {res['exceptionDetails'].get('text')} "
                               f"{res['exceptionDetails'].get('exception', {}).get('description', '')}")
        return res["result"].get("value")

    def screenshot(self, path: str | Path) -> None:
        data = self.send("Page.captureScreenshot", session=True, format="png")["data"]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


#: helpers defined in the page: a link by its text; poll until a condition holds
JS_HELPERS = """
window.__tc = {
  sleep: ms => new Promise(r => setTimeout(r, ms)),
  link: t => Array.from(document.querySelectorAll("a")).find(a => a.innerText.trim() === t),
  waitFor: async (f, ms) => { const t0 = Date.now(); while (Date.now() - t0 < ms) { const v = f(); if (v) return v;
                                await new Promise(r => setTimeout(r, 50)); } return null; },
};
true
"""
#: open category (and subcategory) through the app's menu: true when the links were there
JS_OPEN = """
(async (cat, sub) => {
  const a = await __tc.waitFor(() => __tc.link(cat), 10000);
  if (!a) return false;
  a.click();
  await __tc.sleep(200);
  if (sub !== "Other" && __tc.link(sub)) { __tc.link(sub).click(); await __tc.sleep(200); }
  return true;
})
"""
#: click the eye button of one result and measure the <img> the app then shows
JS_VIEW = """
(async (path, timeout) => {
  const row = await __tc.waitFor(() => Array.from(document.querySelectorAll("tr")).find(
      r => r.innerText.trim() === path && r.querySelector("a[iconname=eye]")), 5000);
  if (!row) return {path: path, error: "no entry with a view button in the app's menu"};
  row.querySelector("a[iconname=eye]").click();
  const want = results[path].data_uri;
  const img = await __tc.waitFor(() => Array.from(document.images).find(i => i.src === want && i.complete), timeout);
  return img ? {path: path, width: img.naturalWidth, height: img.naturalHeight}
             : {path: path, error: "the app showed no <img> of it"};
})
"""


def _call(browser: Browser, fn: str, *args):
    return browser.eval(f"({fn})({', '.join(json.dumps(a) for a in args)})")


def check_report(html: str | Path, screenshot: str | Path | None = None, view_timeout_ms: int = 10000) -> dict:
    """Open ``html`` (Snakemake's report) in headless Chromium: ``decoded``: every image result
    decoded as an ``<img>`` ({path, loaded, width, height}); ``viewed``: every image opened through
    the app's menu ({path, width, height} or {path, error}); ``bad``: the paths whose image did not
    load (natural width 0) either way. ``screenshot``: a PNG of the last view."""
    url = Path(html).resolve().as_uri()
    with Browser() as b:
        b.open(url)
        decoded = json.loads(b.eval(JS_DECODE))
        if decoded is None:
            raise ValueError(f"{html}: no embedded `results`: not a Snakemake HTML report")
        images = {d["path"] for d in decoded}
        viewed = []
        for cat, subs in json.loads(b.eval("JSON.stringify(categories)")).items():
            for sub, paths in subs.items():
                todo = [p for p in paths if p in images]
                if not todo:
                    continue
                b.open(url)  # a fresh app per (sub)category: no navigation state carries over
                b.eval(JS_HELPERS)
                if not _call(b, JS_OPEN, cat, sub):
                    viewed += [{"path": p, "error": f"no menu link {cat!r}"} for p in todo]
                    continue
                viewed += [_call(b, JS_VIEW, p, view_timeout_ms) for p in todo]
        if screenshot:
            b.screenshot(screenshot)
    bad = sorted({d["path"] for d in decoded if not d["loaded"] or not d["width"]}
                 | {v["path"] for v in viewed if v.get("error") or not v.get("width")}
                 | (images - {v["path"] for v in viewed}))
    return {"decoded": decoded, "viewed": viewed, "bad": bad}
