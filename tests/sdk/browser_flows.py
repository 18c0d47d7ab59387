#!/usr/bin/env python3
"""SDK compatibility test for the browser self-service flows in JSON (SPA) mode: the official Ory
Kratos Python SDK against Portcullis.

Registration, login and logout with the password method through FrontendApi on the public listener,
the way a server-side rendered app or an SPA drives Kratos: the SDK sends `Accept: application/json`
and the script plays the browser with a small cookie jar (every `Set-Cookie` is kept, a cookie with
`Max-Age<=0` or an empty value is dropped, and the jar goes back as the `cookie=` argument the SDK's
FrontendApi methods take; create_browser_registration_flow has no such parameter in SDK 25.4, so it
gets the Cookie header through `_headers`). Set-Cookie headers are read from the raw urllib3 response
(RecordingApiClient), since ApiResponse.headers keeps only one of several. Each section uses its own
jar(s), so sections are independent. Run it through `tests/sdk/run.sh` (after native_flows.py), whose
config enables the registration session hook and turns off the Have I Been Pwned look-up:

    python tests/sdk/browser_flows.py --admin http://127.0.0.1:4434 --public http://127.0.0.1:4433

Responses are parsed with the SDK models (RegistrationFlow, LoginFlow, SuccessfulNativeRegistration,
SuccessfulNativeLogin, Session, LogoutFlow, FlowError); non-2xx answers are checked through
`ApiException.status` and the JSON body (ErrorGeneric, or the flow for 400 form errors). Same
reporting as identities.py: one line per check, stop at the first failure unless `--keep-going`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, TypeVar

from ory_kratos_client import ApiClient, Configuration
from ory_kratos_client.api.frontend_api import FrontendApi
from ory_kratos_client.api.identity_api import IdentityApi
from ory_kratos_client.rest import RESTResponse
from ory_kratos_client.models.continue_with_redirect_browser_to import (
    ContinueWithRedirectBrowserTo,
)
from ory_kratos_client.models.create_identity_body import CreateIdentityBody
from ory_kratos_client.models.error_generic import ErrorGeneric
from ory_kratos_client.models.flow_error import FlowError
from ory_kratos_client.models.login_flow import LoginFlow
from ory_kratos_client.models.logout_flow import LogoutFlow
from ory_kratos_client.models.registration_flow import RegistrationFlow
from ory_kratos_client.models.session import Session
from ory_kratos_client.models.successful_native_login import SuccessfulNativeLogin
from ory_kratos_client.models.successful_native_registration import (
    SuccessfulNativeRegistration,
)
from ory_kratos_client.models.update_login_flow_body import UpdateLoginFlowBody
from ory_kratos_client.models.update_login_flow_with_password_method import (
    UpdateLoginFlowWithPasswordMethod,
)
from ory_kratos_client.models.update_registration_flow_body import UpdateRegistrationFlowBody
from ory_kratos_client.models.update_registration_flow_with_password_method import (
    UpdateRegistrationFlowWithPasswordMethod,
)

from identities import (
    PASSWORD,
    CheckFailed,
    email,
    expect,
    expect_api_error,
    header,
    ok,
    password_creds,
    query_param,
    run_sections,
)
from native_flows import (
    MSG_INVALID_CREDENTIALS,
    WRONG_PASSWORD,
    expect_flow_error,
    input_name,
    node_named,
)
from sessions import NO_SESSION_REASON

SESSION_COOKIE = "ory_kratos_session"
CSRF_COOKIE_RE = re.compile(r"^csrf_token_[0-9a-f]{64}$")
CSRF_VIOLATION = "security_csrf_violation"
SESSION_ALREADY_AVAILABLE = "session_already_available"
RETURN_TO_FORBIDDEN = "self_service_flow_return_to_forbidden"
EVIL_RETURN_TO = "https://evil.example/"
MSG_REFRESH = 1010003  # "Please confirm this action by verifying that it is you." (refresh login flows)

# A Set-Cookie header holding several cookies joined with ", " is split again before each "name=" (an
# Expires date's ", 21 Oct ..." is not followed by a "name=").
SET_COOKIE_SPLIT = re.compile(r",\s*(?=[^;,=\s]+=)")

R = TypeVar("R")


# ---------------------------------------------------------------------- cookie jar
@dataclass
class SetCookie:
    name: str
    value: str
    attrs: Dict[str, str] = field(default_factory=dict)  # lower-cased attribute names; flags map to ""

    @property
    def deletes(self) -> bool:
        max_age = self.attrs.get("max-age")
        if self.value == "":
            return True
        try:
            return max_age is not None and int(max_age) <= 0
        except ValueError:
            return False

    def __str__(self) -> str:
        attrs = "; ".join(k if v == "" else f"{k}={v}" for k, v in self.attrs.items())
        return f"{self.name}={self.value}" + (f"; {attrs}" if attrs else "")


class RecordingApiClient(ApiClient):
    """An ApiClient that keeps the raw response of its latest call.

    ApiResponse.headers is a plain dict built from the urllib3 headers, which keeps only the last of
    several Set-Cookie headers; the raw response's HTTPHeaderDict has them all (`getlist`)."""

    last_response: Optional[RESTResponse] = None

    def call_api(self, *args: Any, **kwargs: Any) -> RESTResponse:
        self.last_response = None
        self.last_response = super().call_api(*args, **kwargs)
        return self.last_response


def set_cookie_headers(headers: Any) -> List[str]:
    """Every Set-Cookie header of a response (an urllib3 HTTPHeaderDict, or a plain mapping)."""
    if not headers:
        return []
    if hasattr(headers, "getlist"):
        raw = list(headers.getlist("Set-Cookie"))
    else:
        v = header(dict(headers), "Set-Cookie")
        raw = [v] if v else []
    return [part for v in raw for part in SET_COOKIE_SPLIT.split(v)]


def cookie_headers(cookie: Optional[str]) -> Optional[Dict[str, str]]:
    """`_headers` for the SDK methods without a `cookie` parameter (create_browser_registration_flow)."""
    return {"Cookie": cookie} if cookie else None


def parse_set_cookie(raw: str) -> SetCookie:
    parts = [p.strip() for p in raw.split(";")]
    name, _, value = parts[0].partition("=")
    attrs: Dict[str, str] = {}
    for p in parts[1:]:
        if not p:
            continue
        k, _, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip()
    return SetCookie(name.strip(), value.strip().strip('"'), attrs)


class Browser:
    """A cookie jar standing in for one browser: name -> value, fed from every response."""

    def __init__(self, label: str, client: RecordingApiClient):
        self.label = label
        self.client = client
        self.cookies: Dict[str, str] = {}
        self.last_set: Dict[str, SetCookie] = {}  # the Set-Cookie headers of the latest response

    def absorb(self, headers: Any) -> Dict[str, SetCookie]:
        self.last_set = {}
        for raw in set_cookie_headers(headers):
            c = parse_set_cookie(raw)
            self.last_set[c.name] = c
            if c.deletes:
                self.cookies.pop(c.name, None)
            else:
                self.cookies[c.name] = c.value
        return self.last_set

    @property
    def cookie(self) -> Optional[str]:
        """The Cookie header this browser sends (None when the jar is empty)."""
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items()) or None

    def csrf_cookie(self) -> tuple[str, str]:
        names = [n for n in self.cookies if n.startswith("csrf_token")]
        expect(len(names) == 1, f"{self.label}: expected exactly one CSRF cookie in the jar, have {sorted(self.cookies)}")
        return names[0], self.cookies[names[0]]

    def call(self, fn: Callable[[], R]) -> R:
        """Run one SDK call through the recording client, keeping the cookies it sets, also on errors."""
        self.client.last_response = None
        try:
            return fn()
        finally:
            raw = self.client.last_response
            self.absorb(raw.getheaders() if raw is not None else None)


# ---------------------------------------------------------------------- helpers
def b64decode_std(what: str, value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise CheckFailed(f"{what}: not standard base64 ({e}): {value!r}")


def unmask_csrf(what: str, masked: str) -> bytes:
    """The nosurf masked token: base64(pad(32) || token XOR pad) -> token."""
    raw = b64decode_std(what, masked)
    expect(len(raw) == 64, f"{what}: the masked CSRF token decodes to {len(raw)} bytes, expected 64: {masked!r}")
    pad, xored = raw[:32], raw[32:]
    return bytes(a ^ b for a, b in zip(pad, xored))


def csrf_value(flow: Any, what: str) -> str:
    node = node_named(flow, "csrf_token")
    expect(node is not None, f"{what}: no csrf_token node among {[input_name(n) for n in flow.ui.nodes]}")
    attrs = node.attributes.actual_instance
    expect(attrs.type == "hidden", f"{what}: csrf_token node type {attrs.type!r}, expected 'hidden'")
    expect(isinstance(attrs.value, str) and attrs.value, f"{what}: csrf_token node value {attrs.value!r}")
    return attrs.value


def expect_error_id(err: ErrorGeneric, want: str, what: str) -> None:
    expect(err.error.id == want, f"{what}: error.id {err.error.id!r}, expected {want!r}; error {err.error.to_dict()!r}")


def redirect_items(result: Any) -> List[ContinueWithRedirectBrowserTo]:
    items = [c.actual_instance for c in (result.continue_with or [])]
    return [c for c in items if isinstance(c, ContinueWithRedirectBrowserTo)]


def expect_browser_flow(flow: Any, what: str, public_url: str, kind: str) -> None:
    """Checks shared by every browser flow freshly created or fetched."""
    expect(flow.type == "browser", f"{what}: type {flow.type!r}, expected 'browser'")
    expect(uuid.UUID(flow.id), f"{what}: id is not a UUID: {flow.id!r}")
    expect(flow.expires_at > flow.issued_at, f"{what}: expires_at {flow.expires_at!r} not after issued_at {flow.issued_at!r}")
    expect(flow.ui.method == "POST", f"{what}: ui.method {flow.ui.method!r}, expected 'POST'")
    action = f"{public_url}/self-service/{kind}?flow={flow.id}"
    expect(flow.ui.action == action, f"{what}: ui.action {flow.ui.action!r}, expected {action!r}")


class BrowserFlows:
    def __init__(self, admin: str, public: str):
        self.admin_url = admin.rstrip("/")
        self.public_url = public.rstrip("/")
        self.ids = IdentityApi(ApiClient(Configuration(host=self.admin_url)))
        self.client = RecordingApiClient(Configuration(host=self.public_url))
        self.front = FrontendApi(self.client)

    # ------------------------------------------------------------------ helpers
    def browser(self, label: str = "browser") -> Browser:
        return Browser(label, self.client)

    @staticmethod
    def traits(addr: str, last: str) -> Dict[str, Any]:
        return {"email": addr, "name": {"first": "Browser", "last": last}}

    def make_identity(self, tag: str) -> tuple[str, str]:
        """An identity with PASSWORD, created through the admin API: returns (email, id)."""
        addr = email(tag)
        body = CreateIdentityBody(schema_id="default", traits=self.traits(addr, tag), credentials=password_creds(PASSWORD))
        ident = self.ids.create_identity(create_identity_body=body)
        return addr, ident.id

    def new_registration_flow(self, b: Browser, what: str, **kw: Any) -> RegistrationFlow:
        res = b.call(lambda: self.front.create_browser_registration_flow_with_http_info(_headers=cookie_headers(b.cookie), **kw))
        expect(res.status_code == 200, f"{what}: HTTP {res.status_code}, expected 200")
        expect(isinstance(res.data, RegistrationFlow), f"{what}: not a RegistrationFlow: {res.data!r}")
        expect_browser_flow(res.data, what, self.public_url, "registration")
        return res.data

    def new_login_flow(self, b: Browser, what: str, **kw: Any) -> LoginFlow:
        res = b.call(lambda: self.front.create_browser_login_flow_with_http_info(cookie=b.cookie, **kw))
        expect(res.status_code == 200, f"{what}: HTTP {res.status_code}, expected 200")
        expect(isinstance(res.data, LoginFlow), f"{what}: not a LoginFlow: {res.data!r}")
        expect_browser_flow(res.data, what, self.public_url, "login")
        return res.data

    def register_call(
        self, b: Browser, flow_id: str, csrf: Optional[str], traits: Dict[str, Any], password: str, cookie: Any = "jar"
    ) -> Callable[[], Any]:
        body = UpdateRegistrationFlowBody(
            UpdateRegistrationFlowWithPasswordMethod(method="password", csrf_token=csrf, traits=traits, password=password)
        )
        return lambda: b.call(
            lambda: self.front.update_registration_flow_with_http_info(
                flow=flow_id, update_registration_flow_body=body, cookie=b.cookie if cookie == "jar" else cookie
            )
        )

    def login_call(
        self, b: Browser, flow_id: str, csrf: Optional[str], identifier: str, password: str, cookie: Any = "jar"
    ) -> Callable[[], Any]:
        body = UpdateLoginFlowBody(
            UpdateLoginFlowWithPasswordMethod(method="password", csrf_token=csrf, identifier=identifier, password=password)
        )
        return lambda: b.call(
            lambda: self.front.update_login_flow_with_http_info(
                flow=flow_id, update_login_flow_body=body, cookie=b.cookie if cookie == "jar" else cookie
            )
        )

    def login(self, b: Browser, addr: str, what: str) -> SuccessfulNativeLogin:
        """A complete browser login in `b` (fresh login flow, correct password)."""
        flow = self.new_login_flow(b, f"{what}: create_browser_login_flow")
        res = self.login_call(b, flow.id, csrf_value(flow, what), addr, PASSWORD)()
        expect(res.status_code == 200, f"{what}: update_login_flow HTTP {res.status_code}")
        expect(isinstance(res.data, SuccessfulNativeLogin), f"{what}: not a SuccessfulNativeLogin: {res.data!r}")
        expect(SESSION_COOKIE in b.cookies, f"{what}: no {SESSION_COOKIE} cookie after login; Set-Cookie {list(map(str, b.last_set.values()))}")
        return res.data

    def whoami(self, b: Browser, what: str, cookie: Any = "jar") -> Session:
        res = b.call(lambda: self.front.to_session_with_http_info(cookie=b.cookie if cookie == "jar" else cookie))
        expect(res.status_code == 200, f"{what}: HTTP {res.status_code}")
        expect(isinstance(res.data, Session), f"{what}: the SDK did not return a Session: {res.data!r}")
        return res.data

    def expect_no_session(self, b: Browser, what: str, cookie: Optional[str]) -> None:
        err = expect_api_error(what, 401, lambda: b.call(lambda: self.front.to_session(cookie=cookie)))
        expect(err.error.reason == NO_SESSION_REASON, f"{what}: error.reason {err.error.reason!r}, expected {NO_SESSION_REASON!r}")

    def expect_csrf_violation(self, what: str, fn: Callable[[], Any]) -> ErrorGeneric:
        err = expect_api_error(what, 403, fn)
        expect_error_id(err, CSRF_VIOLATION, what)
        reason = (err.error.details or {}).get("reject_reason")
        expect(isinstance(reason, str) and reason, f"{what}: error.details.reject_reason {reason!r}; details {err.error.details!r}")
        return err

    def expect_session_cookie(self, b: Browser, what: str) -> SetCookie:
        c = b.last_set.get(SESSION_COOKIE)
        expect(c is not None, f"{what}: no Set-Cookie {SESSION_COOKIE}; Set-Cookie headers {list(map(str, b.last_set.values()))}")
        expect(c.value and not c.deletes, f"{what}: {SESSION_COOKIE} cookie is empty or expired: {c}")
        expect("httponly" in c.attrs, f"{what}: {SESSION_COOKIE} cookie is not HttpOnly: {c}")
        expect(c.attrs.get("path") == "/", f"{what}: {SESSION_COOKIE} cookie Path {c.attrs.get('path')!r}, expected '/': {c}")
        return c

    # ------------------------------------------------------------------ 1. registration
    def test_registration(self) -> None:
        b = self.browser()
        res = b.call(lambda: self.front.create_browser_registration_flow_with_http_info())
        expect(res.status_code == 200, f"create_browser_registration_flow: HTTP {res.status_code}")
        flow = res.data
        expect(isinstance(flow, RegistrationFlow), f"create_browser_registration_flow: not a RegistrationFlow: {flow!r}")
        expect_browser_flow(flow, "create_browser_registration_flow", self.public_url, "registration")
        expect(flow.state == "choose_method", f"registration flow state {flow.state!r}, expected 'choose_method'")
        names = {input_name(n) for n in flow.ui.nodes}
        for want in ("csrf_token", "traits.email", "password", "method"):
            expect(want in names, f"registration flow: no {want!r} input node among {sorted(n for n in names if n)}")
        ok("FrontendApi.create_browser_registration_flow -> 200 RegistrationFlow: type browser, choose_method, ui.action, csrf_token/traits.email/password/method nodes")

        csrf = [c for c in b.last_set.values() if c.name.startswith("csrf_token")]
        expect(len(csrf) == 1, f"create_browser_registration_flow: expected one Set-Cookie csrf_token_<hash>, got {list(map(str, b.last_set.values()))}")
        c = csrf[0]
        expect(CSRF_COOKIE_RE.match(c.name), f"CSRF cookie name {c.name!r}, expected csrf_token_<64 hex digits>")
        expect("httponly" in c.attrs, f"CSRF cookie is not HttpOnly: {c}")
        expect(c.attrs.get("path") == "/", f"CSRF cookie Path {c.attrs.get('path')!r}, expected '/': {c}")
        cookie_token = b64decode_std("CSRF cookie value", c.value)
        expect(len(cookie_token) == 32, f"CSRF cookie value decodes to {len(cookie_token)} bytes, expected 32: {c.value!r}")
        masked = csrf_value(flow, "registration flow")
        expect(masked != c.value, "registration flow: the csrf_token node carries the raw cookie value, expected a masked token")
        expect(
            unmask_csrf("registration flow csrf_token", masked) == cookie_token,
            f"registration flow: the csrf_token node {masked!r} does not unmask to the CSRF cookie {c.value!r}",
        )
        ok(f"Set-Cookie {c.name[:20]}…: HttpOnly, Path=/, 32-byte token; the csrf_token node is its 64-byte masked form")

        addr = email("breg")
        traits = self.traits(addr, "breg")
        res = self.register_call(b, flow.id, masked, traits, PASSWORD)()
        expect(res.status_code == 200, f"update_registration_flow: HTTP {res.status_code}")
        reg = res.data
        expect(
            isinstance(reg, SuccessfulNativeRegistration),
            f"update_registration_flow: the SDK did not return a SuccessfulNativeRegistration: {reg!r}",
        )
        expect(reg.session_token is None, f"update_registration_flow (browser): session_token {reg.session_token!r}, expected none for browser flows")
        i = reg.identity
        expect(i is not None and uuid.UUID(i.id), f"registration: identity {i!r}")
        expect(i.traits == traits, f"registration: identity traits {i.traits!r}, expected {traits!r}")
        expect(i.state == "active", f"registration: identity state {i.state!r}")
        s = reg.session
        expect(s is not None, "registration: no session despite the session hook")
        expect(s.active is True and s.identity is not None and s.identity.id == i.id, f"registration: session {s!r}")
        ok("FrontendApi.update_registration_flow(password, csrf_token, cookie) -> 200 {identity, session}, no session_token")

        redirects = redirect_items(reg)
        expect(
            redirects and redirects[0].action == "redirect_browser_to" and redirects[0].redirect_browser_to,
            f"registration: continue_with has no redirect_browser_to item: {[c.actual_instance for c in (reg.continue_with or [])]!r}",
        )
        ok(f"registration: continue_with [redirect_browser_to {redirects[0].redirect_browser_to!r}]")

        self.expect_session_cookie(b, "update_registration_flow")
        rotated = b.last_set.get(c.name)
        expect(
            rotated is not None and rotated.value and rotated.value != c.value,
            f"update_registration_flow: the CSRF cookie was not rotated; Set-Cookie {list(map(str, b.last_set.values()))}",
        )
        ok(f"registration: Set-Cookie {SESSION_COOKIE} (HttpOnly, Path=/) and a rotated CSRF cookie")

        ws = self.whoami(b, "to_session with the registration cookie")
        expect(ws.id == s.id, f"to_session: id {ws.id!r}, expected the registration session {s.id!r}")
        expect(ws.identity is not None and ws.identity.traits.get("email") == addr, f"to_session: identity {ws.identity!r}")
        ok("FrontendApi.to_session(cookie) -> the registration session")

    # ------------------------------------------------------------------ 2. get flows
    def test_get_flows(self) -> None:
        b = self.browser()
        other = self.browser("other browser")
        self.new_registration_flow(other, "create_browser_registration_flow (other browser)")
        reg = self.new_registration_flow(b, "create_browser_registration_flow")
        login = self.new_login_flow(b, "create_browser_login_flow")
        expect(len(b.cookies) == 1, f"two flows in one browser: jar {sorted(b.cookies)}, expected a single CSRF cookie")
        ok("created a registration and a login flow in one browser (one CSRF cookie) and a flow in another")

        for kind, flow, get, model in (
            ("registration", reg, self.front.get_registration_flow_with_http_info, RegistrationFlow),
            ("login", login, self.front.get_login_flow_with_http_info, LoginFlow),
        ):
            what = f"get_{kind}_flow"
            res = b.call(lambda: get(id=flow.id, cookie=b.cookie))
            expect(res.status_code == 200, f"{what} with the cookie: HTTP {res.status_code}")
            got = res.data
            expect(isinstance(got, model) and got.id == flow.id, f"{what} with the cookie: {got!r}")
            expect_browser_flow(got, what, self.public_url, kind)
            expect(
                csrf_value(got, what) == csrf_value(flow, kind),
                f"{what}: csrf_token node {csrf_value(got, what)!r} differs from the one issued {csrf_value(flow, kind)!r}",
            )
            ok(f"FrontendApi.{what}(id, cookie) -> 200, the same {model.__name__} and csrf_token")

            self.expect_csrf_violation(f"{what} without a cookie", lambda: get(id=flow.id))
            ok(f"FrontendApi.{what}(id) without a cookie -> 403 {CSRF_VIOLATION} with details.reject_reason")

            self.expect_csrf_violation(f"{what} with another browser's cookie", lambda: get(id=flow.id, cookie=other.cookie))
            ok(f"FrontendApi.{what}(id, <another browser's CSRF cookie>) -> 403 {CSRF_VIOLATION}")

    # ------------------------------------------------------------------ 3. wrong password
    def test_wrong_password(self) -> None:
        addr, _ = self.make_identity("bwrong")
        ok("created an identity with a password through the admin API")
        b = self.browser()
        flow = self.new_login_flow(b, "create_browser_login_flow")
        expect(flow.state == "choose_method", f"login flow state {flow.state!r}, expected 'choose_method'")
        expect(flow.refresh in (None, False), f"login flow refresh {flow.refresh!r}")
        csrf = csrf_value(flow, "login flow")
        ok("FrontendApi.create_browser_login_flow -> 200 LoginFlow: type browser, choose_method, csrf_token node")

        bad = expect_flow_error(
            "update_login_flow (browser) with a wrong password",
            400,
            LoginFlow,
            self.login_call(b, flow.id, csrf, addr, WRONG_PASSWORD),
        )
        expect(bad.id == flow.id and bad.type == "browser", f"wrong password: flow {bad.id!r} type {bad.type!r}, expected {flow.id!r} browser")
        top = [m.id for m in (bad.ui.messages or [])]
        expect(MSG_INVALID_CREDENTIALS in top, f"wrong password: ui.messages ids {top}, expected {MSG_INVALID_CREDENTIALS}")
        msg = next(m for m in bad.ui.messages if m.id == MSG_INVALID_CREDENTIALS)
        expect(msg.type == "error" and msg.text, f"wrong password: message {msg!r}")
        ident = node_named(bad, "identifier")
        expect(ident is not None and ident.attributes.actual_instance.value == addr, f"wrong password: identifier not echoed: {ident!r}")
        pw_node = node_named(bad, "password")
        expect(
            pw_node is not None and pw_node.attributes.actual_instance.value in (None, ""),
            f"wrong password: the password is echoed: {pw_node!r}",
        )
        csrf_value(bad, "wrong password flow")
        expect(SESSION_COOKIE not in b.cookies, f"wrong password: a session cookie was set: {list(map(str, b.last_set.values()))}")
        ok(f"update_login_flow(wrong password) -> 400, body parses as LoginFlow with ui.messages id {MSG_INVALID_CREDENTIALS}, identifier echoed, password not, no session cookie")

        self.expect_no_session(b, "to_session after the failed login", b.cookie)
        ok("FrontendApi.to_session(cookie) after the failed login -> 401")

    # ------------------------------------------------------------------ 4. CSRF
    def test_csrf(self) -> None:
        addr, _ = self.make_identity("bcsrf")
        b = self.browser()
        other = self.browser("other browser")
        flow = self.new_login_flow(b, "create_browser_login_flow")
        foreign = self.new_login_flow(other, "create_browser_login_flow (other browser)")
        csrf, foreign_csrf = csrf_value(flow, "login flow"), csrf_value(foreign, "other login flow")
        ok("created login flows in two browsers")

        self.expect_csrf_violation("update_login_flow without csrf_token", self.login_call(b, flow.id, None, addr, PASSWORD))
        ok(f"update_login_flow(no csrf_token, with the cookie) -> 403 {CSRF_VIOLATION} with details.reject_reason")

        self.expect_csrf_violation(
            "update_login_flow with another browser's csrf_token", self.login_call(b, flow.id, foreign_csrf, addr, PASSWORD)
        )
        ok(f"update_login_flow(another browser's csrf_token, own cookie) -> 403 {CSRF_VIOLATION}")

        self.expect_csrf_violation(
            "update_login_flow without the CSRF cookie", self.login_call(b, flow.id, csrf, addr, PASSWORD, cookie=None)
        )
        ok(f"update_login_flow(csrf_token, no cookie) -> 403 {CSRF_VIOLATION}")

        self.expect_csrf_violation(
            "update_login_flow with another browser's cookie",
            self.login_call(b, flow.id, csrf, addr, PASSWORD, cookie=other.cookie),
        )
        ok(f"update_login_flow(csrf_token, another browser's cookie) -> 403 {CSRF_VIOLATION}")

        expect(SESSION_COOKIE not in b.cookies, f"a refused login set a session cookie: {sorted(b.cookies)}")
        self.expect_no_session(b, "to_session after the refused logins", b.cookie)
        ok("no session after the refused logins")

        reg = self.new_registration_flow(b, "create_browser_registration_flow")
        raddr = email("bcsrf-reg")
        self.expect_csrf_violation(
            "update_registration_flow without csrf_token",
            self.register_call(b, reg.id, None, self.traits(raddr, "csrf"), PASSWORD),
        )
        self.expect_csrf_violation(
            "update_registration_flow with another browser's csrf_token",
            self.register_call(b, reg.id, foreign_csrf, self.traits(raddr, "csrf"), PASSWORD),
        )
        listed = self.ids.list_identities(credentials_identifier=raddr)
        expect(not listed, f"the refused registrations created identities: {[x.id for x in listed]}")
        ok(f"update_registration_flow(no / another browser's csrf_token) -> 403 {CSRF_VIOLATION}, no identity created")

        res = self.login_call(b, flow.id, csrf, addr, PASSWORD)()
        expect(res.status_code == 200 and isinstance(res.data, SuccessfulNativeLogin), f"login after the refusals: {res!r}")
        ok("the same login flow still succeeds with the right csrf_token and cookie")

    # ------------------------------------------------------------------ 5. login
    def test_login(self) -> None:
        addr, iid = self.make_identity("blogin")
        ok("created an identity with a password through the admin API")
        b = self.browser()
        flow = self.new_login_flow(b, "create_browser_login_flow")
        csrf_name, before = b.csrf_cookie()
        res = self.login_call(b, flow.id, csrf_value(flow, "login flow"), addr, PASSWORD)()
        expect(res.status_code == 200, f"update_login_flow: HTTP {res.status_code}")
        login = res.data
        expect(isinstance(login, SuccessfulNativeLogin), f"update_login_flow: the SDK did not return a SuccessfulNativeLogin: {login!r}")
        expect(login.session_token is None, f"update_login_flow (browser): session_token {login.session_token!r}, expected none for browser flows")
        s = login.session
        expect(s.active is True and s.identity is not None and s.identity.id == iid, f"update_login_flow: session {s!r}")
        expect(s.authenticator_assurance_level == "aal1", f"update_login_flow: aal {s.authenticator_assurance_level!r}")
        methods = s.authentication_methods or []
        expect(methods and methods[0].method == "password", f"update_login_flow: authentication_methods {methods!r}")
        ok("FrontendApi.update_login_flow(password, csrf_token, cookie) -> 200 {session}, aal1 password, no session_token")

        redirects = redirect_items(login)
        expect(
            redirects and redirects[0].action == "redirect_browser_to" and redirects[0].redirect_browser_to,
            f"login: continue_with has no redirect_browser_to item: {[c.actual_instance for c in (login.continue_with or [])]!r}",
        )
        ok(f"login: continue_with [redirect_browser_to {redirects[0].redirect_browser_to!r}]")

        self.expect_session_cookie(b, "update_login_flow")
        after = b.cookies.get(csrf_name)
        expect(after and after != before, f"update_login_flow: the CSRF cookie was not rotated; Set-Cookie {list(map(str, b.last_set.values()))}")
        ok(f"login: Set-Cookie {SESSION_COOKIE} (HttpOnly, Path=/) and a rotated CSRF cookie")

        ws = self.whoami(b, "to_session with the login cookie")
        expect(ws.id == s.id and ws.identity is not None and ws.identity.id == iid, f"to_session: {ws.id!r} / {ws.identity!r}")
        expect(ws.identity.traits.get("email") == addr, f"to_session: traits {ws.identity.traits!r}, expected email {addr!r}")
        ok("FrontendApi.to_session(cookie) -> the login session, identity email matches")

        only_session = f"{SESSION_COOKIE}={b.cookies[SESSION_COOKIE]}"
        ws = self.whoami(b, "to_session with only the session cookie", cookie=only_session)
        expect(ws.id == s.id, f"to_session with only the session cookie: {ws.id!r}")
        ok(f"FrontendApi.to_session(cookie={SESSION_COOKIE} alone) -> the same session")

    # ------------------------------------------------------------------ 6. already signed in
    def test_signed_in(self) -> None:
        addr, iid = self.make_identity("bsigned")
        b = self.browser()
        first = self.login(b, addr, "login")
        ok("signed in through a browser login flow")

        err = expect_api_error(
            "create_browser_login_flow while signed in", 400, lambda: b.call(lambda: self.front.create_browser_login_flow(cookie=b.cookie))
        )
        expect_error_id(err, SESSION_ALREADY_AVAILABLE, "create_browser_login_flow while signed in")
        ok(f"FrontendApi.create_browser_login_flow(cookie) while signed in -> 400 {SESSION_ALREADY_AVAILABLE}")

        err = expect_api_error(
            "create_browser_registration_flow while signed in",
            400,
            lambda: b.call(lambda: self.front.create_browser_registration_flow(_headers=cookie_headers(b.cookie))),
        )
        expect_error_id(err, SESSION_ALREADY_AVAILABLE, "create_browser_registration_flow while signed in")
        ok(f"FrontendApi.create_browser_registration_flow(cookie) while signed in -> 400 {SESSION_ALREADY_AVAILABLE}")

        flow = self.new_login_flow(b, "create_browser_login_flow(refresh=True)", refresh=True)
        expect(flow.refresh is True, f"refresh login flow: refresh {flow.refresh!r}, expected True")
        expect(flow.requested_aal == "aal1", f"refresh login flow: requested_aal {flow.requested_aal!r}")
        csrf_value(flow, "refresh login flow")
        ident = node_named(flow, "identifier")
        expect(
            ident is not None
            and ident.attributes.actual_instance.type == "hidden"
            and ident.attributes.actual_instance.value == addr,
            f"refresh login flow: identifier node {ident!r}, expected hidden with value {addr!r}",
        )
        top = [m.id for m in (flow.ui.messages or [])]
        expect(MSG_REFRESH in top, f"refresh login flow: ui.messages ids {top}, expected {MSG_REFRESH}")
        ok(f"FrontendApi.create_browser_login_flow(refresh=True, cookie) while signed in -> 200 LoginFlow with refresh: true, identifier hidden and pre-filled, message {MSG_REFRESH}")

        ws = self.whoami(b, "to_session after the refresh flow was created")
        expect(ws.id == first.session.id, f"to_session: {ws.id!r}, expected {first.session.id!r}")
        ok("the session is untouched by creating a refresh flow")

    # ------------------------------------------------------------------ 7. logout
    def test_logout(self) -> None:
        addr, _ = self.make_identity("blogout")
        b = self.browser()
        login = self.login(b, addr, "login")
        self.whoami(b, "to_session before logout")
        session_cookie = f"{SESSION_COOKIE}={b.cookies[SESSION_COOKIE]}"
        csrf_name, csrf_before = b.csrf_cookie()
        ok("signed in through a browser login flow")

        res = b.call(lambda: self.front.create_browser_logout_flow_with_http_info(cookie=b.cookie))
        expect(res.status_code == 200, f"create_browser_logout_flow: HTTP {res.status_code}")
        lo = res.data
        expect(isinstance(lo, LogoutFlow), f"create_browser_logout_flow: not a LogoutFlow: {lo!r}")
        expect(
            isinstance(lo.logout_token, str) and re.fullmatch(r"ory_lo_[A-Za-z0-9]{32}", lo.logout_token),
            f"create_browser_logout_flow: logout_token {lo.logout_token!r}, expected ory_lo_ + 32 alphanumerics",
        )
        expect(
            lo.logout_url.startswith(f"{self.public_url}/self-service/logout?")
            and query_param(lo.logout_url, "token") == lo.logout_token,
            f"create_browser_logout_flow: logout_url {lo.logout_url!r}, expected {self.public_url}/self-service/logout?token={lo.logout_token}",
        )
        ok("FrontendApi.create_browser_logout_flow(cookie) -> 200 LogoutFlow {logout_url with token, logout_token ory_lo_…}")

        expect_api_error(
            "create_browser_logout_flow without a session", 401, lambda: self.front.create_browser_logout_flow(cookie=None)
        )
        ok("FrontendApi.create_browser_logout_flow without a cookie -> 401")

        res = b.call(lambda: self.front.update_logout_flow_with_http_info(token=lo.logout_token, cookie=b.cookie))
        expect(res.status_code == 204, f"update_logout_flow: HTTP {res.status_code}, expected 204 for a JSON client")
        gone = b.last_set.get(SESSION_COOKIE)
        expect(
            gone is not None and gone.deletes,
            f"update_logout_flow: the {SESSION_COOKIE} cookie was not expired; Set-Cookie {list(map(str, b.last_set.values()))}",
        )
        expect(SESSION_COOKIE not in b.cookies, f"update_logout_flow: jar still has {SESSION_COOKIE}")
        after = b.cookies.get(csrf_name)
        expect(after and after != csrf_before, f"update_logout_flow: the CSRF cookie was not rotated; Set-Cookie {list(map(str, b.last_set.values()))}")
        ok(f"FrontendApi.update_logout_flow(token, cookie) -> 204, {SESSION_COOKIE} expired, CSRF cookie rotated")

        self.expect_no_session(b, "to_session after logout", b.cookie)
        ok("FrontendApi.to_session(cookie) after logout -> 401")

        self.expect_no_session(b, "to_session with the pre-logout session cookie", session_cookie)
        ok("FrontendApi.to_session(<the old session cookie>) -> 401: the session is revoked, not only the cookie dropped")

        sessions = self.ids.list_identity_sessions(login.session.identity.id)
        revoked = [x for x in sessions if x.id == login.session.id]
        expect(revoked and revoked[0].active is False, f"admin list_identity_sessions after logout: {[(x.id, x.active) for x in sessions]!r}")
        ok("admin IdentityApi.list_identity_sessions: the logged-out session is inactive")

    # ------------------------------------------------------------------ 8. errors
    def test_errors(self) -> None:
        res = self.front.get_flow_error_with_http_info(id="stub:500")
        expect(res.status_code == 200, f"get_flow_error(stub:500): HTTP {res.status_code}")
        fe = res.data
        expect(isinstance(fe, FlowError), f"get_flow_error(stub:500): not a FlowError: {fe!r}")
        expect(isinstance(fe.error, dict), f"get_flow_error(stub:500): error {fe.error!r}")
        expect(fe.error.get("code") == 500, f"get_flow_error(stub:500): error.code {fe.error.get('code')!r}, expected 500; error {fe.error!r}")
        expect(fe.error.get("message"), f"get_flow_error(stub:500): no error.message: {fe.error!r}")
        ok("FrontendApi.get_flow_error(id='stub:500') -> 200 FlowError with error.code 500")

        expect_api_error("get_flow_error(unknown id)", 404, lambda: self.front.get_flow_error(id=str(uuid.uuid4())))
        ok("FrontendApi.get_flow_error(unknown id) -> 404")

    # ------------------------------------------------------------------ 9. return_to
    def test_return_to(self) -> None:
        b = self.browser()
        err = expect_api_error(
            "create_browser_login_flow(return_to=evil)",
            400,
            lambda: b.call(lambda: self.front.create_browser_login_flow(return_to=EVIL_RETURN_TO)),
        )
        expect_error_id(err, RETURN_TO_FORBIDDEN, "create_browser_login_flow(return_to=evil)")
        ok(f"FrontendApi.create_browser_login_flow(return_to={EVIL_RETURN_TO!r}) -> 400 {RETURN_TO_FORBIDDEN}")

        err = expect_api_error(
            "create_browser_registration_flow(return_to=evil)",
            400,
            lambda: b.call(lambda: self.front.create_browser_registration_flow(return_to=EVIL_RETURN_TO)),
        )
        expect_error_id(err, RETURN_TO_FORBIDDEN, "create_browser_registration_flow(return_to=evil)")
        ok(f"FrontendApi.create_browser_registration_flow(return_to={EVIL_RETURN_TO!r}) -> 400 {RETURN_TO_FORBIDDEN}")

        # The public URL's /self-service prefix is always an allowed return_to (Kratos's allow list).
        allowed = f"{self.public_url}/self-service/sdk-return?x=1"
        addr, _ = self.make_identity("breturn")
        flow = self.new_login_flow(b, "create_browser_login_flow(return_to=<public>/self-service/…)", return_to=allowed)
        expect(flow.return_to == allowed, f"login flow return_to {flow.return_to!r}, expected {allowed!r}")
        ok("FrontendApi.create_browser_login_flow(return_to=<public>/self-service/…) -> 200, flow.return_to kept")

        res = self.login_call(b, flow.id, csrf_value(flow, "login flow"), addr, PASSWORD)()
        expect(res.status_code == 200 and isinstance(res.data, SuccessfulNativeLogin), f"update_login_flow: {res!r}")
        redirects = redirect_items(res.data)
        expect(
            redirects and redirects[0].redirect_browser_to == allowed,
            f"login with return_to: continue_with {[c.actual_instance for c in (res.data.continue_with or [])]!r}, expected redirect_browser_to {allowed!r}",
        )
        ok("update_login_flow -> continue_with redirect_browser_to is the flow's return_to")

    SECTIONS = [
        ("browser 1. registration", "test_registration"),
        ("browser 2. get flows with and without the CSRF cookie", "test_get_flows"),
        ("browser 3. wrong password", "test_wrong_password"),
        ("browser 4. CSRF refusals", "test_csrf"),
        ("browser 5. login and whoami", "test_login"),
        ("browser 6. already signed in, refresh", "test_signed_in"),
        ("browser 7. logout (JSON)", "test_logout"),
        ("browser 8. error stub", "test_errors"),
        ("browser 9. return_to", "test_return_to"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin", required=True, help="admin base URL, e.g. http://127.0.0.1:4434")
    ap.add_argument("--public", required=True, help="public base URL, e.g. http://127.0.0.1:4433")
    ap.add_argument("--keep-going", action="store_true", help="run every section and report all failures")
    args = ap.parse_args()
    return run_sections(BrowserFlows(args.admin, args.public), BrowserFlows.SECTIONS, args.keep_going, label="sdk browser flows")


if __name__ == "__main__":
    raise SystemExit(main())
