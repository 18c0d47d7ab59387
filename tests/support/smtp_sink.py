#!/usr/bin/env python3
"""A small real SMTP server for the external test suites (tests/sdk, tests/ui), Python stdlib only.

It speaks enough SMTP for a real client (Portcullis' courier uses lettre): EHLO/HELO, MAIL FROM, RCPT TO, DATA
(with dot-unstuffing), RSET, NOOP, VRFY and QUIT. It advertises no STARTTLS and no AUTH, so the server must be
configured with `courier.smtp.connection_uri: smtp://127.0.0.1:PORT/?disable_starttls=true`. Every accepted mail
is written to the mail directory as one JSON file, `<seq>.json` with a zero-padded sequence number, so that
the names sort in the order the mails arrived:

    {"seq": 1, "received_at": "2026-01-01T00:00:00.000000+00:00", "from": "no-reply@example.com",
     "to": ["ann@example.com"], "subject": "...", "text": "<decoded text/plain>", "html": "<decoded text/html>",
     "raw": "<the message as sent after DATA, dot-unstuffed, CRLF line ends>"}

Files are written to a temporary name and renamed, so a reader never sees half a mail. `text` and `html` are
decoded here (quoted-printable, base64, charsets) so that readers in other languages (tests/ui in Node) need
only a JSON parser.

Serve (the port is printed as `PORT <n>` on stdout once listening, and written to --port-file if given):

    python3 tests/support/smtp_sink.py serve --dir MAILDIR [--port 0] [--host 127.0.0.1] [--port-file FILE]

Read, from a shell (exit 1 when no mail arrives within --timeout seconds):

    python3 tests/support/smtp_sink.py latest --dir MAILDIR --to ann@example.com [--code | --link PREFIX]

As a module (tests/sdk puts tests/support on sys.path):

    from smtp_sink import MailDir
    box = MailDir(path)
    mark = box.mark()                                # everything after this point is "new"
    mail = box.wait_for("ann@example.com", after=mark, timeout=10)
    mail.code()                                      # the first 6-digit run of the plain-text body
    mail.link(f"{public}/self-service/verification") # the first URL with that prefix
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HOSTNAME = "smtp-sink.test"
MAX_LINE = 64 * 1024  # longer command or data lines are refused (RFC 5321 asks for 1000; be generous)
MAX_MESSAGE = 32 * 1024 * 1024
CODE_RE = re.compile(r"(?<!\d)\d{6}(?!\d)")
CODE_LINE_RE = re.compile(r"^\s*(\d{6})\s*$", re.MULTILINE)
URL_RE = re.compile(r"https?://[^\s\"'<>]+")


# ---------------------------------------------------------------------------------------------------- parsing
def parse_message(raw: str) -> Dict[str, str]:
    """Subject, decoded text/plain and text/html bodies of a raw RFC 5322 message."""
    msg = email.message_from_string(raw, policy=email.policy.default)
    texts: List[str] = []
    htmls: List[str] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html") or part.get_content_disposition() == "attachment":
            continue
        try:
            content = part.get_content()
        except (LookupError, ValueError):  # unknown charset or broken transfer encoding
            payload = part.get_payload(decode=True) or b""
            content = payload.decode("utf-8", "replace")
        (texts if ctype == "text/plain" else htmls).append(content.replace("\r\n", "\n"))
    return {
        "subject": str(msg.get("Subject", "")),
        "text": "\n".join(texts),
        "html": "\n".join(htmls),
    }


def address(arg: str) -> str:
    """The address of a `MAIL FROM:` / `RCPT TO:` argument: `<a@b> PARAM=...` or a bare `a@b`."""
    arg = arg.strip()
    if arg.startswith("<"):
        end = arg.find(">")
        return arg[1:end] if end > 0 else arg[1:]
    return arg.split()[0] if arg else ""


# ---------------------------------------------------------------------------------------------------- server
class Sink:
    def __init__(self, directory: Path, verbose: bool = False):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.verbose = verbose
        existing = [int(p.stem) for p in self.dir.glob("*.json") if p.stem.isdigit()]
        self.seq = max(existing, default=0)

    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"smtp-sink: {msg}", file=sys.stderr, flush=True)

    def store(self, mail_from: str, rcpts: List[str], raw: str) -> int:
        self.seq += 1
        doc: Dict[str, Any] = {
            "seq": self.seq,
            "received_at": datetime.now(timezone.utc).isoformat(),
            "from": mail_from,
            "to": rcpts,
        }
        try:
            doc.update(parse_message(raw))
        except Exception as e:  # noqa: BLE001 - keep the mail even when it does not parse
            doc.update({"subject": "", "text": "", "html": "", "parse_error": repr(e)})
        doc["raw"] = raw
        name = f"{self.seq:08d}.json"
        tmp = self.dir / f".{name}.tmp"
        tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.dir / name)
        self.log(f"stored {name}: {mail_from} -> {', '.join(rcpts)}: {doc.get('subject')!r}")
        return self.seq

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self.log(f"connection from {peer}")

        async def reply(text: str) -> None:
            writer.write(text.encode("ascii") + b"\r\n")
            await writer.drain()

        async def readline() -> Optional[bytes]:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                return None  # the client went away
            except asyncio.LimitOverrunError:
                return b""  # too long: answered as a syntax error below
            return line

        mail_from: Optional[str] = None
        rcpts: List[str] = []
        greeted = False
        try:
            await reply(f"220 {HOSTNAME} ESMTP smtp_sink.py ready")
            while True:
                line = await readline()
                if line is None:
                    return
                if line == b"":
                    await reply("500 5.5.2 line too long")
                    # Drop the rest of the over-long line.
                    try:
                        await reader.read(MAX_LINE)
                    except Exception:  # noqa: BLE001
                        pass
                    continue
                cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                verb, _, arg = cmd.partition(" ")
                verb = verb.upper()
                self.log(f"<- {cmd}")
                if verb == "EHLO":
                    greeted = True
                    mail_from, rcpts = None, []
                    writer.write(
                        f"250-{HOSTNAME} greets {arg.strip() or 'client'}\r\n"
                        "250-8BITMIME\r\n250-SMTPUTF8\r\n250-PIPELINING\r\n"
                        f"250 SIZE {MAX_MESSAGE}\r\n".encode("ascii")
                    )
                    await writer.drain()
                elif verb == "HELO":
                    greeted = True
                    mail_from, rcpts = None, []
                    await reply(f"250 {HOSTNAME}")
                elif verb == "MAIL":
                    if not greeted:
                        await reply("503 5.5.1 send EHLO or HELO first")
                    elif mail_from is not None:
                        await reply("503 5.5.1 nested MAIL command")
                    elif not arg.upper().startswith("FROM:"):
                        await reply("501 5.5.4 syntax: MAIL FROM:<address>")
                    else:
                        mail_from, rcpts = address(arg[5:]), []
                        await reply("250 2.1.0 OK")
                elif verb == "RCPT":
                    if mail_from is None:
                        await reply("503 5.5.1 need MAIL before RCPT")
                    elif not arg.upper().startswith("TO:") or not address(arg[3:]):
                        await reply("501 5.5.4 syntax: RCPT TO:<address>")
                    else:
                        rcpts.append(address(arg[3:]))
                        await reply("250 2.1.5 OK")
                elif verb == "DATA":
                    if arg.strip():
                        await reply("501 5.5.4 DATA takes no argument")
                        continue
                    if mail_from is None or not rcpts:
                        await reply("503 5.5.1 need MAIL and RCPT before DATA")
                        continue
                    await reply("354 End data with <CR><LF>.<CR><LF>")
                    lines: List[str] = []
                    size = 0
                    while True:
                        dl = await readline()
                        if dl is None:
                            return
                        text = dl.decode("utf-8", "replace").rstrip("\r\n")
                        if text == ".":
                            break
                        if text.startswith("."):
                            text = text[1:]  # dot-unstuffing (RFC 5321 4.5.2)
                        size += len(dl)
                        lines.append(text)
                    if size > MAX_MESSAGE:
                        await reply("552 5.3.4 message too big")
                    else:
                        seq = self.store(mail_from, rcpts, "\r\n".join(lines) + "\r\n")
                        await reply(f"250 2.0.0 OK queued as {seq}")
                    mail_from, rcpts = None, []
                elif verb == "RSET":
                    mail_from, rcpts = None, []
                    await reply("250 2.0.0 OK")
                elif verb == "NOOP":
                    await reply("250 2.0.0 OK")
                elif verb == "VRFY":
                    await reply("252 2.1.5 cannot verify, but will accept")
                elif verb == "QUIT":
                    await reply(f"221 2.0.0 {HOSTNAME} closing")
                    return
                elif verb in ("STARTTLS", "AUTH"):
                    await reply("502 5.5.1 not supported")
                else:
                    await reply("500 5.5.2 command not recognized")
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            try:
                writer.close()
                await writer.wait_closed()
            except Exception:  # noqa: BLE001
                pass


async def serve(args: argparse.Namespace) -> None:
    sink = Sink(Path(args.dir), verbose=args.verbose)
    server = await asyncio.start_server(sink.session, args.host, args.port, limit=MAX_LINE)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


# ---------------------------------------------------------------------------------------------------- reading
@dataclass
class Mail:
    """One stored mail."""

    seq: int
    sender: str
    to: List[str]
    subject: str
    text: str
    html: str
    raw: str
    path: Path
    doc: Dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Mail":
        doc = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            seq=int(doc["seq"]),
            sender=doc.get("from", ""),
            to=list(doc.get("to", [])),
            subject=doc.get("subject", ""),
            text=doc.get("text", ""),
            html=doc.get("html", ""),
            raw=doc.get("raw", ""),
            path=path,
            doc=doc,
        )

    def code(self) -> Optional[str]:
        """The code of the plain-text body (else the HTML body): a line of exactly six digits, else the first
        run of exactly six digits (which a link's UUID could also contain, hence the preference)."""
        for body in (self.text, self.html):
            m = CODE_LINE_RE.search(body)
            if m:
                return m.group(1)
        for body in (self.text, self.html):
            m = CODE_RE.search(body)
            if m:
                return m.group(0)
        return None

    def links(self) -> List[str]:
        """Every http(s) URL of the plain-text body (HTML entities such as &amp; undone)."""
        return [u.replace("&amp;", "&").rstrip(".,);") for u in URL_RE.findall(self.text or self.html)]

    def link(self, prefix: str = "") -> Optional[str]:
        """The first URL of the plain-text body that starts with `prefix`."""
        return next((u for u in self.links() if u.startswith(prefix)), None)


class MailDir:
    """The directory the sink writes to."""

    def __init__(self, path: "str | os.PathLike[str]"):
        self.path = Path(path)

    def all(self) -> List[Mail]:
        """Every mail, oldest first."""
        if not self.path.is_dir():
            return []
        return [Mail.load(p) for p in sorted(self.path.glob("[0-9]*.json"))]

    def mark(self) -> int:
        """The sequence number of the newest mail so far (0 for none): pass it as `after=`."""
        files = sorted(self.path.glob("[0-9]*.json")) if self.path.is_dir() else []
        return int(files[-1].stem) if files else 0

    def for_recipient(self, recipient: str, after: int = 0) -> List[Mail]:
        """Mails to `recipient` (case-insensitive) with a sequence number above `after`, oldest first."""
        r = recipient.lower()
        return [m for m in self.all() if m.seq > after and r in (t.lower() for t in m.to)]

    def newest(self, recipient: str, after: int = 0) -> Optional[Mail]:
        mails = self.for_recipient(recipient, after)
        return mails[-1] if mails else None

    def wait_for(
        self,
        recipient: str,
        after: int = 0,
        timeout: float = 15.0,
        predicate: Optional[Callable[[Mail], bool]] = None,
        interval: float = 0.1,
    ) -> Mail:
        """The newest mail to `recipient` after `after` (and matching `predicate`), polling until `timeout`
        seconds have passed; raises TimeoutError naming what did arrive."""
        deadline = time.monotonic() + timeout
        while True:
            mails = [m for m in self.for_recipient(recipient, after) if predicate is None or predicate(m)]
            if mails:
                return mails[-1]
            if time.monotonic() >= deadline:
                seen = [(m.seq, m.to, m.subject) for m in self.all() if m.seq > after]
                raise TimeoutError(
                    f"no mail to {recipient} in {self.path} within {timeout:g} s (after #{after}); "
                    f"mails that did arrive: {seen}"
                )
            time.sleep(interval)


def latest(args: argparse.Namespace) -> int:
    try:
        mail = MailDir(args.dir).wait_for(args.to, after=args.after, timeout=args.timeout)
    except TimeoutError as e:
        print(f"smtp_sink: {e}", file=sys.stderr)
        return 1
    if args.code:
        code = mail.code()
        if code is None:
            print(f"smtp_sink: no 6-digit code in {mail.path}", file=sys.stderr)
            return 1
        print(code)
    elif args.link is not None:
        link = mail.link(args.link)
        if link is None:
            print(f"smtp_sink: no link starting with {args.link!r} in {mail.path}", file=sys.stderr)
            return 1
        print(link)
    else:
        print(json.dumps(mail.doc, indent=1, ensure_ascii=False))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the SMTP server")
    s.add_argument("--dir", required=True, help="directory to write one JSON file per mail to")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one, printed)")
    s.add_argument("--port-file", help="also write the port to this file once listening")
    s.add_argument("--verbose", action="store_true", help="log every command to stderr")
    r = sub.add_parser("latest", help="print the newest mail to a recipient (JSON), or its code or link")
    r.add_argument("--dir", required=True)
    r.add_argument("--to", required=True, help="recipient address")
    r.add_argument("--after", type=int, default=0, help="only mails with a higher sequence number")
    r.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a mail")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--code", action="store_true", help="print the 6-digit code only")
    g.add_argument("--link", metavar="PREFIX", help="print the first URL starting with PREFIX only")
    args = ap.parse_args(argv)
    if args.command == "serve":
        try:
            asyncio.run(serve(args))
        except OSError as e:
            print(f"smtp_sink: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
            return 1
        return 0
    return latest(args)


if __name__ == "__main__":
    sys.exit(main())
