#!/usr/bin/env python3
"""SDK compatibility test for sessions: the official Ory Kratos Python SDK against Portcullis.

There is no login flow yet, so sessions are issued with the CLI, which writes them straight
into the database the server uses:

    DSN=... portcullis sessions issue <IDENTITY_ID> --config <FILE>
    -> {"session_id": "...", "session_token": "ory_st_..."}

Run it through `tests/sdk/run.sh` (after identities.py), which passes the binary, the config
file and the DSN of the server it started:

    DSN=sqlite://... python tests/sdk/sessions.py --admin http://127.0.0.1:4434 \\
        --public http://127.0.0.1:4433 --bin target/debug/portcullis --config config.yml

Whoami, the self-service session endpoints (FrontendApi, public listener, X-Session-Token)
and the admin session endpoints (IdentityApi, admin listener) are checked. Cookies are not:
the session cookie is sealed server-side, so the test cannot forge one. Same reporting as
identities.py: one line per check, stop at the first failure unless `--keep-going`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import uuid
from typing import List, Optional, Set

from ory_kratos_client import ApiClient, Configuration
from ory_kratos_client.api.frontend_api import FrontendApi
from ory_kratos_client.api.identity_api import IdentityApi
from ory_kratos_client.models.create_identity_body import CreateIdentityBody
from ory_kratos_client.models.delete_my_sessions_count import DeleteMySessionsCount
from ory_kratos_client.models.identity import Identity
from ory_kratos_client.models.json_patch import JsonPatch
from ory_kratos_client.models.session import Session
from ory_kratos_client.models.update_identity_body import UpdateIdentityBody

from identities import (
    BCRYPT_HASH,
    CheckFailed,
    email,
    expect,
    expect_api_error,
    header,
    ok,
    parse_link_header,
    password_creds,
    query_param,
    run_sections,
)

# Kratos' `error.reason` for whoami without a usable session (any cause: unknown token, revoked or
# expired session, disabled or deleted identity).
NO_SESSION_REASON = "No valid session credentials found in the request."


class Sessions:
    def __init__(self, admin: str, public: str, binary: str, config: str, dsn: str):
        self.admin_url = admin.rstrip("/")
        self.public_url = public.rstrip("/")
        self.binary = binary
        self.config = config
        self.dsn = dsn
        self.ids = IdentityApi(ApiClient(Configuration(host=self.admin_url)))
        self.front = FrontendApi(ApiClient(Configuration(host=self.public_url)))

    # ------------------------------------------------------------------ helpers
    def identity(self, tag: str) -> Identity:
        res = self.ids.create_identity_with_http_info(
            create_identity_body=CreateIdentityBody(
                schema_id="default",
                traits={"email": email(tag), "name": {"first": "Sess", "last": tag}},
                credentials=password_creds(hashed=BCRYPT_HASH),
            )
        )
        expect(res.status_code == 201, f"create identity {tag}: HTTP {res.status_code}")
        return res.data

    def issue(self, identity_id: str) -> tuple[str, str]:
        """`portcullis sessions issue`: returns (session_id, session_token)."""
        cmd = [self.binary, "sessions", "issue", identity_id, "--config", self.config]
        try:
            proc = subprocess.run(
                cmd,
                env={**os.environ, "DSN": self.dsn},
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"`{' '.join(cmd)}` did not finish within 60 s")
        expect(
            proc.returncode == 0,
            f"`{' '.join(cmd)}` exited {proc.returncode}; stdout {proc.stdout!r}; stderr {proc.stderr!r}",
        )
        lines = [l for l in proc.stdout.splitlines() if l.strip()]
        expect(lines, f"`sessions issue` printed nothing; stderr {proc.stderr!r}")
        try:
            out = json.loads(lines[-1])
        except ValueError as e:
            raise CheckFailed(f"`sessions issue` printed no JSON line ({e}): {proc.stdout!r}")
        sid, token = out.get("session_id"), out.get("session_token")
        expect(
            isinstance(sid, str) and isinstance(token, str) and token.startswith("ory_st_"),
            f"`sessions issue` printed {out!r}, expected session_id and an ory_st_ session_token",
        )
        return sid, token

    def whoami(self, token: str, what: str) -> Session:
        res = self.front.to_session_with_http_info(x_session_token=token)
        expect(res.status_code == 200, f"{what}: HTTP {res.status_code}")
        expect(isinstance(res.data, Session), f"{what}: the SDK did not return a Session: {res.data!r}")
        return res.data

    def expect_no_session(self, what: str, token: str, reason: Optional[str] = NO_SESSION_REASON) -> None:
        """to_session(token) must answer 401 with a Kratos error body (and `reason`)."""
        err = expect_api_error(what, 401, lambda: self.front.to_session(x_session_token=token))
        if reason is not None:
            expect(
                err.error.reason == reason,
                f"{what}: error.reason {err.error.reason!r}, expected {reason!r}",
            )

    def page_all_sessions(self, page_size: int) -> tuple[List[Session], int]:
        """Page through IdentityApi.list_sessions(expand=identity) via Link rel="next"."""
        seen: List[Session] = []
        token: Optional[str] = None
        pages = 0
        while True:
            pages += 1
            expect(pages <= 500, "list_sessions pagination did not terminate after 500 pages")
            res = self.ids.list_sessions_with_http_info(page_size=page_size, page_token=token, expand=["identity"])
            expect(res.status_code == 200, f"list_sessions page {pages}: HTTP {res.status_code}")
            page = res.data
            expect(isinstance(page, list), f"list_sessions page {pages}: not a list: {page!r}")
            expect(len(page) <= page_size, f"list_sessions page {pages}: {len(page)} items with page_size={page_size}")
            link_value = header(res.headers, "Link")
            links = parse_link_header(link_value)
            expect("first" in links, f"list_sessions page {pages}: Link header without rel=\"first\": {link_value!r}")
            seen.extend(page)
            if "next" not in links:
                break
            expect(page, f"list_sessions page {pages}: empty page but a rel=\"next\" link: {link_value!r}")
            token = query_param(links["next"], "page_token")
            expect(token, f"list_sessions page {pages}: rel=\"next\" link without page_token: {links['next']!r}")
            expect(
                query_param(links["next"], "page_size") in (None, str(page_size)),
                f"list_sessions page {pages}: rel=\"next\" link changes page_size: {links['next']!r}",
            )
            expect(
                query_param(links["next"], "expand") == "identity",
                f"list_sessions page {pages}: rel=\"next\" link drops expand=identity: {links['next']!r}",
            )
        return seen, pages

    # ------------------------------------------------------------------ 1. whoami
    def test_whoami(self) -> None:
        i = self.identity("whoami")
        sid, token = self.issue(i.id)
        ok("portcullis sessions issue -> session_id and an ory_st_ token")

        res = self.front.to_session_with_http_info(x_session_token=token)
        expect(res.status_code == 200, f"to_session: HTTP {res.status_code}")
        s = res.data
        expect(isinstance(s, Session), f"to_session: the SDK did not return a Session: {s!r}")
        expect(s.id == sid, f"to_session: id {s.id!r}, expected the issued {sid!r}")
        expect(s.active is True, f"to_session: active {s.active!r}")
        expect(s.identity is not None and s.identity.id == i.id, f"to_session: identity {s.identity!r}")
        expect(s.identity.traits == i.traits, f"to_session: identity traits {s.identity.traits!r}, expected {i.traits!r}")
        expect(s.identity.schema_id == "default", f"to_session: identity.schema_id {s.identity.schema_id!r}")
        expect(s.authenticator_assurance_level == "aal1", f"to_session: aal {s.authenticator_assurance_level!r}")
        methods = s.authentication_methods or []
        expect(methods and methods[0].method == "password", f"to_session: authentication_methods {methods!r}")
        expect(methods[0].aal == "aal1", f"to_session: authentication_methods[0].aal {methods[0].aal!r}")
        expect(methods[0].completed_at is not None, "to_session: authentication_methods[0].completed_at missing")
        expect(isinstance(s.devices, list) and len(s.devices) >= 1, f"to_session: devices {s.devices!r}")
        expect(all(d.id for d in s.devices), f"to_session: a device without id: {s.devices!r}")
        expect(
            s.issued_at is not None and s.authenticated_at is not None and s.expires_at is not None,
            f"to_session: timestamps missing: issued_at {s.issued_at!r} authenticated_at {s.authenticated_at!r} expires_at {s.expires_at!r}",
        )
        expect(s.expires_at > s.issued_at, f"to_session: expires_at {s.expires_at!r} is not after issued_at {s.issued_at!r}")
        hid = header(res.headers, "X-Kratos-Authenticated-Identity-Id")
        expect(hid == i.id, f"to_session: X-Kratos-Authenticated-Identity-Id {hid!r}, expected {i.id!r}")
        ok("FrontendApi.to_session(x_session_token) -> Session: id, active, identity, aal1, password method, devices")
        ok("FrontendApi.to_session -> X-Kratos-Authenticated-Identity-Id header")

        again = self.front.to_session(_headers={"Authorization": f"Bearer {token}"})
        expect(again.id == sid, f"to_session with Authorization: Bearer: id {again.id!r}")
        ok("FrontendApi.to_session with Authorization: Bearer <token> -> the same session")

        self.expect_no_session("to_session with a bogus token", "ory_st_" + uuid.uuid4().hex)
        ok(f"FrontendApi.to_session(bogus token) -> 401, ErrorGeneric with reason {NO_SESSION_REASON!r}")

        err = expect_api_error("to_session without credentials", 401, lambda: self.front.to_session())
        expect(err.error.reason == NO_SESSION_REASON, f"to_session without credentials: reason {err.error.reason!r}")
        ok("FrontendApi.to_session() without credentials -> 401")

    # ------------------------------------------------------------------ 2. my sessions (self-service)
    def test_my_sessions(self) -> None:
        i = self.identity("mine")
        (s1, t1), (s2, t2), (s3, t3) = (self.issue(i.id) for _ in range(3))
        for t in (t1, t2, t3):  # warm the server's session cache before revoking
            self.whoami(t, "to_session before revocation")
        ok("issued 3 sessions for one identity, each valid")

        res = self.front.list_my_sessions_with_http_info(x_session_token=t1)
        expect(res.status_code == 200, f"list_my_sessions: HTTP {res.status_code}")
        mine = res.data
        expect(isinstance(mine, list), f"list_my_sessions: not a list: {mine!r}")
        expect(
            sorted(s.id for s in mine) == sorted([s2, s3]),
            f"list_my_sessions: ids {[s.id for s in mine]}, expected the other two {[s2, s3]} (current excluded)",
        )
        for s in mine:
            expect(isinstance(s, Session), f"list_my_sessions: item is not a Session: {s!r}")
            expect(s.identity is not None and s.identity.id == i.id, f"list_my_sessions: session {s.id} identity {s.identity!r}")
            expect(s.active is True, f"list_my_sessions: session {s.id} active {s.active!r}")
        ok("FrontendApi.list_my_sessions -> the 2 other sessions (current excluded), each with identity")

        one = self.front.list_my_sessions(page_size=1, x_session_token=t1)
        expect(len(one) == 1 and one[0].id in (s2, s3), f"list_my_sessions(page_size=1): {[s.id for s in one]}")
        ok("FrontendApi.list_my_sessions(page_size=1) -> 1 session")

        expect_api_error(
            "list_my_sessions with a bogus token",
            401,
            lambda: self.front.list_my_sessions(x_session_token="ory_st_" + uuid.uuid4().hex),
        )
        ok("FrontendApi.list_my_sessions(bogus token) -> 401")

        expect_api_error(
            "disable_my_session on the current session",
            400,
            lambda: self.front.disable_my_session(id=s1, x_session_token=t1),
        )
        self.whoami(t1, "to_session(t1) after refusing to revoke the current session")
        ok("FrontendApi.disable_my_session(current session) -> 400, session kept")

        res = self.front.disable_my_session_with_http_info(id=s2, x_session_token=t1)
        expect(res.status_code == 204, f"disable_my_session: HTTP {res.status_code}, expected 204")
        self.expect_no_session("to_session(t2) after disable_my_session", t2)
        ok("FrontendApi.disable_my_session(other session) -> 204, then to_session(t2) -> 401")

        res = self.front.disable_my_other_sessions_with_http_info(x_session_token=t1)
        expect(res.status_code == 200, f"disable_my_other_sessions: HTTP {res.status_code}")
        count = res.data
        expect(isinstance(count, DeleteMySessionsCount), f"disable_my_other_sessions: not a DeleteMySessionsCount: {count!r}")
        expect(count.count == 1, f"disable_my_other_sessions: count {count.count!r}, expected 1 (only t3 was still active)")
        ok("FrontendApi.disable_my_other_sessions -> DeleteMySessionsCount(count=1)")

        self.expect_no_session("to_session(t3) after disable_my_other_sessions", t3)
        s = self.whoami(t1, "to_session(t1) after disable_my_other_sessions")
        expect(s.id == s1 and s.active is True, f"to_session(t1): {s.id!r} active {s.active!r}")
        ok("after disable_my_other_sessions: to_session(t3) -> 401, to_session(t1) still valid")

        left = self.front.list_my_sessions(x_session_token=t1)
        expect(left == [], f"list_my_sessions after revoking the others: {[s.id for s in left]}")
        ok("FrontendApi.list_my_sessions after revoking the others -> []")

    # ------------------------------------------------------------------ 3. admin session APIs
    def test_admin(self) -> None:
        i = self.identity("admin")
        issued = [self.issue(i.id) for _ in range(3)]
        (s1, t1), (s2, t2), (s3, t3) = issued
        mine: Set[str] = {s for s, _ in issued}
        for _, t in issued:
            self.whoami(t, "to_session before the admin calls")
        ok("issued 3 sessions for one identity")

        seen, pages = self.page_all_sessions(page_size=2)
        ids = [s.id for s in seen]
        dupes = sorted({x for x in ids if ids.count(x) > 1})
        expect(not dupes, f"list_sessions pagination returned ids more than once: {dupes}")
        missing = mine - set(ids)
        expect(not missing, f"list_sessions pagination never returned {sorted(missing)}")
        expect(pages >= 2, f"expected at least 2 pages of 2 for >= 3 sessions, got {pages}")
        for s in seen:
            if s.id in mine:
                expect(
                    s.identity is not None and s.identity.id == i.id,
                    f"list_sessions(expand=identity): session {s.id} identity {s.identity!r}",
                )
        ok(f"IdentityApi.list_sessions(page_size=2, expand=[identity]) paged {pages} pages via Link rel=\"next\": each session once, with identity")

        got = self.ids.get_session(s1, expand=["identity", "devices"])
        expect(isinstance(got, Session) and got.id == s1, f"get_session: {got!r}")
        expect(got.active is True, f"get_session: active {got.active!r}")
        expect(got.identity is not None and got.identity.id == i.id, f"get_session(expand=identity): identity {got.identity!r}")
        expect(isinstance(got.devices, list) and len(got.devices) >= 1, f"get_session(expand=devices): devices {got.devices!r}")
        expect(got.authenticator_assurance_level == "aal1", f"get_session: aal {got.authenticator_assurance_level!r}")
        ok("IdentityApi.get_session(expand=[identity, devices]) -> Session with identity and devices")

        plain = self.ids.get_session(s1)
        expect(plain.id == s1, f"get_session without expand: id {plain.id!r}")
        expect(plain.identity is None, f"get_session without expand still includes the identity: {plain.identity!r}")
        ok("IdentityApi.get_session without expand -> no identity")

        expect_api_error("get_session(unknown)", 404, lambda: self.ids.get_session(str(uuid.uuid4())))
        ok("IdentityApi.get_session(unknown id) -> 404")

        before = got.expires_at
        res = self.ids.extend_session_with_http_info(s1)
        expect(res.status_code == 200, f"extend_session: HTTP {res.status_code}, expected 200 with a Session")
        ext = res.data
        expect(isinstance(ext, Session) and ext.id == s1, f"extend_session: {ext!r}")
        expect(
            ext.expires_at is not None and ext.expires_at >= before,
            f"extend_session: expires_at {ext.expires_at!r} is earlier than before ({before!r})",
        )
        self.whoami(t1, "to_session(t1) after extend_session")
        ok("IdentityApi.extend_session -> Session, same id, expires_at not earlier")

        expect_api_error("extend_session(unknown)", 404, lambda: self.ids.extend_session(str(uuid.uuid4())))
        ok("IdentityApi.extend_session(unknown id) -> 404")

        res = self.ids.disable_session_with_http_info(s1)
        expect(res.status_code == 204, f"disable_session: HTTP {res.status_code}, expected 204")
        self.expect_no_session("to_session(t1) after disable_session", t1)
        off = self.ids.get_session(s1)
        expect(off.active is False, f"get_session after disable_session: active {off.active!r}")
        ok("IdentityApi.disable_session -> 204, then to_session -> 401 and get_session().active is False")

        active = self.ids.list_identity_sessions(i.id, active=True)
        expect(sorted(s.id for s in active) == sorted([s2, s3]), f"list_identity_sessions(active=True): {[s.id for s in active]}")
        expect(all(s.active is True for s in active), "list_identity_sessions(active=True) lists an inactive session")
        inactive = self.ids.list_identity_sessions(i.id, active=False)
        expect([s.id for s in inactive] == [s1], f"list_identity_sessions(active=False): {[s.id for s in inactive]}")
        every = self.ids.list_identity_sessions(i.id)
        expect(sorted(s.id for s in every) == sorted(mine), f"list_identity_sessions(): {[s.id for s in every]}")
        ok("IdentityApi.list_identity_sessions(active=True/False/unset) -> 2 / 1 / 3 sessions")

        res = self.ids.delete_identity_sessions_with_http_info(i.id)
        expect(res.status_code == 204, f"delete_identity_sessions: HTTP {res.status_code}, expected 204")
        left = self.ids.list_identity_sessions(i.id)
        expect(left == [], f"list_identity_sessions after delete_identity_sessions: {[s.id for s in left]}")
        self.expect_no_session("to_session(t2) after delete_identity_sessions", t2)
        expect_api_error("get_session after delete_identity_sessions", 404, lambda: self.ids.get_session(s3))
        ok("IdentityApi.delete_identity_sessions -> 204; then none listed, to_session -> 401, get_session -> 404")

        expect_api_error(
            "delete_identity_sessions a second time",
            404,
            lambda: self.ids.delete_identity_sessions(i.id),
        )
        ok("IdentityApi.delete_identity_sessions with no sessions left -> 404")

    # ------------------------------------------------------------------ 4. disabling the identity
    def test_identity_state(self) -> None:
        i = self.identity("state")
        sid, token = self.issue(i.id)
        self.whoami(token, "to_session before disabling the identity")
        ok("issued a session; to_session valid")

        patched = self.ids.patch_identity(i.id, json_patch=[JsonPatch(op="replace", path="/state", value="inactive")])
        expect(patched.state == "inactive", f"patch_identity state {patched.state!r}")
        self.expect_no_session("to_session right after disabling the identity", token)
        ok("patch_identity(/state inactive) -> to_session 401 right away")

        patched = self.ids.patch_identity(i.id, json_patch=[JsonPatch(op="replace", path="/state", value="active")])
        expect(patched.state == "active", f"patch_identity state {patched.state!r}")
        s = self.whoami(token, "to_session after re-enabling the identity")
        expect(s.id == sid and s.active is True, f"to_session after re-enabling: {s.id!r} active {s.active!r}")
        expect(s.identity.state == "active", f"to_session after re-enabling: identity.state {s.identity.state!r}")
        ok("patch_identity(/state active) -> the same session is valid again")

        traits = {**i.traits, "name": {"first": "Renamed", "last": "state"}}
        self.ids.update_identity(
            i.id, update_identity_body=UpdateIdentityBody(schema_id="default", state="inactive", traits=traits)
        )
        self.expect_no_session("to_session right after update_identity(state=inactive)", token)
        ok("update_identity (PUT) with state=inactive -> to_session 401 right away")

        self.ids.update_identity(
            i.id, update_identity_body=UpdateIdentityBody(schema_id="default", state="active", traits=traits)
        )
        s = self.whoami(token, "to_session after update_identity(state=active)")
        expect(s.id == sid, f"to_session after update_identity(state=active): id {s.id!r}")
        expect(s.identity.traits == traits, f"to_session after a traits change: stale traits {s.identity.traits!r}")
        ok("update_identity (PUT) with state=active and new traits -> valid again, whoami shows the new traits")

    # ------------------------------------------------------------------ 5. deleting the identity
    def test_identity_deletion(self) -> None:
        i = self.identity("gone")
        sid, token = self.issue(i.id)
        self.whoami(token, "to_session before deleting the identity")
        ok("issued a session; to_session valid")

        res = self.ids.delete_identity_with_http_info(i.id)
        expect(res.status_code == 204, f"delete_identity: HTTP {res.status_code}")
        self.expect_no_session("to_session after deleting the identity", token)
        ok("delete_identity -> its session's to_session 401")

        expect_api_error("get_session of a deleted identity's session", 404, lambda: self.ids.get_session(sid))
        ok("IdentityApi.get_session of a deleted identity's session -> 404")

    SECTIONS = [
        ("sessions 1. whoami", "test_whoami"),
        ("sessions 2. my sessions (self-service)", "test_my_sessions"),
        ("sessions 3. admin session APIs", "test_admin"),
        ("sessions 4. disabling the identity", "test_identity_state"),
        ("sessions 5. deleting the identity", "test_identity_deletion"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin", required=True, help="admin base URL, e.g. http://127.0.0.1:4434")
    ap.add_argument("--public", required=True, help="public base URL, e.g. http://127.0.0.1:4433")
    ap.add_argument("--bin", required=True, help="the portcullis binary, for `sessions issue`")
    ap.add_argument("--config", required=True, help="the server's config file")
    ap.add_argument("--dsn", default=os.environ.get("DSN"), help="the server's DSN (default: $DSN)")
    ap.add_argument("--keep-going", action="store_true", help="run every section and report all failures")
    args = ap.parse_args()
    if not args.dsn:
        ap.error("no DSN: pass --dsn or set DSN to the server's database")

    suite = Sessions(args.admin, args.public, args.bin, args.config, args.dsn)
    return run_sections(suite, Sessions.SECTIONS, args.keep_going, label="sdk sessions")


if __name__ == "__main__":
    raise SystemExit(main())
