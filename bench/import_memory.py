"""Peak memory of importing a ~200 MB archive against a small one: the import streams.

Stores a one-minute recorded conversation in a scratch database, exports it, and writes two
zips: that archive (small), and the same conversation with about 200 MB more batches (big).
Each is imported by `manage.py import_conversations` in a process of its own, which reports
its peak resident size (VmHWM from /proc/self/status); the ratio big / small should stay
near 1, since an archive is read a batch at a time.

    .venv/bin/python bench/import_memory.py [--megabytes 200]
    DATABASE_URL=postgres://user@host:5432/db .venv/bin/python bench/import_memory.py
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import scratch_database  # noqa: E402

IMPORT_AND_MEASURE = """
import os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "replay.settings")
django.setup()
from django.core.management import call_command
call_command("import_conversations", sys.argv[1], verbosity=0)
status = open("/proc/self/status").read()
print("VmHWM", next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
"""


def batch_bytes(meta: dict, events: list) -> bytes:
    """A batch as the exporter spells it: sorted fields, then the events as recorded."""
    from conversations import exports

    fields = exports.json_bytes({k: v for k, v in meta.items() if k != "events"})
    return fields[:-1] + b',"events":' + exports.json_bytes(events, sort_keys=False) + b"}"


def write_big_archive(path: Path, template: bytes, *, megabytes: int) -> str:
    """A zip holding one archive of about `megabytes` MB: `template`'s, with many more batches.

    Written a batch at a time, so building it takes no more memory than importing it should.
    Returns the conversation's uuid.
    """
    from conversations import exports

    archive = json.loads(template)
    uuid = archive["conversation"]["uuid"]
    head = {k: v for k, v in archive.items() if k != "batches"}
    batches = archive["batches"]
    last = batches[-1]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as bundle:
        with bundle.open("big.json", "w", force_zip64=True) as out:
            out.write(exports.json_bytes(head)[:-1] + b',"batches":[')
            out.write(b",".join(batch_bytes(b, b["events"]) for b in batches))
            for n in range(megabytes):
                start = last["last_ts"] + 1000 * (n + 1)
                events = [
                    {
                        "type": 3,
                        "data": {"source": 5, "text": f"{n}-{i}-" + "x" * 20_000, "id": 4},
                        "timestamp": start + i,
                    }
                    for i in range(50)
                ]
                text = exports.json_bytes(events, sort_keys=False)
                digest = hashlib.sha256(text).hexdigest()
                meta = {
                    **{key: last[key] for key in ("segment", "href", "received_at")},
                    "event_index": last["event_index"] + 1 + n,
                    "kind": "events",
                    "first_ts": start,
                    "last_ts": start + 49,
                    "event_count": 50,
                    "full_snapshots": 0,
                    "raw_size": len(text),
                    "sha256": digest,
                    "events_sha256": digest,
                }
                out.write(b"," + batch_bytes(meta, events))
            out.write(b"]}")
    return uuid


def peak_kib(path: Path, env: dict[str, str]) -> int:
    """Import `path` in a process of its own; return that process's peak resident KiB."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_MEASURE, str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        sys.exit(f"import of {path.name} failed:\n{done.stderr[-3000:]}")
    return int(done.stdout.split("VmHWM")[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    options = parser.parse_args()
    print(f"command: .venv/bin/python bench/import_memory.py --megabytes {options.megabytes}")
    url, label, cleanup = scratch_database()
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "replay.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench.rrweb_fixtures import make_session, rrweb_frames
    from conversations import exports, ingest
    from conversations.models import Conversation
    from conversations.retention import conversation_delete

    folder = Path(tempfile.mkdtemp(prefix="import-memory-"))
    try:
        call_command("migrate", verbosity=0)
        uuid = "bench-import-memory"
        frames = rrweb_frames(uuid, make_session(minutes=1))
        ingest.items_apply(
            [ingest.item_from_text(json.dumps(frame)) for frame in frames], source=None
        )
        template = exports.archive_bytes(Conversation.objects.get(uuid=uuid))
        conversation_delete(conversation=Conversation.objects.get(uuid=uuid))
        small, big = folder / "small.zip", folder / "big.zip"
        with zipfile.ZipFile(small, "w") as bundle:
            bundle.writestr("small.json", template)
        write_big_archive(big, template, megabytes=options.megabytes)
        connection.close()

        env = {**os.environ, "DATABASE_URL": url}
        measured = {}
        for path in (small, big):
            measured[path] = peak_kib(path, env)
            conversation_delete(conversation=Conversation.objects.get(uuid=uuid))
            connection.close()
        print(f"database: {label}")
        for path in (small, big):
            size = path.stat().st_size / 1_000_000
            print(f"{path.name:10} {size:8.1f} MB  peak {measured[path] / 1024:6.1f} MiB (VmHWM)")
        print(f"ratio big / small peak: {measured[big] / measured[small]:.3f}")
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        connection.close()
        cleanup()


if __name__ == "__main__":
    main()
