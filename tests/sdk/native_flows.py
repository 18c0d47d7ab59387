#!/usr/bin/env python3
"""SDK compatibility test for the native (API) self-service flows: the official Ory Kratos Python
SDK against Portcullis.

Registration, login and logout with the password method, through FrontendApi on the public
listener (session tokens, no cookies; browser flows are not covered). Run it through
`tests/sdk/run.sh` (after sessions.py), whose config enables the registration session hook
(`selfservice.flows.registration.after.password.hooks: [{hook: session}]`) and turns off the
Have I Been Pwned look-up:

    python tests/sdk/native_flows.py --admin http://127.0.0.1:4434 --public http://127.0.0.1:4433

Form validation errors answer HTTP 400 with the flow itself as the body (a RegistrationFlow or
LoginFlow with UI messages), which the SDK deserializes into `ApiException.data`; the checks parse
it themselves too, so a shape the SDK rejects is reported with the pydantic error. Same reporting
as identities.py: one line per check, stop at the first failure unless `--keep-going`.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any, Callable, Dict, List, Optional, Type, TypeVar

import pydantic
from ory_kratos_client import ApiClient, Configuration
from ory_kratos_client.api.frontend_api import FrontendApi
from ory_kratos_client.api.identity_api import IdentityApi
from ory_kratos_client.exceptions import ApiException
from ory_kratos_client.models.continue_with_set_ory_session_token import (
    ContinueWithSetOrySessionToken,
)
from ory_kratos_client.models.login_flow import LoginFlow
from ory_kratos_client.models.perform_native_logout_body import PerformNativeLogoutBody
from ory_kratos_client.models.registration_flow import RegistrationFlow
from ory_kratos_client.models.session import Session
from ory_kratos_client.models.successful_native_login import SuccessfulNativeLogin
from ory_kratos_client.models.successful_native_registration import (
    SuccessfulNativeRegistration,
)
from ory_kratos_client.models.ui_node import UiNode
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
    describe_api_exception,
    email,
    expect,
    expect_api_error,
    ok,
    run_sections,
)
from sessions import NO_SESSION_REASON

# Kratos UI message ids (text/id.go).
MSG_INVALID_CREDENTIALS = 4000006  # "The provided credentials are invalid, ..."
MSG_DUPLICATE = 4000007  # "An account with the same identifier (email, phone, username, ...) exists already."
MSG_VALIDATION = 4000001  # generic JSON schema validation error, e.g. a bad "email" format

WRONG_PASSWORD = "this is not the password 42"

F = TypeVar("F", RegistrationFlow, LoginFlow)


def input_name(node: UiNode) -> Optional[str]:
    """The `name` of an input node (None for other node types)."""
    inst = node.attributes.actual_instance if node.attributes is not None else None
    return getattr(inst, "name", None)


def node_named(flow: Any, name: str) -> Optional[UiNode]:
    for n in flow.ui.nodes:
        if input_name(n) == name:
            return n
    return None


def message_ids(flow: Any) -> List[int]:
    """Every UI message id of a flow: the form's messages, then each node's."""
    ids = [m.id for m in (flow.ui.messages or [])]
    for n in flow.ui.nodes:
        ids.extend(m.id for m in (n.messages or []))
    return ids


def expect_flow_error(what: str, status: int, model: Type[F], fn: Callable[[], Any]) -> F:
    """Call `fn`, expecting ApiException with `status` whose body is a flow (`model`), as Kratos answers
    form validation errors. Returns the parsed flow."""
    try:
        result = fn()
    except ApiException as e:
        expect(e.status == status, f"{what}: expected HTTP {status}, got {describe_api_exception(e)}")
        expect(e.body, f"{what}: HTTP {status} without a body")
        try:
            parsed = json.loads(e.body)
        except ValueError as je:
            raise CheckFailed(f"{what}: the body is not JSON ({je}): {e.body!r}")
        try:
            flow = model.from_dict(parsed)
        except pydantic.ValidationError as ve:
            raise CheckFailed(f"{what}: the SDK's {model.__name__} model rejects the HTTP {status} body {e.body!r}: {ve}")
        expect(flow is not None, f"{what}: {model.__name__}.from_dict returned None for {e.body!r}")
        # The SDK deserializes a 400 body into ApiException.data itself (response type map).
        expect(
            isinstance(e.data, model),
            f"{what}: the SDK did not deserialize the HTTP {status} body into a {model.__name__} "
            f"(ApiException.data is {type(e.data).__name__}); body {e.body!r}",
        )
        return flow
    raise CheckFailed(f"{what}: expected HTTP {status}, but the call succeeded with {result!r}")


def expect_api_flow(flow: Any, what: str) -> None:
    """Checks shared by every native flow freshly created or fetched."""
    expect(flow.type == "api", f"{what}: type {flow.type!r}, expected 'api'")
    expect(uuid.UUID(flow.id), f"{what}: id is not a UUID: {flow.id!r}")
    expect(flow.expires_at > flow.issued_at, f"{what}: expires_at {flow.expires_at!r} not after issued_at {flow.issued_at!r}")
    expect(flow.ui.method == "POST", f"{what}: ui.method {flow.ui.method!r}, expected 'POST'")


class NativeFlows:
    def __init__(self, admin: str, public: str):
        self.admin_url = admin.rstrip("/")
        self.public_url = public.rstrip("/")
        self.ids = IdentityApi(ApiClient(Configuration(host=self.admin_url)))
        self.front = FrontendApi(ApiClient(Configuration(host=self.public_url)))

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def traits(addr: str, last: str) -> Dict[str, Any]:
        return {"email": addr, "name": {"first": "Native", "last": last}}

    def registration_flow(self, what: str) -> RegistrationFlow:
        flow = self.front.create_native_registration_flow()
        expect(isinstance(flow, RegistrationFlow), f"{what}: not a RegistrationFlow: {flow!r}")
        expect_api_flow(flow, what)
        return flow

    def login_flow(self, what: str) -> LoginFlow:
        flow = self.front.create_native_login_flow()
        expect(isinstance(flow, LoginFlow), f"{what}: not a LoginFlow: {flow!r}")
        expect_api_flow(flow, what)
        return flow

    def register_call(self, flow_id: str, traits: Dict[str, Any], password: str) -> Callable[[], Any]:
        body = UpdateRegistrationFlowBody(
            UpdateRegistrationFlowWithPasswordMethod(method="password", traits=traits, password=password)
        )
        return lambda: self.front.update_registration_flow_with_http_info(
            flow=flow_id, update_registration_flow_body=body
        )

    def login_call(self, flow_id: str, identifier: str, password: str) -> Callable[[], Any]:
        body = UpdateLoginFlowBody(
            UpdateLoginFlowWithPasswordMethod(method="password", identifier=identifier, password=password)
        )
        return lambda: self.front.update_login_flow_with_http_info(flow=flow_id, update_login_flow_body=body)

    def register(self, tag: str) -> tuple[str, SuccessfulNativeRegistration]:
        """A fresh native registration with PASSWORD: returns (email, result)."""
        addr = email(tag)
        flow = self.registration_flow(f"create_native_registration_flow ({tag})")
        res = self.register_call(flow.id, self.traits(addr, tag), PASSWORD)()
        expect(res.status_code == 200, f"update_registration_flow ({tag}): HTTP {res.status_code}")
        expect(
            isinstance(res.data, SuccessfulNativeRegistration),
            f"update_registration_flow ({tag}): not a SuccessfulNativeRegistration: {res.data!r}",
        )
        return addr, res.data

    def whoami(self, token: str, what: str) -> Session:
        res = self.front.to_session_with_http_info(x_session_token=token)
        expect(res.status_code == 200, f"{what}: HTTP {res.status_code}")
        expect(isinstance(res.data, Session), f"{what}: the SDK did not return a Session: {res.data!r}")
        return res.data

    def expect_no_session(self, what: str, token: str) -> None:
        err = expect_api_error(what, 401, lambda: self.front.to_session(x_session_token=token))
        expect(err.error.reason == NO_SESSION_REASON, f"{what}: error.reason {err.error.reason!r}, expected {NO_SESSION_REASON!r}")

    # ------------------------------------------------------------------ 1. registration
    def test_registration(self) -> None:
        flow = self.registration_flow("create_native_registration_flow")
        expect(flow.state == "choose_method", f"registration flow state {flow.state!r}, expected 'choose_method'")
        expect(
            flow.ui.action == f"{self.public_url}/self-service/registration?flow={flow.id}",
            f"registration flow ui.action {flow.ui.action!r}, expected {self.public_url}/self-service/registration?flow={flow.id}",
        )
        expect(
            flow.request_url.startswith(f"{self.public_url}/self-service/registration/api"),
            f"registration flow request_url {flow.request_url!r}",
        )
        names = {input_name(n) for n in flow.ui.nodes}
        for want in ("traits.email", "password", "method"):
            expect(want in names, f"registration flow: no {want!r} input node among {sorted(n for n in names if n)}")
        ok("FrontendApi.create_native_registration_flow -> RegistrationFlow: type api, choose_method, ui.action, traits.email/password/method nodes")

        got = self.front.get_registration_flow(flow.id)
        expect(isinstance(got, RegistrationFlow) and got.id == flow.id, f"get_registration_flow: {got!r}")
        expect_api_flow(got, "get_registration_flow")
        ok("FrontendApi.get_registration_flow(id) -> the same RegistrationFlow")

        addr = email("reg")
        traits = self.traits(addr, "reg")
        res = self.register_call(flow.id, traits, PASSWORD)()
        expect(res.status_code == 200, f"update_registration_flow: HTTP {res.status_code}")
        reg = res.data
        expect(isinstance(reg, SuccessfulNativeRegistration), f"update_registration_flow: not a SuccessfulNativeRegistration: {reg!r}")
        token = reg.session_token
        expect(
            isinstance(token, str) and token.startswith("ory_st_"),
            f"update_registration_flow: session_token {token!r} (the session hook is configured)",
        )
        ok("FrontendApi.update_registration_flow(password) -> 200 SuccessfulNativeRegistration with an ory_st_ session_token")

        i = reg.identity
        expect(i is not None and uuid.UUID(i.id), f"registration: identity {i!r}")
        expect(i.traits == traits, f"registration: identity traits {i.traits!r}, expected {traits!r}")
        expect(i.schema_id == "default", f"registration: identity schema_id {i.schema_id!r}")
        expect(i.state == "active", f"registration: identity state {i.state!r}")
        creds = json.dumps({k: v.to_dict() for k, v in (i.credentials or {}).items()})
        expect(
            "hashed_password" not in creds and PASSWORD not in creds,
            f"registration: the identity exposes the password credential config: {creds}",
        )
        ok("registration: identity with the submitted traits, schema default, active, no password config exposed")

        s = reg.session
        expect(s is not None, "registration: no session despite the session hook")
        expect(s.active is True, f"registration: session active {s.active!r}")
        expect(s.identity is not None and s.identity.id == i.id, f"registration: session identity {s.identity!r}")
        methods = s.authentication_methods or []
        expect(methods and methods[0].method == "password", f"registration: session authentication_methods {methods!r}")
        ok("registration: session active, for the new identity, authenticated with password")

        items = [c.actual_instance for c in (reg.continue_with or [])]
        set_token = [c for c in items if isinstance(c, ContinueWithSetOrySessionToken)]
        expect(set_token, f"registration: continue_with has no set_ory_session_token item: {items!r}")
        expect(set_token[0].action == "set_ory_session_token", f"registration: continue_with action {set_token[0].action!r}")
        expect(
            set_token[0].ory_session_token == token,
            f"registration: continue_with ory_session_token {set_token[0].ory_session_token!r} differs from session_token {token!r}",
        )
        ok("registration: continue_with contains set_ory_session_token with the session token")

        got = self.ids.get_identity(i.id, include_credential=["password"])
        pw = (got.credentials or {}).get("password")
        expect(pw is not None and pw.identifiers == [addr], f"admin get_identity after registration: credentials {got.credentials!r}")
        expect(
            str((pw.config or {}).get("hashed_password", "")).startswith("$2"),
            f"admin get_identity after registration: no bcrypt hash stored: {pw.config!r}",
        )
        ok("admin IdentityApi.get_identity: the registered identity has a bcrypt password credential for its email")

        after = self.front.get_registration_flow(flow.id)
        expect(isinstance(after, RegistrationFlow) and after.id == flow.id, f"get_registration_flow after success: {after!r}")
        expect(after.state == "passed_challenge", f"get_registration_flow after success: state {after.state!r}, expected 'passed_challenge'")
        ok("FrontendApi.get_registration_flow after success -> state passed_challenge")

        # ---- 2. the session token works for whoami
        ws = self.whoami(token, "to_session with the registration token")
        expect(ws.id == s.id, f"to_session: id {ws.id!r}, expected the registration session {s.id!r}")
        expect(ws.identity is not None and ws.identity.id == i.id, f"to_session: identity {ws.identity!r}")
        expect(ws.identity.traits == traits, f"to_session: traits {ws.identity.traits!r}")
        ok("FrontendApi.to_session(x_session_token=<registration token>) -> that session and identity")

    # ------------------------------------------------------------------ 3. login
    def test_login(self) -> None:
        addr, reg = self.register("login")
        iid = reg.identity.id
        ok("registered an identity through a native registration flow")

        flow = self.login_flow("create_native_login_flow")
        expect(flow.state == "choose_method", f"login flow state {flow.state!r}, expected 'choose_method'")
        expect(
            flow.ui.action == f"{self.public_url}/self-service/login?flow={flow.id}",
            f"login flow ui.action {flow.ui.action!r}, expected {self.public_url}/self-service/login?flow={flow.id}",
        )
        expect(flow.requested_aal == "aal1", f"login flow requested_aal {flow.requested_aal!r}")
        expect(flow.refresh in (None, False), f"login flow refresh {flow.refresh!r}")
        names = {input_name(n) for n in flow.ui.nodes}
        for want in ("identifier", "password", "method"):
            expect(want in names, f"login flow: no {want!r} input node among {sorted(n for n in names if n)}")
        ok("FrontendApi.create_native_login_flow -> LoginFlow: type api, choose_method, aal1, identifier/password/method nodes")

        got = self.front.get_login_flow(flow.id)
        expect(isinstance(got, LoginFlow) and got.id == flow.id, f"get_login_flow: {got!r}")
        ok("FrontendApi.get_login_flow(id) -> the same LoginFlow")

        bad = expect_flow_error(
            "update_login_flow with a wrong password", 400, LoginFlow, self.login_call(flow.id, addr, WRONG_PASSWORD)
        )
        expect(bad.id == flow.id, f"wrong password: flow id {bad.id!r}, expected {flow.id!r}")
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
        ok(f"update_login_flow(wrong password) -> 400, body parses as LoginFlow with ui.messages id {MSG_INVALID_CREDENTIALS}, identifier echoed, password not")

        unknown = expect_flow_error(
            "update_login_flow with an unknown identifier",
            400,
            LoginFlow,
            self.login_call(flow.id, email("nobody"), WRONG_PASSWORD),
        )
        expect(
            [m.id for m in (unknown.ui.messages or [])] == top,
            f"unknown identifier: ui.messages ids {[m.id for m in (unknown.ui.messages or [])]}, expected the same as a wrong password {top}",
        )
        ok("update_login_flow(unknown identifier) -> 400 with the same message as a wrong password")

        res = self.login_call(flow.id, addr, PASSWORD)()
        expect(res.status_code == 200, f"update_login_flow: HTTP {res.status_code}")
        login = res.data
        expect(isinstance(login, SuccessfulNativeLogin), f"update_login_flow: not a SuccessfulNativeLogin: {login!r}")
        token = login.session_token
        expect(isinstance(token, str) and token.startswith("ory_st_"), f"update_login_flow: session_token {token!r}")
        expect(token != reg.session_token, "update_login_flow returned the registration session's token")
        s = login.session
        expect(s.active is True and s.identity is not None and s.identity.id == iid, f"update_login_flow: session {s!r}")
        expect(s.authenticator_assurance_level == "aal1", f"update_login_flow: aal {s.authenticator_assurance_level!r}")
        methods = s.authentication_methods or []
        expect(methods and methods[0].method == "password", f"update_login_flow: authentication_methods {methods!r}")
        ok("FrontendApi.update_login_flow(password) after a failure on the same flow -> 200 SuccessfulNativeLogin with a new ory_st_ token")

        ws = self.whoami(token, "to_session with the login token")
        expect(ws.id == s.id and ws.identity.id == iid, f"to_session with the login token: {ws.id!r} / {ws.identity!r}")
        ok("FrontendApi.to_session(x_session_token=<login token>) -> the login session")

        after = self.front.get_login_flow(flow.id)
        expect(isinstance(after, LoginFlow) and after.id == flow.id, f"get_login_flow after success: {after!r}")
        expect(after.state == "passed_challenge", f"get_login_flow after success: state {after.state!r}, expected 'passed_challenge'")
        ok("FrontendApi.get_login_flow after success -> state passed_challenge")

    # ------------------------------------------------------------------ 4. logout
    def test_logout(self) -> None:
        addr, reg = self.register("logout")
        keep = reg.session_token
        flow = self.login_flow("create_native_login_flow for logout")
        login = self.login_call(flow.id, addr, PASSWORD)().data
        token = login.session_token
        self.whoami(token, "to_session before logout")
        ok("registered and logged in: two sessions, both valid")

        res = self.front.perform_native_logout_with_http_info(PerformNativeLogoutBody(session_token=token))
        expect(res.status_code == 204, f"perform_native_logout: HTTP {res.status_code}, expected 204")
        ok("FrontendApi.perform_native_logout(session_token) -> 204")

        self.expect_no_session("to_session after perform_native_logout", token)
        ok("FrontendApi.to_session with the logged-out token -> 401")

        ws = self.whoami(keep, "to_session with the other (registration) token after logout")
        expect(ws.id == reg.session.id, f"the other session changed: {ws.id!r}")
        ok("the identity's other session is still valid")

        res = self.front.perform_native_logout_with_http_info(PerformNativeLogoutBody(session_token=token))
        expect(res.status_code == 204, f"second perform_native_logout: HTTP {res.status_code}, expected 204")
        ok("FrontendApi.perform_native_logout a second time -> 204 (idempotent, as Kratos)")

        expect_api_error(
            "perform_native_logout of an unknown token",
            403,
            lambda: self.front.perform_native_logout(PerformNativeLogoutBody(session_token="ory_st_" + uuid.uuid4().hex)),
        )
        ok("FrontendApi.perform_native_logout(unknown token) -> 403")

    # ------------------------------------------------------------------ 5. registration validation
    def test_registration_errors(self) -> None:
        flow = self.registration_flow("create_native_registration_flow for errors")
        bad = expect_flow_error(
            "update_registration_flow with an invalid email",
            400,
            RegistrationFlow,
            self.register_call(flow.id, {"email": "not an email"}, PASSWORD),
        )
        expect(bad.id == flow.id, f"invalid email: flow id {bad.id!r}, expected {flow.id!r}")
        node = node_named(bad, "traits.email")
        expect(node is not None, f"invalid email: no traits.email node among {[input_name(n) for n in bad.ui.nodes]}")
        ids = [m.id for m in node.messages]
        expect(ids, f"invalid email: the traits.email node has no message; all message ids {message_ids(bad)}")
        expect(MSG_VALIDATION in ids, f"invalid email: traits.email message ids {ids}, expected {MSG_VALIDATION}")
        expect(all(m.type == "error" for m in node.messages), f"invalid email: message types {[m.type for m in node.messages]}")
        expect(node.attributes.actual_instance.value == "not an email", f"invalid email: value not echoed: {node.attributes.actual_instance.value!r}")
        ok(f"update_registration_flow(invalid email) -> 400, body parses as RegistrationFlow, traits.email node message {MSG_VALIDATION}, value echoed")

        addr, first = self.register("dup")
        ok("registered an identity to collide with")

        flow = self.registration_flow("create_native_registration_flow for a duplicate")
        dup = expect_flow_error(
            "update_registration_flow with a registered email",
            400,
            RegistrationFlow,
            self.register_call(flow.id, self.traits(addr, "dup2"), PASSWORD + " again"),
        )
        expect(MSG_DUPLICATE in message_ids(dup), f"duplicate email: message ids {message_ids(dup)}, expected {MSG_DUPLICATE}")
        ok(f"update_registration_flow(duplicate email) -> 400 RegistrationFlow with message {MSG_DUPLICATE}")

        dup = expect_flow_error(
            "update_registration_flow with a registered email in another case",
            400,
            RegistrationFlow,
            self.register_call(flow.id, self.traits(addr.upper(), "dup3"), PASSWORD + " again"),
        )
        expect(MSG_DUPLICATE in message_ids(dup), f"duplicate email (upper case): message ids {message_ids(dup)}, expected {MSG_DUPLICATE}")
        ok(f"update_registration_flow(duplicate email in upper case) -> 400 RegistrationFlow with message {MSG_DUPLICATE}")

        listed = self.ids.list_identities(credentials_identifier=addr)
        expect([x.id for x in listed] == [first.identity.id], f"after the refused duplicates, credentials_identifier finds {[x.id for x in listed]}")
        ok("the refused registrations created no identity")

    SECTIONS = [
        ("native 1-2. registration and whoami", "test_registration"),
        ("native 3. login", "test_login"),
        ("native 4. logout", "test_logout"),
        ("native 5. registration validation", "test_registration_errors"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin", required=True, help="admin base URL, e.g. http://127.0.0.1:4434")
    ap.add_argument("--public", required=True, help="public base URL, e.g. http://127.0.0.1:4433")
    ap.add_argument("--keep-going", action="store_true", help="run every section and report all failures")
    args = ap.parse_args()
    return run_sections(NativeFlows(args.admin, args.public), NativeFlows.SECTIONS, args.keep_going, label="sdk native flows")


if __name__ == "__main__":
    raise SystemExit(main())
