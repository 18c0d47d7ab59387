#!/usr/bin/env python3
"""SDK compatibility test for the settings, recovery and verification flows and the courier: the
official Ory Kratos Python SDK against Portcullis, with e-mail delivered over real SMTP.

Run it through `tests/sdk/run.sh`, which starts the SMTP sink (tests/support/smtp_sink.py) and a
server whose config enables recovery and verification (`use: code`), the link method (admin
recovery links) and the courier's SMTP delivery to the sink:

    python tests/sdk/recovery_settings.py --admin http://127.0.0.1:4434 --public http://127.0.0.1:4433 \\
        --mail-dir /tmp/mail --mail-from no-reply@portcullis.test [--continue-with-transitions] \\
        [--link-disabled] [--sections settings,recovery,...] [--keep-going]

Codes and links are read from the mails the sink received (one JSON file per mail in --mail-dir),
never from the database or the admin API. A successful recovery answers, as Kratos does, HTTP 422
`browser_location_change_required` (default), or with `feature_flags.use_continue_with_transitions`
HTTP 200 with the flow and `continue_with` (pass --continue-with-transitions to expect that). With
--link-disabled the server runs without `selfservice.methods.link`, and the admin recovery link
section instead checks that the endpoint answers 404. Same reporting as identities.py: one line per
check, stop at the first failure unless `--keep-going`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import urllib3
from ory_kratos_client import ApiClient, Configuration
from ory_kratos_client.api.courier_api import CourierApi
from ory_kratos_client.api.frontend_api import FrontendApi
from ory_kratos_client.api.identity_api import IdentityApi
from ory_kratos_client.exceptions import ApiException
from ory_kratos_client.models.continue_with_set_ory_session_token import (
    ContinueWithSetOrySessionToken,
)
from ory_kratos_client.models.continue_with_settings_ui import ContinueWithSettingsUi
from ory_kratos_client.models.continue_with_verification_ui import ContinueWithVerificationUi
from ory_kratos_client.models.courier_message_status import CourierMessageStatus
from ory_kratos_client.models.create_identity_body import CreateIdentityBody
from ory_kratos_client.models.create_recovery_code_for_identity_body import (
    CreateRecoveryCodeForIdentityBody,
)
from ory_kratos_client.models.create_recovery_link_for_identity_body import (
    CreateRecoveryLinkForIdentityBody,
)
from ory_kratos_client.models.error_generic import ErrorGeneric
from ory_kratos_client.models.identity import Identity
from ory_kratos_client.models.login_flow import LoginFlow
from ory_kratos_client.models.message import Message
from ory_kratos_client.models.recovery_code_for_identity import RecoveryCodeForIdentity
from ory_kratos_client.models.recovery_flow import RecoveryFlow
from ory_kratos_client.models.recovery_link_for_identity import RecoveryLinkForIdentity
from ory_kratos_client.models.settings_flow import SettingsFlow
from ory_kratos_client.models.successful_native_login import SuccessfulNativeLogin
from ory_kratos_client.models.update_recovery_flow_body import UpdateRecoveryFlowBody
from ory_kratos_client.models.update_recovery_flow_with_link_method import UpdateRecoveryFlowWithLinkMethod
from ory_kratos_client.models.update_recovery_flow_with_code_method import (
    UpdateRecoveryFlowWithCodeMethod,
)
from ory_kratos_client.models.update_settings_flow_body import UpdateSettingsFlowBody
from ory_kratos_client.models.update_settings_flow_with_password_method import (
    UpdateSettingsFlowWithPasswordMethod,
)
from ory_kratos_client.models.update_settings_flow_with_profile_method import (
    UpdateSettingsFlowWithProfileMethod,
)
from ory_kratos_client.models.update_verification_flow_body import UpdateVerificationFlowBody
from ory_kratos_client.models.update_verification_flow_with_code_method import (
    UpdateVerificationFlowWithCodeMethod,
)
from ory_kratos_client.models.verification_flow import VerificationFlow

from browser_flows import SESSION_COOKIE, Browser, RecordingApiClient, csrf_value
from identities import (
    PASSWORD,
    CheckFailed,
    describe_api_exception,
    email,
    expect,
    expect_api_error,
    ok,
    password_creds,
    query_param,
    raw_request,
    run_sections,
)
from native_flows import (
    MSG_INVALID_CREDENTIALS,
    NativeFlows,
    expect_flow_error,
    input_name,
    message_ids,
    node_named,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "support"))
from smtp_sink import Mail, MailDir  # noqa: E402

NEW_PASSWORD = "a completely different passphrase 2"
NEWER_PASSWORD = "yet another different passphrase 3"

# Kratos UI message ids (text/id.go).
MSG_SETTINGS_SAVED = 1050001  # "Your changes have been saved!"
MSG_RECOVERY_SUCCESSFUL = 1060001  # "You successfully recovered your account. ..."
MSG_RECOVERY_CODE_SENT = 1060003  # "An email containing a recovery code has been sent ..."
MSG_VERIFIED = 1080002  # "You successfully verified your email address."
MSG_VERIFICATION_CODE_SENT = 1080003  # "An email containing a verification code has been sent ..."
MSG_PASSWORD_SAME_AS_OLD = 4000039  # "The new password must be different from the old password."
MSG_RECOVERY_CODE_INVALID = 4060006  # "The recovery code is invalid or has already been used. ..."
MSG_VERIFICATION_CODE_INVALID = 4070006  # "The verification code is invalid or has already been used. ..."

REDACTED_BODY = "<redacted-unless-dev-mode>"
MAIL_TIMEOUT = 20.0  # seconds to wait for a mail in the sink, or for a courier message to be "sent"
CODE_RE = re.compile(r"^[0-9]{6}$")


def top_ids(flow: Any) -> List[int]:
    return [m.id for m in (flow.ui.messages or [])]


def continue_items(obj: Any) -> List[Any]:
    return [c.actual_instance for c in (getattr(obj, "continue_with", None) or [])]


def of_type(items: List[Any], cls: type) -> List[Any]:
    return [c for c in items if isinstance(c, cls)]


def wrong_code(code: str) -> str:
    """A six-digit code that is not `code`."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def expect_close(what: str, got: Optional[datetime], want: datetime, slack: timedelta = timedelta(minutes=2)) -> None:
    expect(got is not None, f"{what}: no timestamp")
    if got.tzinfo is None:
        got = got.replace(tzinfo=timezone.utc)
    expect(abs(got - want) <= slack, f"{what}: {got.isoformat()}, expected about {want.isoformat()}")


class RecoverySettings:
    def __init__(self, args: argparse.Namespace):
        self.admin_url = args.admin.rstrip("/")
        self.public_url = args.public.rstrip("/")
        self.transitions = args.continue_with_transitions
        self.mail_from = args.mail_from
        self.box = MailDir(args.mail_dir)
        admin_client = ApiClient(Configuration(host=self.admin_url))
        self.ids = IdentityApi(admin_client)
        self.courier = CourierApi(admin_client)
        self.front = FrontendApi(ApiClient(Configuration(host=self.public_url)))
        # For browser flows: a client that keeps the raw response (all Set-Cookie headers).
        self.browser_client = RecordingApiClient(Configuration(host=self.public_url))
        self.browser_front = FrontendApi(self.browser_client)
        self.native = NativeFlows(self.admin_url, self.public_url)
        self.http = urllib3.PoolManager()

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def traits(addr: str, last: str, first: str = "Recovery") -> Dict[str, Any]:
        return {"email": addr, "name": {"first": first, "last": last}}

    def make_identity(self, tag: str) -> Tuple[str, Identity]:
        """An identity with PASSWORD and an unverified address, created through the admin API."""
        addr = email(tag)
        body = CreateIdentityBody(schema_id="default", traits=self.traits(addr, tag), credentials=password_creds(PASSWORD))
        ident = self.ids.create_identity(create_identity_body=body)
        expect(
            [a.verified for a in ident.verifiable_addresses or []] == [False],
            f"create_identity ({tag}): verifiable_addresses {ident.verifiable_addresses!r}, expected one unverified",
        )
        return addr, ident

    def wait_mail(self, addr: str, after: int, what: str) -> Mail:
        try:
            mail = self.box.wait_for(addr, after=after, timeout=MAIL_TIMEOUT)
        except TimeoutError as e:
            raise CheckFailed(f"{what}: {e}")
        expect(mail.to == [addr], f"{what}: the mail's RCPT TO is {mail.to!r}, expected [{addr!r}]")
        if self.mail_from:
            expect(mail.sender == self.mail_from, f"{what}: MAIL FROM {mail.sender!r}, expected {self.mail_from!r}")
        return mail

    def mail_code(self, mail: Mail, what: str) -> str:
        code = mail.code()
        expect(code is not None and CODE_RE.match(code), f"{what}: no 6-digit code in the mail's text {mail.text!r}")
        return code

    def expect_address(self, iid: str, addr: str, verified: bool, what: str) -> None:
        got = self.ids.get_identity(iid)
        addrs = [a for a in got.verifiable_addresses or [] if a.value == addr]
        expect(len(addrs) == 1, f"{what}: verifiable_addresses {got.verifiable_addresses!r}, expected one for {addr}")
        a = addrs[0]
        if verified:
            expect(a.verified is True, f"{what}: address {addr} verified={a.verified!r}, expected true: {a!r}")
            expect(a.status == "completed", f"{what}: address status {a.status!r}, expected 'completed'")
            expect(a.verified_at is not None, f"{what}: address verified_at is not set: {a!r}")
        else:
            expect(a.verified is False, f"{what}: address {addr} verified={a.verified!r}, expected false: {a!r}")

    def expect_login(self, addr: str, password: str, what: str) -> SuccessfulNativeLogin:
        flow = self.native.login_flow(f"{what}: create_native_login_flow")
        res = self.native.login_call(flow.id, addr, password)()
        expect(res.status_code == 200, f"{what}: update_login_flow HTTP {res.status_code}")
        expect(isinstance(res.data, SuccessfulNativeLogin), f"{what}: not a SuccessfulNativeLogin: {res.data!r}")
        return res.data

    def expect_login_refused(self, addr: str, password: str, what: str) -> None:
        flow = self.native.login_flow(f"{what}: create_native_login_flow")
        bad = expect_flow_error(what, 400, LoginFlow, self.native.login_call(flow.id, addr, password))
        expect(MSG_INVALID_CREDENTIALS in top_ids(bad), f"{what}: ui.messages ids {top_ids(bad)}, expected {MSG_INVALID_CREDENTIALS}")

    def expect_password_changed(self, addr: str, old: str, new: str, what: str) -> None:
        self.expect_login(addr, new, f"{what}: login with the new password")
        self.expect_login_refused(addr, old, f"{what}: login with the old password")

    # ---- recovery
    def recovery_call(self, flow_id: str, front: Optional[FrontendApi] = None, **kw: Any) -> Callable[[], Any]:
        body = UpdateRecoveryFlowBody(UpdateRecoveryFlowWithCodeMethod(method="code", **kw))
        front = front or self.front
        return lambda: front.update_recovery_flow_with_http_info(flow=flow_id, update_recovery_flow_body=body)

    def recovery_flow_answer(self, fn: Callable[[], Any], what: str) -> RecoveryFlow:
        """A recovery submit that Kratos answers with HTTP 200 and the flow (sent a code, or a wrong code)."""
        res = fn()
        expect(res.status_code == 200, f"{what}: HTTP {res.status_code}, expected 200")
        expect(isinstance(res.data, RecoveryFlow), f"{what}: not a RecoveryFlow: {res.data!r}")
        return res.data

    def expect_wrong_recovery_code(self, flow_id: str, code: str, what: str, front: Optional[FrontendApi] = None) -> None:
        bad = self.recovery_flow_answer(self.recovery_call(flow_id, front, code=wrong_code(code)), what)
        expect(bad.id == flow_id, f"{what}: flow id {bad.id!r}, expected {flow_id!r}")
        expect(bad.state == "sent_email", f"{what}: state {bad.state!r}, expected 'sent_email'")
        expect(MSG_RECOVERY_CODE_INVALID in top_ids(bad), f"{what}: ui.messages ids {top_ids(bad)}, expected {MSG_RECOVERY_CODE_INVALID}")

    def expect_recovered(self, fn: Callable[[], Any], what: str, api: bool) -> Tuple[Optional[str], str]:
        """Submits the right recovery code. Returns (session token or None, settings flow id)."""
        if not self.transitions:
            try:
                res = fn()
            except ApiException as e:
                expect(e.status == 422, f"{what}: expected HTTP 422, got {describe_api_exception(e)}")
                # SDK 25.4 types ErrorBrowserLocationChangeRequired.error as ErrorGeneric (an envelope holding
                # another `error`), so it cannot parse the body Kratos sends ({"error": {...}, "redirect_browser_to"});
                # parse it as Kratos writes it instead: the error object as in ErrorGeneric, plus redirect_browser_to.
                try:
                    parsed = json.loads(e.body or "")
                except ValueError as je:
                    raise CheckFailed(f"{what}: the 422 body is not JSON ({je}): {e.body!r}")
                err = ErrorGeneric.from_dict({"error": parsed.get("error")})
                expect(
                    err.error.id == "browser_location_change_required" and err.error.code == 422,
                    f"{what}: error {parsed.get('error')!r}, expected id browser_location_change_required, code 422",
                )
                to = parsed.get("redirect_browser_to") or ""
                expect(
                    to.startswith(f"{self.public_url}/") and "/settings" in urllib.parse.urlsplit(to).path,
                    f"{what}: redirect_browser_to {to!r} is not the settings UI on {self.public_url}",
                )
                sid = query_param(to, "flow")
                expect(sid and uuid.UUID(sid), f"{what}: redirect_browser_to {to!r} has no ?flow=<uuid>")
                return None, sid
            raise CheckFailed(f"{what}: expected HTTP 422 browser_location_change_required, got HTTP {res.status_code} {res.data!r}")
        res = fn()
        expect(res.status_code == 200, f"{what}: HTTP {res.status_code}, expected 200 (use_continue_with_transitions)")
        flow = res.data
        expect(isinstance(flow, RecoveryFlow), f"{what}: not a RecoveryFlow: {flow!r}")
        expect(flow.state == "passed_challenge", f"{what}: state {flow.state!r}, expected 'passed_challenge'")
        items = continue_items(flow)
        settings = of_type(items, ContinueWithSettingsUi)
        expect(len(settings) == 1, f"{what}: continue_with {items!r}, expected one show_settings_ui item")
        sid = settings[0].flow.id
        expect(uuid.UUID(sid), f"{what}: show_settings_ui flow.id {sid!r} is not a UUID")
        url = settings[0].flow.url or ""
        expect(
            url.startswith(f"{self.public_url}/") and query_param(url, "flow") == sid,
            f"{what}: show_settings_ui flow.url {url!r}, expected a page on {self.public_url} with ?flow={sid}",
        )
        tokens = of_type(items, ContinueWithSetOrySessionToken)
        if not api:
            expect(not tokens, f"{what}: a browser flow's continue_with carries a session token: {items!r}")
            return None, sid
        expect(len(tokens) == 1, f"{what}: continue_with {items!r}, expected one set_ory_session_token item")
        token = tokens[0].ory_session_token
        expect(isinstance(token, str) and token.startswith("ory_st_"), f"{what}: ory_session_token {token!r}")
        return token, sid

    # ---- settings
    def settings_call(
        self, flow_id: str, body: Any, token: Optional[str] = None, browser: Optional[Browser] = None
    ) -> Callable[[], Any]:
        wrapped = UpdateSettingsFlowBody(body)
        if browser is not None:
            return lambda: browser.call(
                lambda: self.browser_front.update_settings_flow_with_http_info(
                    flow=flow_id, update_settings_flow_body=wrapped, cookie=browser.cookie
                )
            )
        return lambda: self.front.update_settings_flow_with_http_info(
            flow=flow_id, update_settings_flow_body=wrapped, x_session_token=token
        )

    def expect_settings_saved(self, fn: Callable[[], Any], what: str, method: str) -> SettingsFlow:
        res = fn()
        expect(res.status_code == 200, f"{what}: HTTP {res.status_code}, expected 200")
        flow = res.data
        expect(isinstance(flow, SettingsFlow), f"{what}: not a SettingsFlow: {flow!r}")
        expect(flow.state == "success", f"{what}: state {flow.state!r}, expected 'success'")
        expect(flow.active in (None, method), f"{what}: active {flow.active!r}, expected {method!r}")
        expect(MSG_SETTINGS_SAVED in top_ids(flow), f"{what}: ui.messages ids {top_ids(flow)}, expected {MSG_SETTINGS_SAVED}")
        return flow

    def expect_settings_flow(self, flow: Any, what: str, flow_type: str, identity_id: str) -> None:
        expect(isinstance(flow, SettingsFlow), f"{what}: not a SettingsFlow: {flow!r}")
        expect(flow.type == flow_type, f"{what}: type {flow.type!r}, expected {flow_type!r}")
        expect(uuid.UUID(flow.id), f"{what}: id is not a UUID: {flow.id!r}")
        expect(flow.identity is not None and flow.identity.id == identity_id, f"{what}: identity {flow.identity!r}, expected {identity_id}")
        action = f"{self.public_url}/self-service/settings?flow={flow.id}"
        expect(flow.ui.action == action, f"{what}: ui.action {flow.ui.action!r}, expected {action!r}")
        expect(flow.ui.method == "POST", f"{what}: ui.method {flow.ui.method!r}")

    @staticmethod
    def expect_settings_forms(flow: Any, what: str) -> None:
        """Kratos' settings flow: the profile form and the password form, each with its own `method` button."""
        buttons = {
            (n.group, n.attributes.actual_instance.value)
            for n in flow.ui.nodes
            if input_name(n) == "method" and n.attributes.actual_instance.type == "submit"
        }
        pw = node_named(flow, "password")
        expect(
            pw is not None and pw.group == "password" and pw.attributes.actual_instance.type == "password",
            f"{what}: no password input in the password group among {[(n.group, input_name(n)) for n in flow.ui.nodes]}",
        )
        expect(
            {("profile", "profile"), ("password", "password")} <= buttons,
            f"{what}: submit buttons (group, method) {sorted(buttons)}, expected ('profile', 'profile') and ('password', 'password')",
        )

    def follow_link(self, b: Browser, url: str) -> urllib3.BaseHTTPResponse:
        """GET `url` as a browser would (Accept: text/html, the jar's cookies), without following redirects."""
        headers = {"Accept": "text/html,application/xhtml+xml"}
        if b.cookie:
            headers["Cookie"] = b.cookie
        res = self.http.request("GET", url, headers=headers, redirect=False, timeout=30)
        b.absorb(res.headers)
        return res

    def change_password_in_browser(self, b: Browser, sid: str, iid: str, what: str, password: str) -> None:
        """With `b` signed in by a recovery: the settings flow `sid` (browser, JSON) changes the password."""
        res = b.call(lambda: self.browser_front.get_settings_flow_with_http_info(id=sid, cookie=b.cookie))
        expect(res.status_code == 200, f"{what}: get_settings_flow HTTP {res.status_code}")
        flow = res.data
        self.expect_settings_flow(flow, f"{what}: get_settings_flow", "browser", iid)
        expect(
            MSG_RECOVERY_SUCCESSFUL in top_ids(flow),
            f"{what}: the settings flow opened by recovery has ui.messages ids {top_ids(flow)}, expected {MSG_RECOVERY_SUCCESSFUL}",
        )
        pw = node_named(flow, "password")
        expect(pw is not None, f"{what}: the settings flow has no password input: {[(n.group, input_name(n)) for n in flow.ui.nodes]}")
        csrf = csrf_value(flow, f"{what}: settings flow")
        body = UpdateSettingsFlowWithPasswordMethod(method="password", password=password, csrf_token=csrf)
        self.expect_settings_saved(self.settings_call(sid, body, browser=b), f"{what}: update_settings_flow(password)", "password")

    # ------------------------------------------------------------------ 1. settings (native)
    def test_settings(self) -> None:
        addr, reg = self.native.register("settings")
        token = reg.session_token
        iid = reg.identity.id
        ok("registered an identity through a native registration flow (session token)")

        expect_api_error("create_native_settings_flow without a session token", 401, lambda: self.front.create_native_settings_flow())
        ok("FrontendApi.create_native_settings_flow() without X-Session-Token -> 401")

        res = self.front.create_native_settings_flow_with_http_info(x_session_token=token)
        expect(res.status_code == 200, f"create_native_settings_flow: HTTP {res.status_code}")
        flow = res.data
        self.expect_settings_flow(flow, "create_native_settings_flow", "api", iid)
        expect(flow.state == "show_form", f"create_native_settings_flow: state {flow.state!r}, expected 'show_form'")
        names = {input_name(n) for n in flow.ui.nodes}
        for want in ("traits.email", "traits.name.first", "method"):
            expect(want in names, f"settings flow: no {want!r} input node among {sorted(n for n in names if n)}")
        email_node = node_named(flow, "traits.email")
        expect(email_node.attributes.actual_instance.value == addr, f"settings flow: traits.email value {email_node.attributes.actual_instance.value!r}")
        ok("FrontendApi.create_native_settings_flow(x_session_token) -> SettingsFlow: api, show_form, identity, traits filled in")

        got = self.front.get_settings_flow(flow.id, x_session_token=token)
        self.expect_settings_flow(got, "get_settings_flow", "api", iid)
        expect(got.id == flow.id, f"get_settings_flow: id {got.id!r}, expected {flow.id!r}")
        ok("FrontendApi.get_settings_flow(id, x_session_token) -> the same SettingsFlow")

        _, other = self.native.register("settings-other")
        err = expect_api_error(
            "get_settings_flow with another identity's session",
            403,
            lambda: self.front.get_settings_flow(flow.id, x_session_token=other.session_token),
        )
        expect(err.error.id == "security_identity_mismatch", f"get_settings_flow with another identity: error.id {err.error.id!r}, expected 'security_identity_mismatch'")
        ok("FrontendApi.get_settings_flow with another identity's session token -> 403 security_identity_mismatch")

        new_traits = self.traits(addr, "renamed", first="Settings")
        saved = self.expect_settings_saved(
            self.settings_call(flow.id, UpdateSettingsFlowWithProfileMethod(method="profile", traits=new_traits), token),
            "update_settings_flow(profile)",
            "profile",
        )
        expect(saved.identity.traits == new_traits, f"update_settings_flow(profile): identity traits {saved.identity.traits!r}, expected {new_traits!r}")
        admin = self.ids.get_identity(iid)
        expect(admin.traits == new_traits, f"admin get_identity after the profile change: traits {admin.traits!r}")
        ok("FrontendApi.update_settings_flow(profile) -> 200 SettingsFlow state success with message 1050001; the admin API shows the new traits")

        # The password method is on by default (only its config is set): Kratos shows both forms, each with
        # its own submit button (`method` nodes in the profile and password groups).
        self.expect_settings_forms(saved, "the settings flow")
        ok("the settings flow has both forms: profile (method=profile) and password (password input, method=password)")

        same = expect_flow_error(
            "update_settings_flow(password) with the current password",
            400,
            SettingsFlow,
            self.settings_call(flow.id, UpdateSettingsFlowWithPasswordMethod(method="password", password=PASSWORD), token),
        )
        expect(MSG_PASSWORD_SAME_AS_OLD in message_ids(same), f"same password: message ids {message_ids(same)}, expected {MSG_PASSWORD_SAME_AS_OLD}")
        pw = node_named(same, "password")
        expect(pw is not None and pw.attributes.actual_instance.value in (None, ""), f"same password: the password is echoed: {pw!r}")
        ok(f"update_settings_flow(password = the current one) -> 400 SettingsFlow with message {MSG_PASSWORD_SAME_AS_OLD}, password not echoed")

        self.expect_settings_saved(
            self.settings_call(flow.id, UpdateSettingsFlowWithPasswordMethod(method="password", password=NEW_PASSWORD), token),
            "update_settings_flow(password)",
            "password",
        )
        ok("FrontendApi.update_settings_flow(password) -> 200 SettingsFlow state success with message 1050001")

        self.expect_password_changed(addr, PASSWORD, NEW_PASSWORD, "after the settings password change")
        ok("native login with the new password -> 200; with the old one -> 400 with message 4000006")

        ws = self.native.whoami(token, "to_session with the token that changed the password")
        expect(ws.identity.traits == new_traits, f"to_session after the changes: traits {ws.identity.traits!r}")
        ok("FrontendApi.to_session(<the settings token>) still works and shows the new traits")

    # ------------------------------------------------------------------ 2. recovery by code
    def test_recovery_code(self) -> None:
        addr, ident = self.make_identity("recovery")
        ok("created an identity with a password and an unverified address through the admin API")

        flow = self.front.create_native_recovery_flow()
        expect(isinstance(flow, RecoveryFlow), f"create_native_recovery_flow: {flow!r}")
        expect(flow.type == "api", f"recovery flow type {flow.type!r}")
        expect(flow.state == "choose_method", f"recovery flow state {flow.state!r}, expected 'choose_method'")
        action = f"{self.public_url}/self-service/recovery?flow={flow.id}"
        expect(flow.ui.action == action, f"recovery flow ui.action {flow.ui.action!r}, expected {action!r}")
        names = {input_name(n) for n in flow.ui.nodes}
        expect({"email", "method"} <= names, f"recovery flow: input nodes {sorted(n for n in names if n)}, expected email and method")
        ok("FrontendApi.create_native_recovery_flow -> RecoveryFlow: api, choose_method, ui.action, email/method nodes")

        got = self.front.get_recovery_flow(flow.id)
        expect(isinstance(got, RecoveryFlow) and got.id == flow.id, f"get_recovery_flow: {got!r}")
        ok("FrontendApi.get_recovery_flow(id) -> the same RecoveryFlow")

        unknown = email("recovery-unknown")
        sent_unknown = self.recovery_flow_answer(
            self.recovery_call(self.front.create_native_recovery_flow().id, email=unknown), "update_recovery_flow(unknown email)"
        )
        expect(sent_unknown.state == "sent_email", f"unknown email: state {sent_unknown.state!r}, expected 'sent_email' (no enumeration)")
        expect(MSG_RECOVERY_CODE_SENT in top_ids(sent_unknown), f"unknown email: ui.messages ids {top_ids(sent_unknown)}")
        queued = self.courier.list_courier_messages(recipient=unknown)
        expect(queued == [], f"unknown email: the courier has messages for {unknown}: {queued!r}")
        ok("update_recovery_flow(unknown email) -> 200 sent_email like a known one, and no message is queued for it")

        mark = self.box.mark()
        sent = self.recovery_flow_answer(self.recovery_call(flow.id, email=addr), "update_recovery_flow(email)")
        expect(sent.id == flow.id and sent.state == "sent_email", f"update_recovery_flow(email): id {sent.id!r}, state {sent.state!r}")
        expect(MSG_RECOVERY_CODE_SENT in top_ids(sent), f"update_recovery_flow(email): ui.messages ids {top_ids(sent)}, expected {MSG_RECOVERY_CODE_SENT}")
        expect(node_named(sent, "code") is not None, f"update_recovery_flow(email): no code node among {[input_name(n) for n in sent.ui.nodes]}")
        ok(f"FrontendApi.update_recovery_flow(code method, email) -> 200 RecoveryFlow state sent_email, message {MSG_RECOVERY_CODE_SENT}, code node")

        mail = self.wait_mail(addr, mark, "recovery mail")
        code = self.mail_code(mail, "recovery mail")
        ok(f"the SMTP sink received the recovery mail for {addr} (subject {mail.subject!r}) with a 6-digit code")

        self.expect_wrong_recovery_code(flow.id, code, "update_recovery_flow(wrong code)")
        ok(f"update_recovery_flow(wrong code) -> 200 RecoveryFlow, still sent_email, ui.messages id {MSG_RECOVERY_CODE_INVALID}")

        token, sid = self.expect_recovered(self.recovery_call(flow.id, code=code), "update_recovery_flow(right code)", api=True)
        if self.transitions:
            ok("update_recovery_flow(right code) -> 200 RecoveryFlow passed_challenge with continue_with set_ory_session_token and show_settings_ui")
        else:
            ok("update_recovery_flow(right code) -> 422 browser_location_change_required, redirect_browser_to the settings UI with ?flow=")

        after = self.front.get_recovery_flow(flow.id)
        expect(after.state == "passed_challenge", f"get_recovery_flow after success: state {after.state!r}, expected 'passed_challenge'")
        ok("FrontendApi.get_recovery_flow after success -> state passed_challenge")

        again = self.recovery_call(flow.id, code=code)
        try:
            res = again()
            expect(
                not (isinstance(res.data, RecoveryFlow) and continue_items(res.data)),
                f"the used code recovered the account a second time: {res.data!r}",
            )
        except ApiException as e:
            expect(e.status in (400, 410), f"reusing the code: {describe_api_exception(e)}, expected a refusal (400/410)")
        ok("submitting the same code again does not recover the account a second time")

        if token is not None:
            s = self.native.whoami(token, "to_session with the recovery token")
            expect(s.identity.id == ident.id, f"recovery session: identity {s.identity.id!r}, expected {ident.id!r}")
            methods = [m.method for m in s.authentication_methods or []]
            expect(methods == ["code_recovery"], f"recovery session: authentication_methods {methods!r}, expected ['code_recovery']")
            ok("FrontendApi.to_session(<recovery token>) -> a session for the identity, authenticated with code_recovery")

            sflow = self.front.get_settings_flow(sid, x_session_token=token)
            self.expect_settings_flow(sflow, "get_settings_flow after recovery", "api", ident.id)
            expect(MSG_RECOVERY_SUCCESSFUL in top_ids(sflow), f"settings flow after recovery: ui.messages ids {top_ids(sflow)}, expected {MSG_RECOVERY_SUCCESSFUL}")
            ok(f"FrontendApi.get_settings_flow(<show_settings_ui flow>, recovery token) -> SettingsFlow with message {MSG_RECOVERY_SUCCESSFUL}")

            self.expect_settings_saved(
                self.settings_call(sid, UpdateSettingsFlowWithPasswordMethod(method="password", password=NEW_PASSWORD), token),
                "update_settings_flow(password) after recovery",
                "password",
            )
            self.expect_password_changed(addr, PASSWORD, NEW_PASSWORD, "after recovery")
            ok("the recovery session changed the password: login with the new one works, the old one is refused")

        self.expect_address(ident.id, addr, True, "after a self-service recovery")
        ok("the recovered address is now verified (a self-service recovery proves control of it)")

    # ------------------------------------------------------------------ 3. verification by code
    def test_verification(self) -> None:
        addr = email("verify")
        mark = self.box.mark()
        flow = self.native.registration_flow("create_native_registration_flow")
        res = self.native.register_call(flow.id, self.traits(addr, "verify"), PASSWORD)()
        expect(res.status_code == 200, f"update_registration_flow: HTTP {res.status_code}")
        reg = res.data
        items = continue_items(reg)
        show = of_type(items, ContinueWithVerificationUi)
        expect(len(show) == 1, f"registration: continue_with {items!r}, expected one show_verification_ui item")
        vid = show[0].flow.id
        expect(uuid.UUID(vid), f"show_verification_ui flow.id {vid!r}")
        expect(show[0].flow.verifiable_address == addr, f"show_verification_ui verifiable_address {show[0].flow.verifiable_address!r}, expected {addr!r}")
        url = show[0].flow.url or ""
        expect(query_param(url, "flow") == vid, f"show_verification_ui flow.url {url!r}, expected ?flow={vid}")
        expect(of_type(items, ContinueWithSetOrySessionToken), f"registration: continue_with {items!r} lacks set_ory_session_token")
        ok("native registration -> continue_with has show_verification_ui (flow id, the address, url) and set_ory_session_token")

        mail = self.wait_mail(addr, mark, "verification mail after registration")
        code = self.mail_code(mail, "verification mail")
        link = f"{self.public_url}/self-service/verification?flow={vid}&code={code}"
        expect(link in mail.links(), f"verification mail: links {mail.links()!r}, expected {link!r}")
        ok("the SMTP sink received the verification mail: the code and <public>/self-service/verification?flow=<id>&code=<code>")

        vf = self.front.get_verification_flow(vid)
        expect(isinstance(vf, VerificationFlow) and vf.id == vid, f"get_verification_flow: {vf!r}")
        expect(vf.type == "api", f"verification flow type {vf.type!r}, expected 'api' (started by a native registration)")
        expect(vf.state == "sent_email", f"verification flow state {vf.state!r}, expected 'sent_email'")
        expect(node_named(vf, "code") is not None, f"verification flow: no code node among {[input_name(n) for n in vf.ui.nodes]}")
        ok("FrontendApi.get_verification_flow(<show_verification_ui id>) -> VerificationFlow: api, sent_email, code node")

        def verify_call(code_: str) -> Callable[[], Any]:
            body = UpdateVerificationFlowBody(UpdateVerificationFlowWithCodeMethod(method="code", code=code_))
            return lambda: self.front.update_verification_flow_with_http_info(flow=vid, update_verification_flow_body=body)

        res = verify_call(wrong_code(code))()
        expect(res.status_code == 200 and isinstance(res.data, VerificationFlow), f"wrong verification code: HTTP {res.status_code} {res.data!r}")
        expect(res.data.state == "sent_email", f"wrong verification code: state {res.data.state!r}")
        expect(MSG_VERIFICATION_CODE_INVALID in top_ids(res.data), f"wrong verification code: ui.messages ids {top_ids(res.data)}, expected {MSG_VERIFICATION_CODE_INVALID}")
        self.expect_address(reg.identity.id, addr, False, "after a wrong verification code")
        ok(f"update_verification_flow(wrong code) -> 200 VerificationFlow with message {MSG_VERIFICATION_CODE_INVALID}; the address stays unverified")

        res = verify_call(code)()
        expect(res.status_code == 200 and isinstance(res.data, VerificationFlow), f"verification code: HTTP {res.status_code} {res.data!r}")
        expect(res.data.state == "passed_challenge", f"verification: state {res.data.state!r}, expected 'passed_challenge'")
        expect(MSG_VERIFIED in top_ids(res.data), f"verification: ui.messages ids {top_ids(res.data)}, expected {MSG_VERIFIED}")
        ok(f"update_verification_flow(code from the mail) -> 200 VerificationFlow passed_challenge with message {MSG_VERIFIED}")

        self.expect_address(reg.identity.id, addr, True, "after verification")
        ok("admin IdentityApi.get_identity: the address is verified, status completed, verified_at set")

        ws = self.native.whoami(reg.session_token, "to_session after verification")
        va = ws.identity.verifiable_addresses or []
        expect(va and va[0].verified is True, f"to_session after verification: verifiable_addresses {va!r}")
        ok("FrontendApi.to_session(<registration token>) shows the address verified")

        # A verification flow of its own, for an identity created by an administrator.
        addr2, ident2 = self.make_identity("verify-admin")
        flow2 = self.front.create_native_verification_flow()
        expect(isinstance(flow2, VerificationFlow) and flow2.type == "api", f"create_native_verification_flow: {flow2!r}")
        expect(flow2.state == "choose_method", f"verification flow state {flow2.state!r}, expected 'choose_method'")
        mark = self.box.mark()
        body = UpdateVerificationFlowBody(UpdateVerificationFlowWithCodeMethod(method="code", email=addr2))
        res = self.front.update_verification_flow_with_http_info(flow=flow2.id, update_verification_flow_body=body)
        expect(res.status_code == 200 and res.data.state == "sent_email", f"update_verification_flow(email): HTTP {res.status_code} {res.data!r}")
        expect(MSG_VERIFICATION_CODE_SENT in top_ids(res.data), f"update_verification_flow(email): ui.messages ids {top_ids(res.data)}")
        ok(f"FrontendApi.create_native_verification_flow + update(email) -> 200 sent_email with message {MSG_VERIFICATION_CODE_SENT}")
        code2 = self.mail_code(self.wait_mail(addr2, mark, "verification mail"), "verification mail")
        body = UpdateVerificationFlowBody(UpdateVerificationFlowWithCodeMethod(method="code", code=code2))
        res = self.front.update_verification_flow_with_http_info(flow=flow2.id, update_verification_flow_body=body)
        expect(res.status_code == 200 and res.data.state == "passed_challenge", f"update_verification_flow(code): HTTP {res.status_code} {res.data!r}")
        self.expect_address(ident2.id, addr2, True, "after the verification flow")
        ok("the code from that mail verifies the address: passed_challenge, verified in the admin API")

        # The link in the mail, opened in a browser, verifies too.
        addr3, ident3 = self.make_identity("verify-link")
        flow3 = self.front.create_native_verification_flow()
        mark = self.box.mark()
        body = UpdateVerificationFlowBody(UpdateVerificationFlowWithCodeMethod(method="code", email=addr3))
        self.front.update_verification_flow(flow=flow3.id, update_verification_flow_body=body)
        mail = self.wait_mail(addr3, mark, "verification mail (link)")
        link = mail.link(f"{self.public_url}/self-service/verification?")
        expect(link is not None, f"verification mail: no <public>/self-service/verification link among {mail.links()!r}")
        expect(
            query_param(link, "flow") == flow3.id and query_param(link, "code") == mail.code(),
            f"verification link {link!r}: expected flow={flow3.id} and code={mail.code()}",
        )
        # Issue 14, finding 4: opening the link uses nothing (a mail scanner's GET must not burn it): it pre-fills
        # the code, and the page's submit (a POST with the opening browser's CSRF token) verifies.
        b = Browser("verification link", self.browser_client)
        r = self.follow_link(b, link)
        loc = r.headers.get("Location", "")
        expect(
            r.status == 303 and query_param(loc, "flow") == flow3.id and "/verification" in urllib.parse.urlsplit(loc).path,
            f"opening the verification link: HTTP {r.status} Location {loc!r}, expected 303 to the verification UI with ?flow={flow3.id}",
        )
        after = self.front.get_verification_flow(flow3.id)
        expect(after.state == "sent_email", f"get_verification_flow after the link: state {after.state!r}, expected 'sent_email'")
        cnode = node_named(after, "code")
        expect(
            cnode is not None and cnode.attributes.actual_instance.value == mail.code(),
            f"get_verification_flow after the link: the code node does not carry the link's code: {cnode!r}",
        )
        self.expect_address(ident3.id, addr3, False, "after opening the verification link")
        ok("a browser opening the mail's link (GET …&code=) -> 303 to the verification UI; the code is pre-filled, nothing is verified yet")
        res = b.call(lambda: self.browser_front.get_verification_flow_with_http_info(id=flow3.id, cookie=b.cookie))
        expect(res.status_code == 200, f"get_verification_flow in the browser: HTTP {res.status_code}")
        body = UpdateVerificationFlowBody(
            UpdateVerificationFlowWithCodeMethod(
                method="code", code=mail.code(), csrf_token=csrf_value(res.data, "verification flow in the browser")
            )
        )
        res = b.call(
            lambda: self.browser_front.update_verification_flow_with_http_info(
                flow=flow3.id, update_verification_flow_body=body, cookie=b.cookie
            )
        )
        expect(
            res.status_code == 200 and res.data.state == "passed_challenge",
            f"update_verification_flow(code, the browser's CSRF token): HTTP {res.status_code} {res.data!r}",
        )
        self.expect_address(ident3.id, addr3, True, "after submitting the verification link's code")
        ok("that browser's update_verification_flow(code, csrf_token) -> 200 passed_challenge; the address is verified")

    # ------------------------------------------------------------------ 4. admin recovery code
    def create_code(self, what: str, **kw: Any) -> RecoveryCodeForIdentity:
        res = self.ids.create_recovery_code_for_identity_with_http_info(
            create_recovery_code_for_identity_body=CreateRecoveryCodeForIdentityBody(**kw)
        )
        expect(res.status_code == 201, f"{what}: HTTP {res.status_code}, expected 201")
        rc = res.data
        expect(isinstance(rc, RecoveryCodeForIdentity), f"{what}: not a RecoveryCodeForIdentity: {rc!r}")
        expect(CODE_RE.match(rc.recovery_code), f"{what}: recovery_code {rc.recovery_code!r} is not 6 digits")
        fid = query_param(rc.recovery_link, "flow")
        expect(
            rc.recovery_link.startswith(f"{self.public_url}/") and fid and uuid.UUID(fid),
            f"{what}: recovery_link {rc.recovery_link!r}, expected the recovery UI on {self.public_url} with ?flow=<uuid>",
        )
        return rc

    def test_admin_code(self) -> None:
        addr, ident = self.make_identity("admin-code")
        mark = self.box.mark()
        rc = self.create_code("create_recovery_code_for_identity(flow_type api)", identity_id=ident.id, expires_in="1h", flow_type="api")
        expect_close("recovery code expires_at", rc.expires_at, datetime.now(timezone.utc) + timedelta(hours=1))
        fid = query_param(rc.recovery_link, "flow")
        ok("IdentityApi.create_recovery_code_for_identity(expires_in 1h, flow_type api) -> 201: 6-digit code, recovery_link ?flow=, expires_at in 1 h")

        flow = self.front.get_recovery_flow(fid)
        expect(flow.type == "api" and flow.state == "sent_email", f"admin code flow: type {flow.type!r}, state {flow.state!r}")
        expect(node_named(flow, "code") is not None, f"admin code flow: no code node among {[input_name(n) for n in flow.ui.nodes]}")
        ok("FrontendApi.get_recovery_flow(<the link's flow>) -> api flow in sent_email with a code node")

        self.expect_wrong_recovery_code(fid, rc.recovery_code, "update_recovery_flow(admin flow, wrong code)")
        ok(f"update_recovery_flow(wrong code) on the admin flow -> 200 with message {MSG_RECOVERY_CODE_INVALID}")

        token, sid = self.expect_recovered(self.recovery_call(fid, code=rc.recovery_code), "update_recovery_flow(admin code)", api=True)
        ok("update_recovery_flow(the admin code) -> " + ("200 with continue_with" if self.transitions else "422 browser_location_change_required"))
        if token is not None:
            self.expect_settings_saved(
                self.settings_call(sid, UpdateSettingsFlowWithPasswordMethod(method="password", password=NEW_PASSWORD), token),
                "update_settings_flow(password) after the admin code",
                "password",
            )
            self.expect_password_changed(addr, PASSWORD, NEW_PASSWORD, "after the admin code")
            ok("the recovery session token changed the password: the new one logs in, the old one is refused")

        # The default flow type is browser: the code is entered in the browser that opens recovery_link.
        addr_b, ident_b = self.make_identity("admin-code-browser")
        rc = self.create_code("create_recovery_code_for_identity(default flow type)", identity_id=ident_b.id)
        fid = query_param(rc.recovery_link, "flow")
        flow = self.front.get_recovery_flow(fid)
        expect(flow.type == "browser" and flow.state == "sent_email", f"admin code flow (default): type {flow.type!r}, state {flow.state!r}")
        ok("IdentityApi.create_recovery_code_for_identity(identity_id only) -> 201, a browser flow in sent_email")

        # No browser started an administrator's flow, but a browser's submit still needs the CSRF token of its own
        # cookie (issue 14, finding 4: else a page elsewhere could post the code from a victim's browser).
        b = Browser("admin-code browser", self.browser_client)
        no_csrf = UpdateRecoveryFlowBody(UpdateRecoveryFlowWithCodeMethod(method="code", code=rc.recovery_code))
        err = expect_api_error(
            "update_recovery_flow(admin code, browser flow, no cookies)",
            403,
            lambda: b.call(lambda: self.browser_front.update_recovery_flow(flow=fid, update_recovery_flow_body=no_csrf)),
        )
        expect(err.error.id == "security_csrf_violation", f"admin code without CSRF: error {err.error.to_dict()!r}")
        expect(SESSION_COOKIE not in b.cookies, "the refused submit set a session cookie")
        ok("update_recovery_flow(admin code) on the browser flow without cookies -> 403 security_csrf_violation")
        res = b.call(lambda: self.browser_front.get_recovery_flow_with_http_info(id=fid, cookie=b.cookie))
        expect(res.status_code == 200, f"get_recovery_flow(admin flow) in a fresh browser: HTTP {res.status_code}")
        expect(any(n.startswith("csrf_token") for n in b.cookies), f"get_recovery_flow(admin flow): no CSRF cookie; cookies {sorted(b.cookies)}")
        csrf = csrf_value(res.data, "admin code flow in a browser")
        body = UpdateRecoveryFlowBody(UpdateRecoveryFlowWithCodeMethod(method="code", code=rc.recovery_code, csrf_token=csrf))
        _, sid = self.expect_recovered(
            lambda: b.call(
                lambda: self.browser_front.update_recovery_flow_with_http_info(
                    flow=fid, update_recovery_flow_body=body, cookie=b.cookie
                )
            ),
            "update_recovery_flow(admin code, browser flow, JSON, with the browser's CSRF token)",
            api=False,
        )
        expect(SESSION_COOKIE in b.cookies, f"browser recovery: no {SESSION_COOKIE} cookie; Set-Cookie {list(map(str, b.last_set.values()))}")
        ok(f"get_recovery_flow gives a fresh browser a CSRF cookie and token; update_recovery_flow(admin code, csrf_token) -> the recovered answer plus a {SESSION_COOKIE} cookie")
        self.change_password_in_browser(b, sid, ident_b.id, "browser recovery", NEW_PASSWORD)
        self.expect_password_changed(addr_b, PASSWORD, NEW_PASSWORD, "after the browser recovery")
        ok("with that cookie the settings flow (CSRF token from the flow) changed the password; the new one logs in, the old one is refused")

        expect_api_error(
            "create_recovery_code_for_identity(unknown identity)",
            404,
            lambda: self.ids.create_recovery_code_for_identity(
                create_recovery_code_for_identity_body=CreateRecoveryCodeForIdentityBody(identity_id=str(uuid.uuid4()))
            ),
        )
        ok("IdentityApi.create_recovery_code_for_identity(unknown identity) -> 404")
        status, _, body = raw_request(
            "POST", f"{self.admin_url}/admin/recovery/code", {"identity_id": ident.id, "expires_in": "soon"}
        )
        expect(status == 400, f"POST /admin/recovery/code with expires_in 'soon': HTTP {status} {body[:300]!r}")
        ok("POST /admin/recovery/code with an unparsable expires_in -> 400")

        sent = self.box.for_recipient(addr, after=mark) + self.box.for_recipient(addr_b, after=mark)
        expect(sent == [], f"admin recovery codes sent mail: {[(m.to, m.subject) for m in sent]}")
        queued = self.courier.list_courier_messages(recipient=addr) + self.courier.list_courier_messages(recipient=addr_b)
        expect(queued == [], f"admin recovery codes queued courier messages: {queued!r}")
        ok("admin recovery codes are handed to the administrator only: no mail, no courier message")

        # Kratos marks the address verified only after a self-service recovery (code type self-service).
        self.expect_address(ident.id, addr, False, "after recovery with an admin code (api flow)")
        self.expect_address(ident_b.id, addr_b, False, "after recovery with an admin code (browser flow)")
        ok("recovery with an admin code leaves the address unverified (as Kratos: only self-service recovery verifies)")

    # ------------------------------------------------------------------ 5. admin recovery link
    def test_admin_link(self) -> None:
        addr, ident = self.make_identity("admin-link")
        res = self.ids.create_recovery_link_for_identity_with_http_info(
            create_recovery_link_for_identity_body=CreateRecoveryLinkForIdentityBody(identity_id=ident.id, expires_in="1h")
        )
        expect(res.status_code == 200, f"create_recovery_link_for_identity: HTTP {res.status_code}, expected 200")
        rl = res.data
        expect(isinstance(rl, RecoveryLinkForIdentity), f"create_recovery_link_for_identity: {rl!r}")
        prefix = f"{self.public_url}/self-service/recovery?"
        expect(rl.recovery_link.startswith(prefix), f"recovery_link {rl.recovery_link!r}, expected {prefix}flow=…&token=…")
        fid, tok = query_param(rl.recovery_link, "flow"), query_param(rl.recovery_link, "token")
        expect(fid and uuid.UUID(fid) and tok, f"recovery_link {rl.recovery_link!r} lacks flow or token")
        expect_close("recovery link expires_at", rl.expires_at, datetime.now(timezone.utc) + timedelta(hours=1))
        ok("IdentityApi.create_recovery_link_for_identity(expires_in 1h) -> 200: <public>/self-service/recovery?flow=…&token=…, expires_at in 1 h")

        # Issue 14, finding 4: opening the link uses nothing (a mail scanner's GET must not burn it, and someone
        # else's link must not sign a victim's browser in); it shows a confirmation whose submit carries the token
        # and the browser's CSRF token.
        b = Browser("admin-link browser", self.browser_client)
        r = self.follow_link(b, rl.recovery_link)
        loc = r.headers.get("Location", "")
        expect(r.status in (302, 303), f"opening the recovery link: HTTP {r.status}, expected a redirect; body {r.data[:300]!r}")
        expect(
            "/recovery" in urllib.parse.urlsplit(loc).path and query_param(loc, "flow") == fid,
            f"opening the recovery link redirects to {loc!r}, expected the recovery UI with ?flow={fid}",
        )
        expect(SESSION_COOKIE not in b.cookies, f"opening the recovery link set a {SESSION_COOKIE} cookie")
        ok(f"a browser opening the link -> {r.status} to the recovery UI (?flow=<the link's flow>), no session yet")
        res = b.call(lambda: self.browser_front.get_recovery_flow_with_http_info(id=fid, cookie=b.cookie))
        expect(res.status_code == 200, f"get_recovery_flow(<the link's flow>): HTTP {res.status_code}")
        tnode = node_named(res.data, "token")
        expect(tnode is not None, f"the link's flow has no token node among {[input_name(n) for n in res.data.ui.nodes]}")
        expect(tnode.attributes.actual_instance.value == tok, "the link's flow does not carry the link's token")
        body = UpdateRecoveryFlowBody(
            UpdateRecoveryFlowWithLinkMethod(method="link", email=addr, csrf_token=csrf_value(res.data, "the link's flow"))
        )
        _, sid = self.expect_recovered(
            lambda: b.call(
                lambda: self.browser_front.update_recovery_flow_with_http_info(
                    flow=fid, update_recovery_flow_body=body, token=tok, cookie=b.cookie
                )
            ),
            "update_recovery_flow(link method, token, the browser's CSRF token)",
            api=False,
        )
        expect(SESSION_COOKIE in b.cookies, f"confirming the recovery link: no {SESSION_COOKIE} cookie; Set-Cookie {list(map(str, b.last_set.values()))}")
        ok(f"get_recovery_flow -> the token node; update_recovery_flow(link, token, csrf_token) -> recovered with a {SESSION_COOKIE} cookie")

        self.change_password_in_browser(b, sid, ident.id, "recovery link", NEW_PASSWORD)
        self.expect_password_changed(addr, PASSWORD, NEW_PASSWORD, "after the recovery link")
        ok("the settings flow changed the password; the new one logs in, the old one is refused")

        b2 = Browser("second browser", self.browser_client)
        r = self.follow_link(b2, rl.recovery_link)
        expect(SESSION_COOKIE not in b2.cookies, f"the used recovery link signed a browser in again (HTTP {r.status}, Location {r.headers.get('Location')!r})")
        ok(f"opening the used link again -> HTTP {r.status} without a session: the token works once")

        expect_api_error(
            "create_recovery_link_for_identity(unknown identity)",
            400,
            lambda: self.ids.create_recovery_link_for_identity(
                create_recovery_link_for_identity_body=CreateRecoveryLinkForIdentityBody(identity_id=str(uuid.uuid4()))
            ),
        )
        ok("IdentityApi.create_recovery_link_for_identity(unknown identity) -> 400")

        self.expect_address(ident.id, addr, False, "after recovery with an admin link")
        ok("recovery with an admin link leaves the address unverified (as Kratos: only self-service recovery verifies)")

    def test_admin_link_disabled(self) -> None:
        _, ident = self.make_identity("admin-link-off")
        expect_api_error(
            "create_recovery_link_for_identity with the link method disabled",
            404,
            lambda: self.ids.create_recovery_link_for_identity(
                create_recovery_link_for_identity_body=CreateRecoveryLinkForIdentityBody(identity_id=ident.id)
            ),
        )
        ok("IdentityApi.create_recovery_link_for_identity with selfservice.methods.link disabled -> 404")

    # ------------------------------------------------------------------ 6. courier
    def test_courier(self) -> None:
        addr, ident = self.make_identity("courier")
        mark = self.box.mark()
        flow = self.front.create_native_recovery_flow()
        self.recovery_flow_answer(self.recovery_call(flow.id, email=addr), "update_recovery_flow(email)")
        ok("started a recovery for a fresh identity: one message to send")

        listed = self.courier.list_courier_messages(recipient=addr)
        expect(len(listed) == 1, f"list_courier_messages(recipient): {listed!r}, expected one message")
        m = listed[0]
        expect(isinstance(m, Message), f"list_courier_messages: not a Message: {m!r}")
        expect(m.recipient == addr, f"message recipient {m.recipient!r}, expected {addr!r}")
        expect(m.template_type == "recovery_code_valid", f"message template_type {m.template_type!r}, expected 'recovery_code_valid'")
        expect(m.type == "email", f"message type {m.type!r}, expected 'email'")
        expect(m.subject, f"message subject is empty: {m!r}")
        expect(m.body == REDACTED_BODY, f"message body {m.body[:80]!r}…, expected {REDACTED_BODY!r} outside --dev")
        expect(m.status in ("queued", "processing", "sent"), f"message status {m.status!r}")
        ok("CourierApi.list_courier_messages(recipient=…) -> one Message: the recipient, email, recovery_code_valid, subject, body redacted")

        deadline = time.monotonic() + MAIL_TIMEOUT
        got = self.courier.get_courier_message(m.id)
        while got.status != "sent" and time.monotonic() < deadline:
            expect(got.status in ("queued", "processing"), f"get_courier_message: status {got.status!r} while waiting for 'sent'")
            time.sleep(0.1)
            got = self.courier.get_courier_message(m.id)
        expect(got.status == "sent", f"get_courier_message: status still {got.status!r} after {MAIL_TIMEOUT:g} s")
        expect(isinstance(got, Message) and got.id == m.id and got.recipient == addr, f"get_courier_message: {got!r}")
        expect(got.send_count >= 1, f"get_courier_message after delivery: send_count {got.send_count!r}")
        expect(got.updated_at >= got.created_at, f"get_courier_message: updated_at {got.updated_at} before created_at {got.created_at}")
        ok("CourierApi.get_courier_message(id) -> status reaches 'sent' (polled), send_count >= 1")

        mail = self.wait_mail(addr, mark, "courier mail")
        expect(mail.subject == got.subject, f"the delivered mail's Subject {mail.subject!r}, the message's {got.subject!r}")
        expect(mail.code() is not None, "the delivered recovery mail has no code")
        ok("the SMTP sink got that message: same subject, envelope from the configured from_address, a code")

        sent_ids = [x.id for x in self.courier.list_courier_messages(status=CourierMessageStatus.SENT, page_size=1000)]
        expect(m.id in sent_ids, f"list_courier_messages(status=sent) lacks {m.id}")
        queued_ids = [x.id for x in self.courier.list_courier_messages(status=CourierMessageStatus.QUEUED, page_size=1000)]
        expect(m.id not in queued_ids, f"list_courier_messages(status=queued) still has the sent message {m.id}")
        ok("CourierApi.list_courier_messages(status=sent) has it, (status=queued) does not")

        expect_api_error("get_courier_message(unknown id)", 404, lambda: self.courier.get_courier_message(str(uuid.uuid4())))
        ok("CourierApi.get_courier_message(unknown id) -> 404")
        status, _, body = raw_request("GET", f"{self.admin_url}/admin/courier/messages?status=lost")
        expect(status == 400, f"GET /admin/courier/messages?status=lost: HTTP {status} {body[:300]!r}")
        ok("GET /admin/courier/messages?status=<not a status> -> 400")

    ALL_SECTIONS = {
        "settings": ("recovery 1. settings (native API flow)", "test_settings"),
        "recovery": ("recovery 2. recovery by code (native)", "test_recovery_code"),
        "verification": ("recovery 3. verification by code", "test_verification"),
        "admin-code": ("recovery 4. admin recovery code", "test_admin_code"),
        "admin-link": ("recovery 5. admin recovery link", "test_admin_link"),
        "admin-link-disabled": ("recovery 5. admin recovery link with the link method disabled", "test_admin_link_disabled"),
        "courier": ("recovery 6. courier messages", "test_courier"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin", required=True, help="admin base URL, e.g. http://127.0.0.1:4434")
    ap.add_argument("--public", required=True, help="public base URL, e.g. http://127.0.0.1:4433")
    ap.add_argument("--mail-dir", required=True, help="the SMTP sink's mail directory")
    ap.add_argument("--mail-from", default="", help="the configured courier.smtp.from_address (checked when given)")
    ap.add_argument(
        "--continue-with-transitions",
        action="store_true",
        help="the server runs with feature_flags.use_continue_with_transitions: expect 200 + continue_with after recovery",
    )
    ap.add_argument("--link-disabled", action="store_true", help="the server runs without selfservice.methods.link")
    ap.add_argument("--sections", default="", help="comma-separated section keys: " + ", ".join(RecoverySettings.ALL_SECTIONS))
    ap.add_argument("--keep-going", action="store_true", help="run every section and report all failures")
    args = ap.parse_args()

    if args.sections:
        keys = [k.strip() for k in args.sections.split(",") if k.strip()]
        unknown = [k for k in keys if k not in RecoverySettings.ALL_SECTIONS]
        if unknown:
            ap.error(f"unknown sections {unknown}; known: {', '.join(RecoverySettings.ALL_SECTIONS)}")
    else:
        skip = "admin-link" if args.link_disabled else "admin-link-disabled"
        keys = [k for k in RecoverySettings.ALL_SECTIONS if k != skip]
    label = "sdk recovery/settings" + (" (continue_with transitions)" if args.continue_with_transitions else "")
    sections = [RecoverySettings.ALL_SECTIONS[k] for k in keys]
    return run_sections(RecoverySettings(args), sections, args.keep_going, label=label)


if __name__ == "__main__":
    raise SystemExit(main())
