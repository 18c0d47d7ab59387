#!/usr/bin/env python3
"""SDK compatibility test: the official Ory Kratos Python SDK against Portcullis.

The SDK (`ory-kratos-client`, pinned in requirements.txt) validates every response
with pydantic v2, so it acts as the referee for response shapes. Run it through
`tests/sdk/run.sh`, which starts a server on free ports with a fresh SQLite database:

    python tests/sdk/identities.py --admin http://127.0.0.1:4434 --public http://127.0.0.1:4433

Each check prints one line. By default the script stops at the first failure and
exits 1; `--keep-going` runs every section (each is self-contained) and reports all
failing sections at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pydantic
from ory_kratos_client import ApiClient, Configuration
from ory_kratos_client.api.identity_api import IdentityApi
from ory_kratos_client.api.metadata_api import MetadataApi
from ory_kratos_client.exceptions import ApiException
from ory_kratos_client.models.create_identity_body import CreateIdentityBody
from ory_kratos_client.models.error_generic import ErrorGeneric
from ory_kratos_client.models.identity import Identity
from ory_kratos_client.models.identity_patch import IdentityPatch
from ory_kratos_client.models.identity_with_credentials import IdentityWithCredentials
from ory_kratos_client.models.identity_with_credentials_password import (
    IdentityWithCredentialsPassword,
)
from ory_kratos_client.models.identity_with_credentials_password_config import (
    IdentityWithCredentialsPasswordConfig,
)
from ory_kratos_client.models.json_patch import JsonPatch
from ory_kratos_client.models.patch_identities_body import PatchIdentitiesBody
from ory_kratos_client.models.update_identity_body import UpdateIdentityBody

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = HERE / "schema.json"

PASSWORD = "correct horse battery staple 1"
# Pre-generated hashes of PASSWORD (generated once with python's bcrypt, argon2-cffi and
# hashlib.pbkdf2_hmac; the pbkdf2 salt and key are unpadded standard base64, as Kratos expects).
BCRYPT_HASH = "$2b$10$B8PuL9yGF2j9sXoRZim04uGLcO3f0W0pJflbGPDuOEl0Gjm.NOgKO"
ARGON2ID_HASH = (
    "$argon2id$v=19$m=16384,t=2,p=1$Ty/j86Ep/g9w3zOwl5OGJg"
    "$SSlDDurAZdECilJYK+3/Aiq7HfYDRmQqXUFx4mA2Ujc"
)
PBKDF2_SHA256_HASH = (
    "$pbkdf2-sha256$i=10000,l=32$QDtkjY69TOv2qgVFZVqm2A"
    "$8HT2WpUZAz7FyVeQ5gVYpB3JyQFGU21ayssKcsxXMvQ"
)

# base64url("default") without padding, as used in Kratos schema URLs.
DEFAULT_SCHEMA_B64 = "ZGVmYXVsdA"

RUN = uuid.uuid4().hex[:8]
_counter = 0


class CheckFailed(AssertionError):
    pass


def ok(msg: str) -> None:
    print(f"ok    {msg}", flush=True)


def expect(cond: Any, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def email(tag: str) -> str:
    global _counter
    _counter += 1
    return f"sdk-{RUN}-{tag}-{_counter}@example.com"


def password_creds(password: Optional[str] = None, hashed: Optional[str] = None) -> IdentityWithCredentials:
    cfg = IdentityWithCredentialsPasswordConfig(password=password, hashed_password=hashed)
    return IdentityWithCredentials(password=IdentityWithCredentialsPassword(config=cfg))


def describe_api_exception(e: ApiException) -> str:
    return f"HTTP {e.status} {e.reason}; body: {e.body}"


def expect_api_error(what: str, status: int, fn: Callable[[], Any]) -> ErrorGeneric:
    """Call `fn`, expecting the SDK to raise ApiException with `status` and a Kratos error body."""
    try:
        result = fn()
    except ApiException as e:
        expect(
            e.status == status,
            f"{what}: expected HTTP {status}, got {describe_api_exception(e)}",
        )
        expect(e.body, f"{what}: HTTP {status} without a body")
        try:
            parsed = json.loads(e.body)
        except ValueError as je:
            raise CheckFailed(f"{what}: error body is not JSON ({je}): {e.body!r}")
        try:
            err = ErrorGeneric.from_dict(parsed)
        except pydantic.ValidationError as ve:
            raise CheckFailed(
                f"{what}: the SDK's ErrorGeneric model rejects the error body {e.body!r}: {ve}"
            )
        expect(err is not None and err.error is not None, f"{what}: no `error` object in {e.body!r}")
        expect(
            err.error.code == status,
            f"{what}: error.code is {err.error.code!r}, expected {status}; body {e.body!r}",
        )
        expect(err.error.message, f"{what}: error.message is empty; body {e.body!r}")
        if err.error.status is not None:
            expect(isinstance(err.error.status, str), f"{what}: error.status is not a string")
        return err
    raise CheckFailed(f"{what}: expected HTTP {status}, but the call succeeded with {result!r}")


def raw_request(method: str, url: str, body: Optional[Any] = None) -> tuple[int, Dict[str, str], bytes]:
    """Plain HTTP request, for what the SDK cannot express."""
    data = None
    headers = {"Accept": "application/json"}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def header(headers: Optional[Dict[str, str]], name: str) -> Optional[str]:
    if not headers:
        return None
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


LINK_RE = re.compile(r'<([^>]*)>\s*((?:;\s*[A-Za-z0-9_*-]+\s*=\s*(?:"[^"]*"|[^;,]*)\s*)*)')


def parse_link_header(value: Optional[str]) -> Dict[str, str]:
    """Map rel -> URL from an RFC 8288 Link header."""
    links: Dict[str, str] = {}
    if not value:
        return links
    for m in LINK_RE.finditer(value):
        url, params = m.group(1), m.group(2)
        rel = re.search(r'rel\s*=\s*"?([^";,]+)"?', params)
        if rel:
            for r in rel.group(1).split():
                links[r] = url
    return links


def query_param(url: str, name: str) -> Optional[str]:
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get(name)
    return values[0] if values else None


class Suite:
    def __init__(self, admin: str, public: str):
        self.admin_url = admin.rstrip("/")
        self.public_url = public.rstrip("/")
        self.admin_client = ApiClient(Configuration(host=self.admin_url))
        self.public_client = ApiClient(Configuration(host=self.public_url))
        self.ids = IdentityApi(self.admin_client)
        self.public_ids = IdentityApi(self.public_client)
        self.meta = MetadataApi(self.admin_client)
        self.schema = json.loads(SCHEMA_FILE.read_text())

    # ------------------------------------------------------------------ helpers
    def create(self, body: CreateIdentityBody, what: str) -> Identity:
        res = self.ids.create_identity_with_http_info(create_identity_body=body)
        expect(res.status_code == 201, f"{what}: expected 201, got {res.status_code}")
        expect(isinstance(res.data, Identity), f"{what}: the SDK did not return an Identity: {res.data!r}")
        return res.data

    def create_simple(self, tag: str, **kw: Any) -> Identity:
        addr = email(tag)
        body = CreateIdentityBody(
            schema_id="default",
            traits={"email": addr, "name": {"first": "Ada", "last": tag}},
            **kw,
        )
        return self.create(body, f"create {tag}")

    # ------------------------------------------------------------------ 8. metadata and schemas
    def test_metadata(self) -> None:
        v = self.meta.get_version()
        expect(isinstance(v.version, str) and v.version, f"get_version: empty version {v!r}")
        ok(f"MetadataApi.get_version -> {v.version!r}")

        alive = self.meta.is_alive()
        expect(alive.status == "ok", f"is_alive: status {alive.status!r}, expected 'ok'")
        ok("MetadataApi.is_alive -> status ok")

        ready = self.meta.is_ready()
        expect(ready.status == "ok", f"is_ready: status {ready.status!r}, expected 'ok'")
        ok("MetadataApi.is_ready -> status ok")

    def test_schemas(self) -> None:
        schemas = self.public_ids.list_identity_schemas()
        expect(isinstance(schemas, list), f"list_identity_schemas: not a list: {schemas!r}")
        by_id = {s.id: s for s in schemas}
        expect("default" in by_id, f"list_identity_schemas: no 'default' schema in {list(by_id)}")
        expect(
            by_id["default"].var_schema == self.schema,
            "list_identity_schemas: the 'default' schema differs from tests/sdk/schema.json: "
            f"{json.dumps(by_id['default'].var_schema)[:300]}",
        )
        ok(f"public IdentityApi.list_identity_schemas -> {sorted(by_id)} with the configured schema")

        res = self.public_ids.list_identity_schemas_with_http_info(page_size=1)
        expect(res.status_code == 200, f"list_identity_schemas(page_size=1): HTTP {res.status_code}")
        expect(len(res.data) == 1, f"list_identity_schemas(page_size=1): {len(res.data)} items")
        ok("public IdentityApi.list_identity_schemas(page_size=1) -> 1 item")

        got = self.public_ids.get_identity_schema("default")
        expect(got == self.schema, f"get_identity_schema('default') differs from schema.json: {got!r}")
        ok("public IdentityApi.get_identity_schema('default') == schema.json")

        got = self.public_ids.get_identity_schema(DEFAULT_SCHEMA_B64)
        expect(
            got == self.schema,
            f"get_identity_schema({DEFAULT_SCHEMA_B64!r}) (the schema_url form) differs: {got!r}",
        )
        ok(f"public IdentityApi.get_identity_schema({DEFAULT_SCHEMA_B64!r}) == schema.json")

        expect_api_error(
            "get_identity_schema('no-such-schema')",
            404,
            lambda: self.public_ids.get_identity_schema("no-such-schema"),
        )
        ok("public IdentityApi.get_identity_schema('no-such-schema') -> 404 with a Kratos error body")

    # ------------------------------------------------------------------ 1. create with a plaintext password
    def test_create_plaintext(self) -> None:
        addr = email("plain")
        ext = f"ext-{RUN}-plain"
        meta_admin = {"plan": "gold", "n": 3, "flags": [True, False, None], "nested": {"x": 1.5}}
        meta_public = {"nickname": "ada", "tags": ["a", "b"]}
        body = CreateIdentityBody(
            schema_id="default",
            traits={"email": addr, "name": {"first": "Ada", "last": "Lovelace"}},
            credentials=password_creds(password=PASSWORD),
            metadata_admin=meta_admin,
            metadata_public=meta_public,
            external_id=ext,
        )
        i = self.create(body, "create with a plaintext password")
        ok("create_identity (plaintext password) -> 201, parsed as Identity")

        expect(uuid.UUID(i.id), f"id is not a UUID: {i.id!r}")
        expect(i.schema_id == "default", f"schema_id {i.schema_id!r}")
        expect(
            i.schema_url.endswith(f"/schemas/{DEFAULT_SCHEMA_B64}"),
            f"schema_url {i.schema_url!r} does not end with /schemas/{DEFAULT_SCHEMA_B64}",
        )
        expect(
            i.traits == {"email": addr, "name": {"first": "Ada", "last": "Lovelace"}},
            f"traits {i.traits!r}",
        )
        expect(i.state == "active", f"state {i.state!r}, expected 'active'")
        expect(i.state_changed_at is not None, "state_changed_at is missing")
        expect(i.created_at is not None and i.updated_at is not None, "created_at/updated_at missing")
        ok("create: id, schema_id, schema_url, traits, state=active, timestamps")

        va = i.verifiable_addresses or []
        expect(len(va) == 1, f"verifiable_addresses: expected 1, got {va!r}")
        expect(va[0].value == addr, f"verifiable_addresses[0].value {va[0].value!r}")
        expect(va[0].via == "email", f"verifiable_addresses[0].via {va[0].via!r}")
        expect(va[0].status == "pending", f"verifiable_addresses[0].status {va[0].status!r}")
        expect(va[0].verified is False, f"verifiable_addresses[0].verified {va[0].verified!r}")
        expect(va[0].verified_at is None, f"verifiable_addresses[0].verified_at {va[0].verified_at!r}")
        ok("create: verifiable_addresses[0] = email/pending/unverified")

        ra = i.recovery_addresses or []
        expect(len(ra) == 1, f"recovery_addresses: expected 1, got {ra!r}")
        expect(ra[0].value == addr and ra[0].via == "email", f"recovery_addresses[0] {ra[0]!r}")
        ok("create: recovery_addresses[0] = email")

        creds = i.credentials or {}
        expect("password" in creds, f"credentials has no password entry: {creds!r}")
        pw = creds["password"]
        expect(pw.identifiers == [addr], f"credentials.password.identifiers {pw.identifiers!r}")
        expect(pw.type in (None, "password"), f"credentials.password.type {pw.type!r}")
        expect(
            "hashed_password" not in (pw.config or {}) and PASSWORD not in json.dumps(pw.config or {}),
            f"the create response exposes the password config without include_credential: {pw.config!r}",
        )
        ok("create: credentials.password.identifiers == [email], no password config exposed")

        expect(i.metadata_admin == meta_admin, f"metadata_admin {i.metadata_admin!r}")
        expect(i.metadata_public == meta_public, f"metadata_public {i.metadata_public!r}")
        expect(i.external_id == ext, f"external_id {i.external_id!r}")
        ok("create: metadata_admin, metadata_public, external_id round trip")

        got = self.ids.get_identity(i.id)
        expect(got.id == i.id, f"get_identity returned id {got.id!r}")
        expect(got.traits == i.traits, f"get_identity traits {got.traits!r}")
        expect(got.metadata_admin == meta_admin, f"get_identity metadata_admin {got.metadata_admin!r}")
        expect(got.metadata_public == meta_public, f"get_identity metadata_public {got.metadata_public!r}")
        expect(got.external_id == ext, f"get_identity external_id {got.external_id!r}")
        pw = (got.credentials or {}).get("password")
        expect(pw is not None and pw.identifiers == [addr], f"get_identity: credentials {got.credentials!r}")
        expect(
            "hashed_password" not in (pw.config or {}),
            f"get_identity without include_credential exposes the password config: {pw.config!r}",
        )
        ok("get_identity: same identity, metadata and external_id; credentials without config")

        got = self.ids.get_identity(i.id, include_credential=["password"])
        pw = (got.credentials or {}).get("password")
        expect(pw is not None, f"get_identity(include_credential=[password]): no password credential: {got.credentials!r}")
        hp = (pw.config or {}).get("hashed_password")
        expect(
            isinstance(hp, str) and re.match(r"^\$2[aby]\$12\$", hp),
            f"plaintext password should be stored as a cost-12 bcrypt hash (hashers config), got {hp!r}",
        )
        ok("get_identity(include_credential=[password]): plaintext password stored as bcrypt cost 12")

        by_ext = self.ids.get_identity_by_external_id(ext)
        expect(by_ext.id == i.id, f"get_identity_by_external_id returned {by_ext.id!r}, expected {i.id!r}")
        ok("get_identity_by_external_id -> the same identity")

        expect_api_error(
            "get_identity_by_external_id(unknown)",
            404,
            lambda: self.ids.get_identity_by_external_id(f"ext-{RUN}-does-not-exist"),
        )
        ok("get_identity_by_external_id(unknown) -> 404")

    # ------------------------------------------------------------------ 2. imported hashes
    def test_import_hashes(self) -> None:
        for name, hashed in (
            ("bcrypt", BCRYPT_HASH),
            ("argon2id", ARGON2ID_HASH),
            ("pbkdf2-sha256", PBKDF2_SHA256_HASH),
        ):
            addr = email(name)
            body = CreateIdentityBody(
                schema_id="default",
                traits={"email": addr},
                credentials=password_creds(hashed=hashed),
            )
            i = self.create(body, f"import {name} hash")
            expect(
                (i.credentials or {}).get("password") is not None
                and i.credentials["password"].identifiers == [addr],
                f"import {name}: credentials.password.identifiers {i.credentials!r}",
            )
            got = self.ids.get_identity(i.id, include_credential=["password"])
            pw = (got.credentials or {}).get("password")
            expect(pw is not None, f"import {name}: no password credential on get: {got.credentials!r}")
            stored = (pw.config or {}).get("hashed_password")
            expect(
                stored == hashed,
                f"import {name}: hashed_password is {stored!r}, expected the imported {hashed!r}",
            )
            ok(f"create with an imported {name} hash -> 201; include_credential returns it unchanged")

        addr = email("badhash")
        body = CreateIdentityBody(
            schema_id="default",
            traits={"email": addr},
            credentials=password_creds(hashed="not-a-hash"),
        )
        expect_api_error(
            "create with hashed_password 'not-a-hash'",
            400,
            lambda: self.ids.create_identity(create_identity_body=body),
        )
        found = self.ids.list_identities(credentials_identifier=addr)
        expect(found == [], f"the rejected identity was stored anyway: {found!r}")
        ok("create with an unknown hash format -> 400 with a Kratos error body, nothing stored")

    # ------------------------------------------------------------------ 3. error statuses
    def test_errors(self) -> None:
        addr = email("dup")
        self.create(
            CreateIdentityBody(schema_id="default", traits={"email": addr}),
            "create for the duplicate test",
        )
        dup = CreateIdentityBody(schema_id="default", traits={"email": addr}, credentials=password_creds(password=PASSWORD))
        expect_api_error("create with a duplicate email", 409, lambda: self.ids.create_identity(create_identity_body=dup))
        ok("create with a duplicate email -> 409")

        ext = f"ext-{RUN}-dup"
        self.create(
            CreateIdentityBody(schema_id="default", traits={"email": email("dupext")}, external_id=ext),
            "create for the duplicate external_id test",
        )
        dup_ext = CreateIdentityBody(schema_id="default", traits={"email": email("dupext")}, external_id=ext)
        expect_api_error(
            "create with a duplicate external_id", 409, lambda: self.ids.create_identity(create_identity_body=dup_ext)
        )
        ok("create with a duplicate external_id -> 409")

        missing = CreateIdentityBody(schema_id="default", traits={"name": {"first": "No", "last": "Email"}})
        expect_api_error("create without traits.email", 400, lambda: self.ids.create_identity(create_identity_body=missing))
        ok("create with traits missing the required email -> 400")

        bad = CreateIdentityBody(schema_id="default", traits={"email": "not an email"})
        expect_api_error("create with a malformed email", 400, lambda: self.ids.create_identity(create_identity_body=bad))
        ok("create with a malformed email -> 400")

        extra = CreateIdentityBody(schema_id="default", traits={"email": email("extra"), "unexpected": 1})
        expect_api_error(
            "create with a trait outside the schema", 400, lambda: self.ids.create_identity(create_identity_body=extra)
        )
        ok("create with a trait the schema forbids (additionalProperties: false) -> 400")

        unknown_schema = CreateIdentityBody(schema_id="no-such-schema", traits={"email": email("schema")})
        expect_api_error(
            "create with an unknown schema_id", 400, lambda: self.ids.create_identity(create_identity_body=unknown_schema)
        )
        ok("create with an unknown schema_id -> 400")

        # The SDK does not validate UUIDs client-side, so it can send a malformed id itself.
        expect_api_error("get_identity('not-a-uuid')", 404, lambda: self.ids.get_identity("not-a-uuid"))
        ok("get_identity with a malformed id -> 400")

        expect_api_error("get_identity(unknown)", 404, lambda: self.ids.get_identity(str(uuid.uuid4())))
        ok("get_identity with an unknown id -> 404")

        expect_api_error(
            "update_identity(unknown)",
            404,
            lambda: self.ids.update_identity(
                str(uuid.uuid4()),
                update_identity_body=UpdateIdentityBody(
                    schema_id="default", state="active", traits={"email": email("ghost")}
                ),
            ),
        )
        ok("update_identity with an unknown id -> 404")

        expect_api_error(
            "patch_identity(unknown)",
            404,
            lambda: self.ids.patch_identity(
                str(uuid.uuid4()), json_patch=[JsonPatch(op="replace", path="/state", value="inactive")]
            ),
        )
        ok("patch_identity with an unknown id -> 404")

        expect_api_error("delete_identity(unknown)", 404, lambda: self.ids.delete_identity(str(uuid.uuid4())))
        ok("delete_identity with an unknown id -> 404")

    # ------------------------------------------------------------------ 4. list, pagination, filters
    def test_list(self) -> None:
        created: List[Identity] = []
        for n in range(8):
            addr = email(f"list{n}")
            body = CreateIdentityBody(
                schema_id="default",
                traits={"email": addr, "name": {"first": f"L{n}", "last": "List"}},
                credentials=password_creds(hashed=BCRYPT_HASH) if n == 0 else None,
            )
            created.append(self.create(body, f"create list identity {n}"))
        created_ids = {i.id for i in created}
        ok(f"created {len(created)} identities for listing")

        seen: List[str] = []
        pages = 0
        token: Optional[str] = None
        first_page_ids: Optional[List[str]] = None
        first_link: Optional[str] = None
        while True:
            pages += 1
            expect(pages <= 200, "pagination did not terminate after 200 pages")
            res = self.ids.list_identities_with_http_info(page_size=3, page_token=token)
            expect(res.status_code == 200, f"list page {pages}: HTTP {res.status_code}")
            page = res.data
            expect(isinstance(page, list), f"list page {pages}: not a list: {page!r}")
            expect(len(page) <= 3, f"list page {pages}: {len(page)} items with page_size=3")
            link_value = header(res.headers, "Link")
            links = parse_link_header(link_value)
            expect("first" in links, f"list page {pages}: Link header without rel=\"first\": {link_value!r}")
            if pages == 1:
                first_page_ids = [i.id for i in page]
                first_link = links["first"]
            seen.extend(i.id for i in page)
            if "next" not in links:
                break
            expect(len(page) > 0, f"list page {pages}: empty page but a rel=\"next\" link: {link_value!r}")
            token = query_param(links["next"], "page_token")
            expect(token, f"list page {pages}: rel=\"next\" link without page_token: {links['next']!r}")
            expect(
                query_param(links["next"], "page_size") in (None, "3"),
                f"list page {pages}: rel=\"next\" link changes page_size: {links['next']!r}",
            )
        dupes = sorted({x for x in seen if seen.count(x) > 1})
        expect(not dupes, f"pagination returned ids more than once: {dupes}")
        missing = created_ids - set(seen)
        expect(not missing, f"pagination never returned created ids: {sorted(missing)}")
        expect(pages >= 3, f"expected at least 3 pages of 3 for >= 8 identities, got {pages}")
        ok(f"list_identities(page_size=3) paged through {pages} pages via Link rel=\"next\": every id exactly once")

        # Following rel="first" gives the first page again.
        assert first_link is not None
        first_token = query_param(first_link, "page_token")
        res = self.ids.list_identities_with_http_info(page_size=3, page_token=first_token)
        expect(
            [i.id for i in res.data] == first_page_ids,
            f"rel=\"first\" ({first_link!r}) did not return the first page again",
        )
        ok("list_identities: the rel=\"first\" link returns the first page")

        pick = [created[1].id, created[4].id, created[6].id]
        got = self.ids.list_identities(ids=pick)
        expect(sorted(i.id for i in got) == sorted(pick), f"list_identities(ids=...) returned {[i.id for i in got]}")
        ok("list_identities(ids=[3 ids]) -> exactly those identities")

        got = self.ids.list_identities(ids=[created[2].id, str(uuid.uuid4())])
        expect([i.id for i in got] == [created[2].id], f"list_identities(ids=[known, unknown]) -> {[i.id for i in got]}")
        ok("list_identities(ids=[known, unknown]) -> only the known one")

        target = created[0]
        addr = target.traits["email"]
        got = self.ids.list_identities(credentials_identifier=addr)
        expect(len(got) == 1, f"list_identities(credentials_identifier={addr!r}) returned {len(got)} identities")
        expect(got[0].id == target.id, f"credentials_identifier filter returned {got[0].id!r}")
        pw = (got[0].credentials or {}).get("password")
        expect(pw is not None, f"credentials_identifier filter: no credentials in the result: {got[0].credentials!r}")
        expect(pw.identifiers == [addr], f"credentials_identifier filter: identifiers {pw.identifiers!r}")
        expect(
            "hashed_password" not in (pw.config or {}),
            f"credentials_identifier filter without include_credential exposes the password config: {pw.config!r}",
        )
        ok("list_identities(credentials_identifier=email) -> exactly one, with credentials")

        got = self.ids.list_identities(credentials_identifier=addr, include_credential=["password"])
        expect(len(got) == 1, f"credentials_identifier + include_credential returned {len(got)}")
        pw = (got[0].credentials or {}).get("password")
        expect(
            pw is not None and (pw.config or {}).get("hashed_password") == BCRYPT_HASH,
            f"credentials_identifier + include_credential=[password]: config {pw.config if pw else None!r}",
        )
        ok("list_identities(credentials_identifier, include_credential=[password]) -> hashed_password")

        got = self.ids.list_identities(credentials_identifier=f"nobody-{RUN}@example.com")
        expect(got == [], f"credentials_identifier for an unknown email returned {got!r}")
        ok("list_identities(credentials_identifier=unknown) -> []")

    # ------------------------------------------------------------------ 5. update and JSON Patch
    def test_update(self) -> None:
        addr = email("upd")
        i = self.create(
            CreateIdentityBody(
                schema_id="default",
                traits={"email": addr, "name": {"first": "Before", "last": "Update"}},
                credentials=password_creds(hashed=BCRYPT_HASH),
                metadata_admin={"secret": 1},
                metadata_public={"public": 2},
            ),
            "create for update",
        )
        new_addr = email("upd-new")
        res = self.ids.update_identity_with_http_info(
            i.id,
            update_identity_body=UpdateIdentityBody(
                schema_id="default",
                state="inactive",
                traits={"email": new_addr, "name": {"first": "After", "last": "Update"}},
            ),
        )
        expect(res.status_code == 200, f"update_identity: HTTP {res.status_code}")
        u = res.data
        expect(u.id == i.id, f"update_identity returned id {u.id!r}")
        expect(u.traits == {"email": new_addr, "name": {"first": "After", "last": "Update"}}, f"traits {u.traits!r}")
        expect(u.state == "inactive", f"state {u.state!r}, expected 'inactive'")
        expect(u.metadata_admin is None, f"metadata_admin omitted in PUT should be cleared, got {u.metadata_admin!r}")
        expect(u.metadata_public is None, f"metadata_public omitted in PUT should be cleared, got {u.metadata_public!r}")
        expect(
            u.state_changed_at is not None and i.state_changed_at is not None and u.state_changed_at > i.state_changed_at,
            f"state_changed_at did not advance: {i.state_changed_at!r} -> {u.state_changed_at!r}",
        )
        expect(u.updated_at is not None and u.updated_at >= i.updated_at, "updated_at went backwards")
        va = u.verifiable_addresses or []
        expect([a.value for a in va] == [new_addr], f"verifiable_addresses after the email change: {va!r}")
        ra = u.recovery_addresses or []
        expect([a.value for a in ra] == [new_addr], f"recovery_addresses after the email change: {ra!r}")
        ok("update_identity (PUT): traits/email and state=inactive applied, omitted metadata cleared, state_changed_at advanced")

        got = self.ids.get_identity(i.id, include_credential=["password"])
        pw = (got.credentials or {}).get("password")
        expect(pw is not None, "update_identity without credentials dropped the password credential")
        expect(pw.identifiers == [new_addr], f"password identifiers after the email change: {pw.identifiers!r}")
        expect((pw.config or {}).get("hashed_password") == BCRYPT_HASH, "update_identity changed the password hash")
        expect(got.state == "inactive" and got.metadata_admin is None, "get after PUT does not show the update")
        ok("update_identity: password kept, its identifier follows the new email")

        expect(
            self.ids.list_identities(credentials_identifier=addr) == [],
            "the old email still finds the identity by credentials_identifier",
        )
        ok("update_identity: the old email no longer identifies the identity")

        before = got
        patched = self.ids.patch_identity(
            i.id,
            json_patch=[
                JsonPatch(op="replace", path="/traits/name/first", value="Patched"),
                JsonPatch(op="add", path="/metadata_public", value={"patched": True}),
                JsonPatch(op="replace", path="/state", value="active"),
            ],
        )
        expect(patched.id == i.id, f"patch_identity returned id {patched.id!r}")
        expect(patched.traits["name"]["first"] == "Patched", f"traits after patch {patched.traits!r}")
        expect(patched.traits["email"] == new_addr, f"patch changed the email: {patched.traits!r}")
        expect(patched.metadata_public == {"patched": True}, f"metadata_public after patch {patched.metadata_public!r}")
        expect(patched.state == "active", f"state after patch {patched.state!r}")
        expect(
            patched.state_changed_at is not None and patched.state_changed_at > before.state_changed_at,
            f"state_changed_at did not advance on the patched state change: {before.state_changed_at!r} -> {patched.state_changed_at!r}",
        )
        got = self.ids.get_identity(i.id)
        expect(
            got.traits["name"]["first"] == "Patched" and got.metadata_public == {"patched": True} and got.state == "active",
            f"get after patch does not show it: {got!r}",
        )
        ok("patch_identity (JSON Patch replace/add/replace) applied and persisted")

        expect_api_error(
            "patch_identity replacing /id",
            400,
            lambda: self.ids.patch_identity(
                i.id, json_patch=[JsonPatch(op="replace", path="/id", value=str(uuid.uuid4()))]
            ),
        )
        still = self.ids.get_identity(i.id)
        expect(still.id == i.id and still.traits == got.traits, "the forbidden patch changed the identity")
        ok("patch_identity on /id -> 400, identity unchanged")

        expect_api_error(
            "patch_identity making traits invalid",
            400,
            lambda: self.ids.patch_identity(
                i.id, json_patch=[JsonPatch(op="replace", path="/traits/email", value="not an email")]
            ),
        )
        ok("patch_identity producing invalid traits -> 400")

    # ------------------------------------------------------------------ 6. batch create
    def test_batch(self) -> None:
        pids = [str(uuid.uuid4()) for _ in range(4)]
        a0, a1, a3 = email("batch0"), email("batch1"), email("batch3")
        body = PatchIdentitiesBody(
            identities=[
                IdentityPatch(
                    patch_id=pids[0],
                    create=CreateIdentityBody(
                        schema_id="default",
                        traits={"email": a0},
                        credentials=password_creds(hashed=ARGON2ID_HASH),
                    ),
                ),
                IdentityPatch(
                    patch_id=pids[1],
                    create=CreateIdentityBody(schema_id="default", traits={"email": a1}, metadata_public={"b": 1}),
                ),
                IdentityPatch(
                    patch_id=pids[2],
                    create=CreateIdentityBody(schema_id="default", traits={"email": "not an email"}),
                ),
                IdentityPatch(
                    patch_id=pids[3],
                    create=CreateIdentityBody(schema_id="default", traits={"email": a3}),
                ),
            ]
        )
        res = self.ids.batch_patch_identities_with_http_info(patch_identities_body=body)
        expect(res.status_code == 200, f"batch_patch_identities: HTTP {res.status_code}")
        items = res.data.identities or []
        expect(len(items) == 4, f"batch_patch_identities: {len(items)} results for 4 patches: {items!r}")
        actions = [it.action for it in items]
        expect(actions == ["create", "create", "error", "create"], f"batch actions {actions!r}")
        expect([it.patch_id for it in items] == pids, f"batch patch_ids {[it.patch_id for it in items]!r}, expected {pids!r}")
        expect(items[2].identity is None, f"the failed item carries an identity id: {items[2].identity!r}")
        expect(items[2].error is not None, "the failed item has no error")
        ok("batch_patch_identities: per-item actions create/create/error/create in order, patch_ids echoed")

        for idx, addr in ((0, a0), (1, a1), (3, a3)):
            iid = items[idx].identity
            expect(iid, f"batch item {idx}: no identity id")
            got = self.ids.get_identity(iid, include_credential=["password"])
            expect(got.traits == {"email": addr}, f"batch item {idx}: traits {got.traits!r}")
            if idx == 0:
                pw = (got.credentials or {}).get("password")
                expect(
                    pw is not None and (pw.config or {}).get("hashed_password") == ARGON2ID_HASH,
                    f"batch item 0: imported hash not stored: {got.credentials!r}",
                )
            if idx == 1:
                expect(got.metadata_public == {"b": 1}, f"batch item 1: metadata_public {got.metadata_public!r}")
        ok("batch_patch_identities: created identities are stored as sent")

    # ------------------------------------------------------------------ 7. credentials and deletion
    def test_delete(self) -> None:
        i = self.create(
            CreateIdentityBody(
                schema_id="default",
                traits={"email": email("del")},
                credentials=password_creds(hashed=PBKDF2_SHA256_HASH),
            ),
            "create for deletion",
        )
        expect_api_error(
            "delete_identity_credentials(password) on the only first factor",
            400,
            lambda: self.ids.delete_identity_credentials(i.id, "password"),
        )
        got = self.ids.get_identity(i.id, include_credential=["password"])
        expect(
            (got.credentials or {}).get("password") is not None,
            "the refused credential deletion removed the password anyway",
        )
        ok("delete_identity_credentials(password) when it is the last first factor -> 400, credential kept")

        expect_api_error(
            "delete_identity_credentials(totp) when there is none",
            404,
            lambda: self.ids.delete_identity_credentials(i.id, "totp"),
        )
        ok("delete_identity_credentials(totp) that does not exist -> 404")

        expect_api_error(
            "delete_identity_credentials on an unknown identity",
            404,
            lambda: self.ids.delete_identity_credentials(str(uuid.uuid4()), "password"),
        )
        ok("delete_identity_credentials on an unknown identity -> 404")

        res = self.ids.delete_identity_with_http_info(i.id)
        expect(res.status_code == 204, f"delete_identity: HTTP {res.status_code}, expected 204")
        ok("delete_identity -> 204")

        expect_api_error("get_identity after delete", 404, lambda: self.ids.get_identity(i.id))
        ok("get_identity after delete -> 404")

        expect_api_error("delete_identity twice", 404, lambda: self.ids.delete_identity(i.id))
        ok("delete_identity of a deleted identity -> 404")

        ext = f"ext-{RUN}-del"
        j = self.create_simple("del2", external_id=ext)
        self.ids.delete_identity(j.id)
        expect_api_error("get_identity_by_external_id after delete", 404, lambda: self.ids.get_identity_by_external_id(ext))
        expect(self.ids.list_identities(ids=[j.id]) == [], "a deleted identity is still listed by ids")
        ok("deleted identities disappear from get-by-external-id and list(ids)")

    # ------------------------------------------------------------------ raw-HTTP checks
    def test_raw(self) -> None:
        status, _, body = raw_request("GET", f"{self.admin_url}/admin/identities/not-a-uuid")
        # Kratos answers a malformed id as an unknown one.
        expect(status == 404, f"raw GET /admin/identities/not-a-uuid: HTTP {status} {body[:300]!r}")
        err = ErrorGeneric.from_json(body.decode())
        expect(err.error.code == 404, f"raw malformed id: error.code {err.error.code!r}")
        ok("raw GET /admin/identities/not-a-uuid -> 404 with a Kratos error body")

        status, _, body = raw_request(
            "POST", f"{self.admin_url}/admin/identities", body={"schema_id": "default", "traits": "nope"}
        )
        expect(status == 400, f"raw POST with traits as a string: HTTP {status} {body[:300]!r}")
        ErrorGeneric.from_json(body.decode())
        ok("raw POST /admin/identities with non-object traits -> 400 with a Kratos error body")

    SECTIONS = [
        ("metadata (admin)", "test_metadata"),
        ("identity schemas (public)", "test_schemas"),
        ("1. create with a plaintext password", "test_create_plaintext"),
        ("2. imported password hashes", "test_import_hashes"),
        ("3. error statuses", "test_errors"),
        ("4. list, pagination and filters", "test_list"),
        ("5. update and JSON Patch", "test_update"),
        ("6. batch create", "test_batch"),
        ("7. credentials and deletion", "test_delete"),
        ("raw HTTP checks", "test_raw"),
    ]


def run_sections(suite: Any, sections: List[tuple[str, str]], keep_going: bool, label: str = "sdk") -> int:
    """Run `suite`'s sections in order, one `== title` header each; returns the exit status.

    Shared with sessions.py so both scripts report failures the same way.
    """
    failed: List[str] = []
    passed = 0
    for title, method in sections:
        print(f"== {title}", flush=True)
        try:
            getattr(suite, method)()
            passed += 1
        except CheckFailed as e:
            print(f"FAIL  {title}: {e}", flush=True)
            failed.append(title)
        except ApiException as e:
            print(f"FAIL  {title}: unexpected API error: {describe_api_exception(e)}", flush=True)
            failed.append(title)
        except pydantic.ValidationError as e:
            print(f"FAIL  {title}: the SDK rejected a response shape:\n{e}", flush=True)
            traceback.print_exc()
            failed.append(title)
        except Exception as e:  # noqa: BLE001 - report anything else the same way
            print(f"FAIL  {title}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc()
            failed.append(title)
        if failed and not keep_going:
            break
    skipped = len(sections) - passed - len(failed)
    print(f"{label}: {passed} passed, {len(failed)} failed" + (f", {skipped} skipped" if skipped else ""))
    if failed:
        print(f"{label}: failing sections: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin", required=True, help="admin base URL, e.g. http://127.0.0.1:4434")
    ap.add_argument("--public", required=True, help="public base URL, e.g. http://127.0.0.1:4433")
    ap.add_argument("--keep-going", action="store_true", help="run every section and report all failures")
    args = ap.parse_args()

    return run_sections(Suite(args.admin, args.public), Suite.SECTIONS, args.keep_going)


if __name__ == "__main__":
    sys.exit(main())
