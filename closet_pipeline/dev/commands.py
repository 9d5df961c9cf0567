"""`closet-pipeline dev` (start the local topology, print how to use it, wait for Ctrl-C) and
`closet-pipeline upload` (upload a photo to the running topology, follow its job, print its result)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from closet_pipeline.dev.storage_front import storage_client, upload
from closet_pipeline.dev.tools import TopologyError
from closet_pipeline.dev.topology import DEFAULTS, STATE_FILE, TOPOLOGY_JSON, LocalTopology
from shared.layout import UPLOAD_METADATA, upload_key


def run_dev(env: dict[str, str] | None = None) -> int:
    """`closet-pipeline dev`: start everything, print how to use it, wait for Ctrl-C."""
    topo = LocalTopology(env, write_state=True, watch=False)
    stop = threading.Event()
    # Explicit handlers: a process started in the background may inherit SIGINT as ignored.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print("starting the Pub/Sub emulator, fake-gcs-server and the functions ...", file=sys.stderr)
        topo.start()
        info = topo.describe()
        print(f"Pub/Sub emulator   PUBSUB_EMULATOR_HOST={info['pubsub']}  (project {info['project']})")
        print(f"storage            STORAGE_EMULATOR_HOST={info['gcs']}  (owner rights; signed URLs: {info['gcsPublic']})")
        print(f"                   fake-gcs-server at {info['gcsUpstream']}; strict stand-ins: {info['strict']}")
        print(f"buckets            {', '.join(f'{a}={b}' for a, b in info['buckets'].items())}")
        for name, url in info["functions"].items():
            print(f"function {name:<17} {url}")
        print(f"                   each from its zip in {topo.workdir / 'functions'}; {topo.servers.python.note}")
        if topo.upload_url_secret:
            print(f"upload_url secret  Authorization: Bearer {topo.upload_url_secret}")
        print(f"demo page          {topo.start_web().url}/demo/")
        print(f"logs               {info['logs']}")
        print(f"state              {STATE_FILE}")
        print(f"\nupload a photo:    {_command()} upload PHOTO --user 1 --cloth 42\n"
              "stop:              Ctrl-C", flush=True)
        while not stop.is_set():
            for proc in list(topo.procs):  # a function that dies is started again by the supervisor
                if not proc.alive() and not proc.name.startswith("function-"):
                    print(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}", file=sys.stderr)
                    return 1
            stop.wait(1.0)
    except KeyboardInterrupt:
        pass
    except TopologyError as exc:
        print(f"closet-pipeline dev: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping ...", file=sys.stderr)
        topo.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def run_upload(photo: Path, user_id: str, cloth_id: str, *, file_name: str | None = None, gcs: str | None = None,
               pubsub: str | None = None, project: str | None = None, uploads_bucket: str | None = None,
               timeout: float = 300.0, category: str | None = None, image_type: str | None = None) -> int:
    """`closet-pipeline upload`: upload to the running emulated bucket, follow the job, print its result."""
    import uuid

    state = {}
    if STATE_FILE.exists():
        try:
            state = json.loads(STATE_FILE.read_text())
        except ValueError:
            state = {}
    gcs = gcs or os.environ.get("STORAGE_EMULATOR_HOST") or state.get("gcs")
    pubsub = pubsub or os.environ.get("PUBSUB_EMULATOR_HOST") or state.get("pubsub")
    project = project or state.get("project") or os.environ.get("CLOSET_PROJECT_ID") or DEFAULTS["CLOSET_PROJECT_ID"]
    uploads_bucket = (uploads_bucket or state.get("buckets", {}).get("uploads")
                      or os.environ.get("CLOSET_UPLOADS_BUCKET") or DEFAULTS["CLOSET_UPLOADS_BUCKET"])
    topics = state.get("topics") or json.loads(TOPOLOGY_JSON.read_text())["topics"]
    if not gcs or not pubsub:
        print("closet-pipeline upload: no running topology found; start `closet-pipeline dev` or pass --gcs/--pubsub",
              file=sys.stderr)
        return 2
    if not gcs.startswith("http"):
        gcs = f"http://{gcs}"
    try:
        data = photo.read_bytes()
        key = upload_key(user_id, cloth_id, file_name or photo.name)
    except OSError as exc:
        print(f"closet-pipeline upload: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # InvalidObjectPath
        print(f"closet-pipeline upload: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2

    os.environ["PUBSUB_EMULATOR_HOST"] = pubsub
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    suffix = uuid.uuid4().hex[:8]
    subs = {}
    try:
        # Subscribe BEFORE uploading, so nothing the job publishes is missed.
        for kind in ("progress", "results"):
            path = f"projects/{project}/subscriptions/upload-{kind}-{suffix}"
            subscriber.create_subscription(request={"name": path, "topic": f"projects/{project}/topics/{topics[kind]}",
                                                    "ack_deadline_seconds": 30})
            subs[kind] = path
        picks = {UPLOAD_METADATA[field]: value for field, value in (("category", category), ("imageType", image_type))
                 if value}
        job = upload(storage_client(project, gcs), uploads_bucket, key, data, None, picks)
        print(f"uploaded gs://{uploads_bucket}/{key} (generation {job.generation}); job {job.job_id}", file=sys.stderr)
        deadline = time.monotonic() + timeout
        result = None
        while time.monotonic() < deadline:
            for kind, path in (("results", subs["results"]), ("progress", subs["progress"])):
                try:
                    response = subscriber.pull(request={"subscription": path, "max_messages": 50}, timeout=2)
                except Exception:
                    continue
                if not response.received_messages:
                    continue
                subscriber.acknowledge(request={"subscription": path,
                                                "ack_ids": [m.ack_id for m in response.received_messages]})
                for received in response.received_messages:
                    payload = json.loads(received.message.data)
                    if payload.get("jobId") != job.job_id:
                        continue
                    if kind == "progress":
                        print(f"  {payload['status']:<10} {payload['currentStep']:<20} {payload['progressPercentage']}%",
                              file=sys.stderr)
                    else:
                        result = payload
            if result is not None:  # progress was pulled once more after it: the last events may trail it
                print(json.dumps(result, indent=2))
                return 0 if result.get("success") else 1
        print(f"closet-pipeline upload: no result within {timeout:.0f}s", file=sys.stderr)
        return 1
    finally:
        for path in subs.values():
            try:
                subscriber.delete_subscription(request={"subscription": path})
            except Exception:
                pass
        subscriber.close()


def _command() -> str:
    """How the user can call this CLI again: the venv's script when they didn't activate the venv."""
    script = Path(sys.argv[0])
    if script.name == "closet-pipeline" and script.parent != Path() and shutil.which("closet-pipeline") != str(script):
        return os.path.relpath(script) if script.is_absolute() else str(script)
    return "closet-pipeline"
