#!/usr/bin/env python3
"""Checks camera-web's OpenAPI document (driven by crates/camera-web/tests/contract.rs).

1. Every recorded answer of the real server validates against the document (openapi-core);
   every recorded request that the server accepted validates too.
2. The document's paths and methods are exactly the route table's API routes (`/api/...` and
   `/cacert.crt`), and changes (admin routes) declare the security schemes.
3. The document's ErrorCode enum is exactly the server's error codes, and the other enums given
   (event kinds, ...) exactly the server's values.
4. The UI uses only what the contract has: every error code app.js compares with exists, every
   snake_case field it reads is a property somewhere in the document, and every key type the
   request form offers is a KeyTypeId.

Prints what it checked; exits 1 with a list of problems.
"""
import argparse
import base64
import json
import re
import sys
from urllib.parse import parse_qs

import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse


def mimetype(value):
    return (value or "").split(";")[0].strip()


def properties(node, found):
    """Every property name anywhere in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                found.update(value.keys())
            properties(value, found)
    elif isinstance(node, list):
        for item in node:
            properties(item, found)
    return found


def brief(e):
    """openapi-core's error and its cause, cut to a readable length."""
    text = f"{e}; {getattr(e, '__cause__', '') or ''}"
    return text if len(text) < 600 else text[:600] + "..."


def main():
    ap = argparse.ArgumentParser()
    for name in ("spec", "exchanges", "routes", "codes", "enums", "app-js", "index-html"):
        ap.add_argument(f"--{name}", required=True)
    a = ap.parse_args()

    with open(a.spec) as f:
        document = yaml.safe_load(f)
    api = OpenAPI.from_file_path(a.spec)
    problems = []

    # 1. Real answers (and accepted requests).
    with open(a.exchanges) as f:
        exchanges = json.load(f)
    validated = 0
    for ex in exchanges:
        if not (ex["path"].startswith("/api/") or ex["path"] == "/cacert.crt"):
            continue
        documented_op = ex["method"].lower() in document["paths"].get(ex["path"], {})
        if ex["status"] in (404, 405) and not documented_op:
            continue  # nothing there (or not with that method): the server says so, the document has nothing to say
        args = {k: v[0] for k, v in parse_qs(ex["query"]).items()}
        body = ex["request_body"].encode() if ex["request_body"] else None
        headers = dict(ex["request_headers"])
        cookies = {}
        if "Cookie" in headers:
            name, _, value = headers["Cookie"].partition("=")
            cookies[name] = value
        request = MockRequest(
            "https://camera",
            ex["method"].lower(),
            ex["path"],
            args=args,
            headers=headers,
            cookies=cookies,
            data=body,
            content_type=mimetype(ex["request_content_type"]) or "application/json",
        )
        response = MockResponse(
            base64.b64decode(ex["response_body_base64"]),
            status_code=ex["status"],
            content_type=mimetype(ex["response_content_type"]),
        )
        what = f'{ex["method"]} {ex["path"]}{"?" + ex["query"] if ex["query"] else ""} -> {ex["status"]}'
        try:
            api.validate_response(request, response)
            validated += 1
        except Exception as e:  # openapi-core raises a tree of errors; its text says what failed
            problems.append(f"answer {what} does not match the document: {brief(e)}")
        json_request = mimetype(ex["request_content_type"]) == "application/json"
        if 200 <= ex["status"] < 300 and (json_request or body is None):
            try:
                api.validate_request(request)
            except Exception as e:
                problems.append(f"accepted request {what} does not match the document: {brief(e)}")
    print(f"validated {validated} real answers against the document")

    # 2. Routes.
    with open(a.routes) as f:
        routes = json.load(f)
    api_routes = {(r["path"], r["method"].lower()): r for r in routes if r["path"].startswith("/api/") or r["path"] == "/cacert.crt"}
    documented = {(path, method) for path, item in document["paths"].items() for method in item if method in ("get", "put", "post", "delete", "patch")}
    for missing in sorted(set(api_routes) - documented):
        problems.append(f"route {missing[1].upper()} {missing[0]} is not in the document")
    for extra in sorted(documented - set(api_routes)):
        problems.append(f"the document has {extra[1].upper()} {extra[0]}, which the server does not")
    for key, route in api_routes.items():
        op = document["paths"].get(key[0], {}).get(key[1], {})
        if route["admin"] and not op.get("security"):
            problems.append(f"{key[1].upper()} {key[0]} needs the admin, but the document declares no security")
    seen_paths = {(ex["path"], ex["method"].lower()) for ex in exchanges}
    for never in sorted(set(api_routes) - seen_paths):
        problems.append(f"the walk never called {never[1].upper()} {never[0]}")
    print(f"compared {len(api_routes)} API routes with the document")

    # 3. Error codes.
    with open(a.codes) as f:
        codes = {c["code"] for c in json.load(f)}
    enum = set(document["components"]["schemas"]["ErrorCode"]["enum"])
    for missing in sorted(codes - enum):
        problems.append(f"error code {missing} is not in the document's ErrorCode")
    for extra in sorted(enum - codes):
        problems.append(f"the document's ErrorCode has {extra}, which the server never answers")
    print(f"compared {len(codes)} error codes with the document")
    with open(a.enums) as f:
        enums = json.load(f)
    for schema, values in enums.items():
        documented_values = set(document["components"]["schemas"][schema]["enum"])
        for missing in sorted(set(values) - documented_values):
            problems.append(f"{schema} value {missing} is not in the document")
        for extra in sorted(documented_values - set(values)):
            problems.append(f"the document's {schema} has {extra}, which the server does not")
    print(f"compared the enums {', '.join(sorted(enums))} with the server's")

    # 4. The UI.
    with open(a.app_js) as f:
        js = f.read()
    used_codes = set(re.findall(r"\bcode\s*[!=]==?\s*'([a-z_]+)'", js)) | set(re.findall(r"'([a-z_]+)'\s*[!=]==?\s*[\w.]*\bcode\b", js))
    for code in sorted(used_codes - codes - {"network"}):
        problems.append(f"app.js checks for error code '{code}', which the server never answers")
    names = properties(document, set())
    js_without_strings = re.sub(r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`", "''", js)
    fields = set(re.findall(r"\.([a-z]+(?:_[a-z0-9]+)+)\b", js_without_strings))
    for field in sorted(fields - names):
        problems.append(f"app.js reads the field {field}, which no answer in the document has")
    with open(a.index_html) as f:
        html = f.read()
    select = re.search(r'<select id="csr-key"[^>]*>(.*?)</select>', html, re.S)
    offered = set(re.findall(r'value="([^"]+)"', select.group(1) if select else ""))
    key_ids = set(document["components"]["schemas"]["KeyTypeId"]["enum"])
    for key in sorted(offered - key_ids):
        problems.append(f"the request form offers key type {key}, which the API does not take")
    print(f"app.js: {len(used_codes)} error codes and {len(fields)} snake_case fields checked; the form's {len(offered)} key types")

    if problems:
        print("\n".join(f"PROBLEM: {p}" for p in problems))
        return 1
    print("the contract holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
