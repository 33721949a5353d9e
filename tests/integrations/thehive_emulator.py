"""A loopback emulator of the TheHive 5 v1 endpoints that the iocscope sync uses.

Every request body and every response body is validated against TheHive's
OpenAPI description (v5.7.3 subset). Validation failures are collected in
``violations`` instead of being raised in the server thread, so a test can assert
that the list is empty.

The spec describes query operations with a discriminator whose names (``_filter``,
``_sort``) differ from what TheHive and thehive4py send (``filter``, ``sort``), and
leaves the query response open. The emulator therefore validates each query
operation against the schema its ``_name`` selects, accepting both spellings, and
each element of a query response against the output schema of the listed entity.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema

TLP_LABELS = {0: "CLEAR", 1: "GREEN", 2: "AMBER", 3: "AMBER+STRICT", 4: "RED"}
PAP_LABELS = {0: "CLEAR", 1: "GREEN", 2: "AMBER", 3: "RED"}


class OpenApiChecker:
    def __init__(self, spec_path: Path) -> None:
        self.spec = json.loads(spec_path.read_text(encoding="utf-8"))
        self._routes = [
            (re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"), path)
            for path in self.spec["paths"]
        ]

    def operation(self, method: str, path: str) -> dict[str, Any]:
        # Literal paths (such as /observable/_bulk) win over templated ones.
        matches = [template for regex, template in self._routes if regex.match(path)]
        if not matches:
            raise AssertionError(f"{method} {path} is not in the OpenAPI spec")
        template = min(matches, key=lambda t: t.count("{"))
        operations = self.spec["paths"][template]
        if method.lower() not in operations:
            raise AssertionError(f"{method} {template} is not in the OpenAPI spec")
        operation: dict[str, Any] = operations[method.lower()]
        return operation

    def validate(self, instance: Any, schema: dict[str, Any]) -> None:
        document = {**schema, "components": self.spec["components"]}
        jsonschema.Draft202012Validator(document).validate(instance)

    def component(self, name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def check_request(self, method: str, path: str, body: Any) -> None:
        operation = self.operation(method, path)
        request_body = operation.get("requestBody")
        if request_body is None:
            assert body is None, f"{method} {path} takes no body"
            return
        schema = request_body["content"]["application/json"]["schema"]
        if path == "/api/v1/query":
            self._check_query(body)
            return
        self.validate(body, schema)

    def _check_query(self, body: Any) -> None:
        assert isinstance(body, dict), body
        assert isinstance(body.get("query"), list), body
        schemas = self.spec["components"]["schemas"]
        for step in body["query"]:
            name = step.get("_name")
            assert isinstance(name, str), step
            if name in ("filter", "_filter"):
                schema = schemas["InputQueryFilterOperation"]
            elif name in ("sort", "_sort"):
                schema = schemas["InputQuerySortOperation"]
            elif name == "page":
                schema = schemas["InputQueryPagingOperation"]
            else:
                schema = schemas["InputQueryGenericOperation"]
            relaxed = copy.deepcopy(schema)
            relaxed["properties"].pop("_name")
            self.validate(step, relaxed)

    def check_response(
        self, method: str, path: str, status: int, body: Any, listed: str | None
    ) -> None:
        operation = self.operation(method, path)
        response = operation["responses"].get(str(status))
        assert response is not None, f"{method} {path} has no {status} response"
        content = response.get("content")
        if content is None:
            assert body is None, f"{method} {path} {status} has no body"
            return
        schema = content["application/json"]["schema"]
        self.validate(body, schema)
        if listed is not None:
            assert isinstance(body, list), body
            for item in body:
                self.validate(item, self.component(listed))


class TheHiveEmulator:
    """Cases, alerts, observables and comments kept in memory."""

    def __init__(self, spec_path: Path, api_key: str) -> None:
        self.checker = OpenApiChecker(spec_path)
        self.api_key = api_key
        self.cases: dict[str, dict[str, Any]] = {}
        self.alerts: dict[str, dict[str, Any]] = {}
        self.observables: dict[str, dict[str, Any]] = {}
        # observable id -> ("case" | "alert", parent id)
        self.parents: dict[str, tuple[str, str]] = {}
        self.comments: dict[str, dict[str, Any]] = {}
        self.comment_cases: dict[str, str] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.violations: list[str] = []
        self._ids = itertools.count(4096)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> TheHiveEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- data set-up ---------------------------------------------------------

    def _new_id(self) -> str:
        return f"~{next(self._ids)}"

    def add_case(self, title: str = "Phishing wave") -> str:
        case_id = self._new_id()
        now = _now_ms()
        self.cases[case_id] = {
            "_id": case_id,
            "_type": "Case",
            "_createdBy": "analyst@example.org",
            "_createdAt": now,
            "number": len(self.cases) + 1,
            "title": title,
            "description": "created by the test",
            "severity": 2,
            "severityLabel": "MEDIUM",
            "startDate": now,
            "flag": False,
            "tlp": 2,
            "tlpLabel": "AMBER",
            "pap": 2,
            "papLabel": "AMBER",
            "status": "New",
            "stage": "New",
            "access": {"kind": "OnlyOrganisation"},
            "extraData": {},
            "newDate": now,
            "timeToDetect": 0,
        }
        return case_id

    def add_alert(self) -> str:
        alert_id = self._new_id()
        self.alerts[alert_id] = {"_id": alert_id}
        return alert_id

    def add_observable(
        self,
        parent: tuple[str, str],
        data_type: str,
        data: str,
        *,
        tlp: int = 2,
        tags: list[str] | None = None,
    ) -> str:
        observable_id = self._new_id()
        now = _now_ms()
        with self._lock:
            self.observables[observable_id] = {
                "_id": observable_id,
                "_type": "Observable",
                "_createdBy": "analyst@example.org",
                "_createdAt": now,
                "dataType": data_type,
                "data": data,
                "startDate": now,
                "tlp": tlp,
                "tlpLabel": TLP_LABELS[tlp],
                "pap": 2,
                "papLabel": PAP_LABELS[2],
                "tags": list(tags or []),
                "ioc": False,
                "sighted": False,
                "reports": {},
                "extraData": {},
                "ignoreSimilarity": False,
                "external": False,
            }
            self.parents[observable_id] = parent
        return observable_id

    def case_comments(self, case_id: str) -> list[dict[str, Any]]:
        return [
            c for cid, c in self.comments.items() if self.comment_cases[cid] == case_id
        ]

    # --- request handling ----------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status, reply, listed = emulator.dispatch(
                    self.command, parts.path, body, dict(self.headers.items())
                )
                try:
                    emulator.checker.check_response(
                        self.command, parts.path, status, reply, listed
                    )
                except (AssertionError, jsonschema.ValidationError) as exc:
                    emulator.violations.append(
                        f"response {self.command} {parts.path}: {exc}"
                    )
                payload = b"" if reply is None else json.dumps(reply).encode()
                self.send_response(status)
                if reply is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        return Handler

    def dispatch(
        self, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> tuple[int, Any, str | None]:
        with self._lock:
            self.requests.append((method, path, body))
            self.headers.append(headers)
            try:
                self.checker.check_request(method, path, body)
            except (AssertionError, jsonschema.ValidationError) as exc:
                self.violations.append(f"request {method} {path}: {exc}")
                return 400, {"type": "BadRequest", "message": str(exc)[:200]}, None
            if headers.get("Authorization") != f"Bearer {self.api_key}":
                return 401, {"type": "AuthenticationError", "message": "bad key"}, None
            return self._route(method, path, body)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any, str | None]:
        if method == "POST" and path == "/api/v1/query":
            return self._query(body["query"])
        match = re.fullmatch(r"/api/v1/observable/([^/]+)", path)
        if method == "PATCH" and match:
            return self._update_observable(match.group(1), body)
        match = re.fullmatch(r"/api/v1/case/([^/]+)/comment", path)
        if method == "POST" and match:
            return self._create_comment(match.group(1), body)
        match = re.fullmatch(r"/api/v1/comment/([^/]+)", path)
        if method == "PATCH" and match:
            return self._update_comment(match.group(1), body)
        return 404, {"type": "NotFoundError", "message": f"{path} not emulated"}, None

    def _query(self, steps: list[dict[str, Any]]) -> tuple[int, Any, str | None]:
        first, rest = steps[0], steps[1:]
        items: list[dict[str, Any]]
        if first["_name"] == "getCase":
            case_id = first["idOrName"]
            if case_id not in self.cases:
                return 404, {"type": "NotFoundError", "message": case_id}, None
            kind, rest = rest[0]["_name"], rest[1:]
            if kind == "observables":
                items = [
                    o
                    for oid, o in self.observables.items()
                    if self.parents[oid] == ("case", case_id)
                ]
                listed = "OutputObservable"
            elif kind == "comments":
                items = self.case_comments(case_id)
                listed = "OutputComment"
            else:
                return 400, {"type": "BadRequest", "message": kind}, None
        elif first["_name"] == "listObservable":
            items = list(self.observables.values())
            listed = "OutputObservable"
        else:
            return 400, {"type": "BadRequest", "message": first["_name"]}, None
        for step in rest:
            items = _apply(step, items)
        return 200, copy.deepcopy(items), listed

    def _update_observable(
        self, observable_id: str, body: dict[str, Any]
    ) -> tuple[int, Any, str | None]:
        observable = self.observables.get(observable_id)
        if observable is None:
            return 404, {"type": "NotFoundError", "message": observable_id}, None
        tags = [t for t in observable["tags"] if t not in body.get("removeTags", [])]
        for tag in body.get("addTags", []):
            if tag not in tags:
                tags.append(tag)
        observable["tags"] = tags
        observable["_updatedAt"] = _now_ms()
        return 204, None, None

    def _create_comment(
        self, case_id: str, body: dict[str, Any]
    ) -> tuple[int, Any, str | None]:
        if case_id not in self.cases:
            return 404, {"type": "NotFoundError", "message": case_id}, None
        comment_id = self._new_id()
        self.comments[comment_id] = {
            "_id": comment_id,
            "_type": "Comment",
            "createdBy": "iocscope@example.org",
            "createdAt": _now_ms(),
            "message": body["message"],
            "isEdited": False,
            "extraData": {},
            "external": False,
        }
        self.comment_cases[comment_id] = case_id
        return 201, copy.deepcopy(self.comments[comment_id]), None

    def _update_comment(
        self, comment_id: str, body: dict[str, Any]
    ) -> tuple[int, Any, str | None]:
        comment = self.comments.get(comment_id)
        if comment is None:
            return 404, {"type": "NotFoundError", "message": comment_id}, None
        comment["message"] = body["message"]
        comment["isEdited"] = True
        comment["updatedAt"] = _now_ms()
        return 204, None, None


def _apply(step: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    name = step["_name"]
    if name in ("filter", "_filter"):
        return [i for i in items if _matches(step, i)]
    if name in ("sort", "_sort"):
        for rule in reversed(step["_fields"]):
            ((field, order),) = rule.items()
            items = sorted(
                items, key=lambda i: i.get(field, 0), reverse=order == "desc"
            )
        return items
    if name == "page":
        return items[step["from"] : step["to"]]
    raise AssertionError(f"query step {name} not emulated")


def _matches(expression: dict[str, Any], item: dict[str, Any]) -> bool:
    for operator, argument in expression.items():
        if operator == "_name":
            continue
        value = item.get(argument["_field"])
        if operator == "_gte":
            return bool(value is not None and value >= argument["_value"])
        if operator == "_eq":
            return bool(value == argument["_value"])
        raise AssertionError(f"filter {operator} not emulated")
    return True


def _now_ms() -> int:
    # Sleeping one millisecond keeps _createdAt values distinct and ordered.
    time.sleep(0.002)
    return int(time.time() * 1000)
