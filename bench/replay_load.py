"""Time to first frame and seek cost of the replay page against rrweb-player given everything.

Builds a throw-away database with a 1-minute and a 60-minute recording (bench/rrweb_fixtures),
serves it with Daphne and measures in headless Chromium:
  - first frame: navigation start until the recorded page is drawn;
  - seek: jump to the last minute, until the player is there; blocked main thread (long tasks).
The baseline hands the whole recording (one API request) to rrweb-player at once.

Run: .venv/bin/python bench/replay_load.py
"""

import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="replay-bench-"))
os.environ["DATABASE_URL"] = f"sqlite:///{WORK / 'bench.sqlite3'}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "replay.settings")
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
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
<link rel="stylesheet" href="/static/dist/baseline.css"></head><body><div id="target"></div>
<script src="/static/dist/baseline.js"></script>
<script>
fetch("/api/conversations/%s/recording/").then((r) => r.json()).then((data) => {
  window.player = new BaselinePlayer({ target: document.getElementById("target"),
    props: { events: data.events, autoPlay: false, width: 1024, height: 640 } });
  window.player.goto(0, false);
  window.firstFrameAt = performance.now();
});
</script></body></html>"""


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


def measure_ours(context, base: str, uuid: str) -> dict:
    page = context.new_page()
    page.add_init_script(LONG_TASKS)
    page.goto(f"{base}/conversations/{uuid}/")
    page.wait_for_function(
        "() => window.replayState && window.replayState.firstFrameAt !== null", timeout=120_000
    )
    first = page.evaluate("() => window.replayState.firstFrameAt")
    page.wait_for_timeout(300)
    page.evaluate("() => { window.__longTasks = []; }")
    target = page.evaluate("() => window.replayState.endMs - 60000")
    started = time.perf_counter()
    page.evaluate("(t) => window.replaySeek(t)", target)
    page.wait_for_function(
        "(t) => Math.abs(replayState.baseTs + replayState.replayer.getCurrentTime() - t) < 500",
        arg=target,
        timeout=120_000,
    )
    return _result(page, first, started)


def _result(page, first: float, seek_started: float) -> dict:
    """Close the page and report its first frame, seek time and long tasks since the seek."""
    seek_ms = (time.perf_counter() - seek_started) * 1000
    tasks = page.evaluate("() => window.__longTasks")
    page.close()
    return {
        "first": first,
        "seek": seek_ms,
        "max_task": max(tasks, default=0),
        "blocked": sum(tasks),
    }


def measure_baseline(context, base: str, uuid: str) -> dict:
    page = context.new_page()
    page.add_init_script(LONG_TASKS)
    page.route(
        f"{base}/__bench__/baseline",
        lambda route: route.fulfill(content_type="text/html", body=BASELINE_PAGE % uuid),
    )
    page.goto(f"{base}/__bench__/baseline")
    page.wait_for_function("() => window.firstFrameAt !== undefined", timeout=300_000)
    first = page.evaluate("() => window.firstFrameAt")
    page.evaluate("() => { window.__longTasks = []; }")
    started = time.perf_counter()
    page.evaluate(
        "() => { const m = window.player.getReplayer().getMetaData();"
        " window.player.goto(m.totalTime - 60000, false); }"
    )
    return _result(page, first, started)


def main() -> None:
    from playwright.sync_api import sync_playwright

    print(f"command: {Path(sys.executable).name} bench/replay_load.py")
    call_command("migrate", verbosity=0)
    get_user_model().objects.create_superuser("bench", "", "bench-password-123")
    recordings = {}
    for minutes in (1, 60):
        started = time.perf_counter()
        recordings[minutes] = seed(minutes, seed_value=minutes)
        print(
            f"seeded {minutes}-minute recording: {recordings[minutes][1]} events "
            f"in {time.perf_counter() - started:.1f} s"
        )
    server = DaphneProcess(free_port(), {**os.environ})
    server.start()
    base = f"http://{server.address}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_executable(), args=CHROMIUM_ARGS
            )
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            login = context.new_page()
            login.goto(f"{base}/accounts/login/")
            login.fill("input[name=username]", "bench")
            login.fill("input[name=password]", "bench-password-123")
            login.click("button[type=submit]")
            login.wait_for_url(f"{base}/")
            results = {}
            for minutes, (uuid, _count) in recordings.items():
                results[("ours", minutes)] = measure_ours(context, base, uuid)
                results[("baseline", minutes)] = measure_baseline(context, base, uuid)
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(WORK, ignore_errors=True)
    print(
        f"{'player':<10}{'minutes':>8}{'first frame ms':>16}{'seek ms':>10}"
        f"{'longest task ms':>17}{'blocked ms':>12}"
    )
    for (who, minutes), r in results.items():
        print(
            f"{who:<10}{minutes:>8}{r['first']:>16.0f}{r['seek']:>10.0f}"
            f"{r['max_task']:>17.0f}{r['blocked']:>12.0f}"
        )
    ours1, ours60 = results[("ours", 1)], results[("ours", 60)]
    base60 = results[("baseline", 60)]
    print(
        f"first frame, 60 min / 1 min (ours): {ours60['first'] / ours1['first']:.2f}x "
        "(target <= 1.5x)"
    )
    print(
        f"first frame, ours / whole recording in rrweb-player (60 min): "
        f"{ours60['first'] / base60['first']:.2f}x (target <= 0.5x)"
    )
    print(
        f"longest main-thread task while seeking in 60 min: {ours60['max_task']:.0f} ms "
        "(target < 300 ms)"
    )


if __name__ == "__main__":
    main()
