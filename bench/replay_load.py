"""Time to first frame and seek cost of the replay page against rrweb-player given everything.

Builds a throw-away database with a 1-minute and a 60-minute recording (bench/rrweb_fixtures),
collects the static files and serves them with Daphne on the project's own settings (as
production does: WhiteNoise, hashed names), and measures in headless Chromium, median of
--rounds:
  - first frame: navigation start until the recorded page is drawn, on a first visit (empty
    HTTP cache) and on a repeat visit (warm cache), with the page's performance marks
    (replay:…) in between;
  - seek (60 minutes): jump to the last minute, until the player is there; the longest task
    that blocked the main thread meanwhile.
The baseline is rrweb-player 2.1.6 handed the whole recording (one API request) at once.

Run: .venv/bin/python bench/replay_load.py [--rounds 5]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="replay-bench-"))
os.environ["DATABASE_URL"] = f"sqlite:///{WORK / 'bench.sqlite3'}"
os.environ["STATIC_ROOT"] = str(WORK / "static")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "replay.settings")
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.staticfiles.storage import staticfiles_storage  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench.harness import CHROMIUM_ARGS, DaphneProcess, chromium_executable, free_port  # noqa: E402
from bench.rrweb_fixtures import make_session, rrweb_frames  # noqa: E402
from conversations import ingest  # noqa: E402
from tests import factories as f  # noqa: E402

LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
}).observe({ type: "longtask", buffered: true });
"""
BASELINE_PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="%(css)s"></head><body><div id="target"></div>
<script src="%(js)s"></script>
<script>
fetch("/api/conversations/%(uuid)s/recording/").then((r) => r.json()).then((data) => {
  performance.mark("baseline:data");
  window.player = new BaselinePlayer({ target: document.getElementById("target"),
    props: { events: data.events, autoPlay: false, width: 1024, height: 640 } });
  window.player.goto(0, false);
  performance.mark("baseline:first-frame");
  window.firstFrameAt = performance.now();
});
</script></body></html>"""
# Navigation timing, then the page's own marks, in the order they happen.
MARKS_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const marks = Object.fromEntries(
    performance.getEntriesByType("mark").map((m) => [m.name, m.startTime]));
  const ended = (suffix) => Math.max(0, ...performance.getEntriesByType("resource")
    .filter((r) => r.name.split("?")[0].endsWith(suffix)).map((r) => r.responseEnd));
  return { "html first byte": nav.responseStart, "html": nav.responseEnd,
    "css in": ended(".css"), "js in": ended(".js"),
    "dom ready": nav.domContentLoadedEventStart, ...marks };
}"""
OURS_MARKS = [
    "html first byte",
    "html",
    "css in",
    "js in",
    "replay:script",
    "dom ready",
    "replay:index",
    "replay:chunk",
    "replay:first-frame",
]
BASELINE_MARKS = [
    "html first byte",
    "html",
    "css in",
    "js in",
    "dom ready",
    "baseline:data",
    "baseline:first-frame",
]


def seed(minutes: float, seed_value: int) -> tuple[str, int]:
    uuid = f.new_uuid()
    batches = make_session(minutes=minutes, seed=seed_value)
    frames = rrweb_frames(uuid, batches)
    ends = {}
    for number, batch in enumerate(batches):
        ends[number] = batch["events"][-1]["timestamp"]
    items = [ingest.item_from_text(f.dumps(f.new_conversation(uuid)))]
    for frame in frames:
        last_ts = ends[frame["event_rrweb"]["event_index"]]
        received = datetime.fromtimestamp((last_ts + 150) / 1000, tz=UTC)
        items.append(ingest.item_from_text(f.dumps(frame), received_at=received))
    closed = f.event(
        "conversation closed", uuid, event_conversation_closed=f.summary(uuid, closed=True)
    )
    items.append(ingest.item_from_text(f.dumps(closed)))
    for start in range(0, len(items), 100):
        ingest.items_apply(items[start : start + 100], source=None)
    return uuid, sum(len(b["events"]) for b in batches)


def seek_last_minute(page, seek: str, at: str) -> dict:
    """Seek to the last minute; how long until the player is there, and the longest task."""
    page.wait_for_timeout(300)
    page.evaluate("() => { window.__longTasks = []; }")
    started = time.perf_counter()
    page.evaluate(seek)
    if at:
        page.wait_for_function(at, timeout=120_000)
    seek_ms = (time.perf_counter() - started) * 1000
    page.wait_for_timeout(200)  # a long task is reported once it is over
    tasks = page.evaluate("() => window.__longTasks")
    return {"seek": seek_ms, "max_task": max(tasks, default=0)}


def visit(context, url: str, ready: str, *, seek: str = "", at: str = "") -> dict:
    """Open `url` in `context`; its first frame, marks and (with `seek`) seek figures."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = context.new_page()
    page.add_init_script(LONG_TASKS)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on(
        "response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    page.goto(url)
    try:
        page.wait_for_function(ready, timeout=60_000)
    except PlaywrightTimeout:
        state = page.evaluate(
            "() => [document.readyState, performance.getEntriesByType('mark').map((m) => m.name)]"
        )
        raise RuntimeError(f"{url}: no first frame within 60 s; {state}, {problems}") from None
    result = {"marks": page.evaluate(MARKS_JS)}
    result["first"] = result["marks"].get("replay:first-frame") or result["marks"].get(
        "baseline:first-frame"
    )
    if seek:
        result.update(seek_last_minute(page, seek, at))
    page.close()
    return result


OURS = {
    "ready": "() => window.replayState && window.replayState.firstFrameAt !== null",
    "seek": "() => window.replaySeek(window.replayState.endMs - 60000)",
    "at": "() => Math.abs(replayState.baseTs + replayState.replayer.getCurrentTime()"
    " - (replayState.endMs - 60000)) < 500",
}
BASELINE = {
    "ready": "() => window.firstFrameAt !== undefined",
    "seek": "() => { const m = window.player.getReplayer().getMetaData();"
    " window.player.goto(m.totalTime - 60000, false); }",
    "at": "",  # rrweb-player's goto is synchronous
}


def measure(browser, storage_state, base: str, who: str, uuid: str, *, seek: bool) -> dict:
    """A first visit in a fresh browser context (empty cache), then a repeat visit in it."""
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, storage_state=storage_state
    )
    spec = OURS if who == "ours" else BASELINE
    if who == "ours":
        url = f"{base}/conversations/{uuid}/"
    else:
        url = f"{base}/__bench__/baseline/{uuid}"
        page_html = BASELINE_PAGE % {
            "css": staticfiles_storage.url("dist/baseline.css"),
            "js": staticfiles_storage.url("dist/baseline.js"),
            "uuid": uuid,
        }
        context.route(url, lambda route: route.fulfill(content_type="text/html", body=page_html))
    seeking = {"seek": spec["seek"], "at": spec["at"]} if seek else {}
    first = visit(context, url, spec["ready"], **seeking)
    repeat = visit(context, url, spec["ready"])
    context.close()
    return {"first": first, "repeat": repeat}


def median(runs: list[dict], *keys: str) -> float:
    values = []
    for run in runs:
        value = run
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            values.append(value)
    return statistics.median(values) if values else float("nan")


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    print(f"command: {Path(sys.executable).name} bench/replay_load.py --rounds {options.rounds}")
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    get_user_model().objects.create_superuser("bench", "", "bench-password-123")
    recordings = {}
    for minutes in (1, 60):
        started = time.perf_counter()
        recordings[minutes] = seed(minutes, seed_value=minutes)
        print(
            f"seeded {minutes}-minute recording: {recordings[minutes][1]} events "
            f"in {time.perf_counter() - started:.1f} s"
        )
    sizes = {
        name: (WORK / "static" / staticfiles_storage.stored_name(name)).stat().st_size
        for name in ("dist/replay.js", "dist/replay.css", "dist/baseline.js")
    }
    gzipped = {
        name: (WORK / "static" / (staticfiles_storage.stored_name(name) + ".gz")).stat().st_size
        for name in sizes
    }
    server = DaphneProcess(free_port(), {**os.environ})
    server.start()
    base = f"http://{server.address}"
    runs: dict[tuple[str, int], list[dict]] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_executable(), args=CHROMIUM_ARGS
            )
            context = browser.new_context()
            login = context.new_page()
            login.goto(f"{base}/accounts/login/")
            login.fill("input[name=username]", "bench")
            login.fill("input[name=password]", "bench-password-123")
            login.click("button[type=submit]")
            login.wait_for_url(f"{base}/")
            storage_state = context.storage_state()
            context.close()
            for _ in range(options.rounds):
                for minutes, (uuid, _count) in recordings.items():
                    for who in ("ours", "baseline"):
                        runs.setdefault((who, minutes), []).append(
                            measure(browser, storage_state, base, who, uuid, seek=minutes == 60)
                        )
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(WORK, ignore_errors=True)
    report(runs, sizes, gzipped)


def report(runs: dict, sizes: dict, gzipped: dict) -> None:
    print(
        "bundles (bytes, gzip): "
        + ", ".join(f"{name} {sizes[name]:,} ({gzipped[name]:,})" for name in sizes)
    )
    print(
        f"{'player':<10}{'minutes':>8}{'first visit ms':>16}{'repeat ms':>11}"
        f"{'seek ms':>9}{'longest task ms':>17}"
    )
    for (who, minutes), found in runs.items():
        print(
            f"{who:<10}{minutes:>8}{median(found, 'first', 'first'):>16.0f}"
            f"{median(found, 'repeat', 'first'):>11.0f}"
            f"{median(found, 'first', 'seek'):>9.0f}{median(found, 'first', 'max_task'):>17.0f}"
        )
    print("where the time goes, first visit / repeat visit (median ms since navigation):")
    for (who, minutes), found in runs.items():
        marks = OURS_MARKS if who == "ours" else BASELINE_MARKS
        steps = ", ".join(
            f"{mark} {median(found, 'first', 'marks', mark):.0f}"
            f"/{median(found, 'repeat', 'marks', mark):.0f}"
            for mark in marks
        )
        print(f"  {who} {minutes} min: {steps}")
    for visit_kind in ("first", "repeat"):
        ours1 = median(runs[("ours", 1)], visit_kind, "first")
        ours60 = median(runs[("ours", 60)], visit_kind, "first")
        base1 = median(runs[("baseline", 1)], visit_kind, "first")
        base60 = median(runs[("baseline", 60)], visit_kind, "first")
        print(f"{visit_kind} visit:")
        print(
            f"  1 min, ours / rrweb-player with the whole recording: {ours1 / base1:.2f}x "
            "(target <= 1.0x)"
        )
        print(
            f"  60 min, ours / rrweb-player with the whole recording: {ours60 / base60:.2f}x "
            "(target <= 0.5x)"
        )
        print(f"  ours, 60 min / 1 min: {ours60 / ours1:.2f}x (target <= 1.5x)")
    task = median(runs[("ours", 60)], "first", "max_task")
    print(f"longest main-thread task while seeking in 60 min: {task:.0f} ms (target < 300 ms)")


if __name__ == "__main__":
    main()
