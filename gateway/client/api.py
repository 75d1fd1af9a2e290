"""The REST API over HTTP (urllib): JSON in and out, problem details raised as ApiError."""

from __future__ import annotations

import base64
import json
import mimetypes
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import runfile

DEFAULT_URL = "http://127.0.0.1:8000"  # make run's address with its default PORT
TIMEOUT = 30.0


class ClientError(Exception):
    """Something the command says in one line and exits non-zero for."""


class Unreachable(ClientError):
    """No HTTP answer at all: nothing listens there, or it timed out."""


class ApiError(ClientError):
    """An error answer; `problem` is its RFC 9457 body (or what stands in for one)."""

    def __init__(self, problem: dict[str, Any]) -> None:
        self.problem = problem
        self.status = int(problem.get("status") or 0)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """`status title: detail`, then one line per field error."""
        title = self.problem.get("title") or ""
        detail = self.problem.get("detail") or ""
        lines = [f"{self.status} {title}: {detail}".strip().rstrip(":")]
        errors = self.problem.get("errors")
        if isinstance(errors, dict):
            for field, messages in errors.items():
                for message in messages if isinstance(messages, list) else [messages]:
                    lines.append(f"  {field}: {message}")
        return "\n".join(lines)


def _problem(error: urllib.error.HTTPError) -> dict[str, Any]:
    body = error.read()
    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    if isinstance(problem, dict):
        return problem
    text = body.decode(errors="replace").strip()[:200]
    return {"status": error.code, "title": error.reason, "detail": text}


@dataclass(frozen=True)
class Api:
    """The API at `url`, with an API key when it asks for one."""

    url: str
    key: str | None = None
    timeout: float = TIMEOUT

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Api:
        """GATEWAY_URL, else the running `make run`'s (its run file), else make run's default;
        GATEWAY_API_KEY when set."""
        filled = runfile.fill(environ)
        url = filled.get("GATEWAY_URL", "").strip() or DEFAULT_URL
        return cls(url.rstrip("/"), environ.get("GATEWAY_API_KEY", "").strip() or None)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request; return its decoded JSON body, or raise ApiError / Unreachable."""
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.key:
            request.add_header("Authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise ApiError(_problem(error)) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            reason = getattr(reason, "strerror", None) or reason
            raise Unreachable(
                f"cannot reach the API at {self.url} ({reason}): start `make run`, or set "
                f"GATEWAY_URL to the API's address"
            ) from None

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /api/jobs/: the job, pending."""
        job: dict[str, Any] = self.request("POST", "/api/jobs/", body)
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        """GET /api/jobs/{id}/."""
        job: dict[str, Any] = self.request("GET", f"/api/jobs/{_quoted(job_id)}/")
        return job

    def jobs(self, **query: Any) -> dict[str, Any]:
        """GET /api/jobs/ with filters and a cursor: {"results": [...], "next_cursor": ...}."""
        page: dict[str, Any] = self.request(
            "GET", "/api/jobs/", query={k: v for k, v in query.items() if v}
        )
        return page

    def act(self, job_id: str, action: str) -> dict[str, Any]:
        """POST /api/jobs/{id}/{action}/ (cancel, retry): the job after it."""
        job: dict[str, Any] = self.request("POST", f"/api/jobs/{_quoted(job_id)}/{action}/")
        return job


def document(content: bytes, path: Path | None) -> dict[str, str]:
    """The document's fields: plain UTF-8 text as `document_content`; any other file (a PDF,
    a DOCX, HTML, text in another encoding) as `document_base64`, for the API to detect."""
    declared = mimetypes.guess_type(path.name)[0] if path else None
    if declared in (None, "text/plain"):
        try:
            return {"document_content": content.decode("utf-8-sig")}
        except UnicodeDecodeError:
            pass
    return {
        "document_base64": base64.b64encode(content).decode("ascii"),
        "content_type": declared or "application/octet-stream",
    }


def _quoted(job_id: str) -> str:
    return urllib.parse.quote(job_id, safe="")
