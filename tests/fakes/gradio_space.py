"""A fake Gradio 4/5 Space running rembg, speaking Gradio's documented HTTP API on a local port.

POST /gradio_api/upload (multipart `files`) -> ["<server path>"]
POST /gradio_api/call/<api> {"data": [FileData]} -> {"event_id": ...}
GET  /gradio_api/call/<api>/<event_id> -> SSE: heartbeat, then `event: complete` + data [FileData]
GET  /gradio_api/file=<path> -> the cut-out PNG; GET /config and /gradio_api/info for warm-up pings.
The cut-out's alpha is `corner_mask` of the upload, like the remove.bg fake. Failures: fail_next.
"""

from __future__ import annotations

import io
import json
import uuid

import numpy as np
from PIL import Image

from tests.fakes.http import GARBAGE, TIMEOUT, FakeService, Reply, Request, json_reply, parse_multipart
from tests.fakes.removebg import corner_mask, cutout_png

ERROR_EVENT = "error-event"  # the app raised: `event: error`


class FakeGradioSpace(FakeService):
    """Failures spoil the next results (/call/<api>/<id>, where work happens): HTTP statuses,
    TIMEOUT, GARBAGE (a file that is no image), ERROR_EVENT."""

    modes, statuses = (TIMEOUT, GARBAGE, ERROR_EVENT), True

    def __init__(self, api_name: str = "predict", token: str | None = None, hang_s: float = 5.0) -> None:
        super().__init__()
        self.api_name = api_name
        self.token = token  # when set, requests without `Authorization: Bearer <token>` get 401
        self.hang_s = hang_s
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, str] = {}  # event id -> uploaded path
        self.masks: list[np.ndarray] = []

    def _handle(self, request: Request) -> Reply:
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return json_reply(401, {"detail": "Invalid credentials in Authorization header"})
        path, call = request.path, f"/gradio_api/call/{self.api_name}"
        if request.method == "GET" and path in ("/config", "/gradio_api/info"):
            return json_reply(200, {"version": "5.0.0", "api_prefix": "/gradio_api"})
        if request.method == "POST" and path == "/gradio_api/upload":
            part = parse_multipart(request)["files"]
            server_path = f"/tmp/gradio/{uuid.uuid4().hex}/{part.filename}"
            self.files[server_path] = part.data
            return json_reply(200, [server_path])
        if request.method == "POST" and path == call:
            data = json.loads(request.body)["data"]
            if data[0].get("meta", {}).get("_type") != "gradio.FileData" or data[0]["path"] not in self.files:
                return json_reply(422, {"detail": "not an uploaded file"})
            event_id = uuid.uuid4().hex
            self.jobs[event_id] = data[0]["path"]
            return json_reply(200, {"event_id": event_id})
        if request.method == "GET" and path.startswith(call + "/") and path[len(call) + 1:] in self.jobs:
            return self._result(self.jobs.pop(path[len(call) + 1:]))
        if request.method == "GET" and path.startswith("/gradio_api/file="):
            content = self.files.get(path.removeprefix("/gradio_api/file="))
            return Reply(200, content, "image/png") if content is not None else json_reply(404, {"detail": "Not Found"})
        return json_reply(404, {"detail": "Not Found"})

    def _result(self, upload_path: str) -> Reply:
        mode = self.next_failure()
        if isinstance(mode, int):
            return json_reply(mode, {"detail": "Space is busy"})
        if mode == TIMEOUT:
            return Reply(200, b"", "text/event-stream", delay_s=self.hang_s)
        events = "event: heartbeat\ndata: null\n\n"
        if mode == ERROR_EVENT:
            return Reply(200, (events + "event: error\ndata: null\n\n").encode(), "text/event-stream")
        if mode == GARBAGE:
            content = b"GIF89a-but-not-really"
        else:
            image = Image.open(io.BytesIO(self.files[upload_path]))
            self.masks.append(corner_mask(image))
            content = cutout_png(image, self.masks[-1])
        out_path = f"/tmp/gradio/{uuid.uuid4().hex}/image.png"
        self.files[out_path] = content
        file_data = {"path": out_path, "url": f"{self.url}/gradio_api/file={out_path}", "size": len(content),
                     "orig_name": "image.png", "mime_type": "image/png", "is_stream": False,
                     "meta": {"_type": "gradio.FileData"}}
        return Reply(200, (events + "event: complete\ndata: " + json.dumps([file_data]) + "\n\n").encode(),
                     "text/event-stream")
