//! A small real SMTP server for tests: speaks EHLO/HELO, MAIL FROM, RCPT TO, DATA (with dot-unstuffing), RSET,
//! NOOP and QUIT on a free port, and sends every accepted mail to a channel. It can refuse mail (to simulate an
//! outage) and be stopped and restarted on the same port.
//!
//! It uses only `std` and `tokio`, so crates below `tests` can include this file in their own unit tests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// One mail the sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The `MAIL FROM` address.
    pub from: String,
    /// The `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, lines joined with CRLF.
    pub data: String,
}

impl Mail {
    /// A header's value (first occurrence, unfolded), by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(v) = found.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.trim().eq_ignore_ascii_case(name) {
                    found = Some(v.trim().to_owned());
                }
            }
        }
        found
    }

    /// The decoded text of every `text/plain` part (or the whole body of a single-part mail), joined.
    pub fn text_body(&self) -> String {
        self.parts("text/plain")
    }

    /// The decoded text of every `text/html` part, joined.
    pub fn html_body(&self) -> String {
        self.parts("text/html")
    }

    /// The first run of exactly six digits in the plaintext body.
    pub fn find_code(&self) -> Option<String> {
        let text = self.text_body();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                if i - start == 6 {
                    return Some(text[start..i].to_owned());
                }
            } else {
                i += 1;
            }
        }
        None
    }

    /// The first `http://` or `https://` URL in the plaintext body.
    pub fn find_url(&self) -> Option<String> {
        let text = self.text_body();
        let start = text.find("http://").or_else(|| text.find("https://"))?;
        let url: String = text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '<' | '>'))
            .collect();
        Some(url)
    }

    fn parts(&self, want: &str) -> String {
        let (head, body) = self.data.split_once("\r\n\r\n").unwrap_or((&self.data, ""));
        let head_mail = Mail {
            from: String::new(),
            to: Vec::new(),
            data: format!("{head}\r\n\r\n"),
        };
        let ctype = head_mail.header("Content-Type").unwrap_or_default();
        let cte = head_mail
            .header("Content-Transfer-Encoding")
            .unwrap_or_default();
        if let Some(boundary) = param(&ctype, "boundary") {
            let delim = format!("--{boundary}");
            return body
                .split(&delim)
                .skip(1)
                .filter(|p| !p.starts_with("--"))
                .map(|p| {
                    let part = Mail {
                        from: String::new(),
                        to: Vec::new(),
                        data: p.trim_start_matches("\r\n").to_owned(),
                    };
                    part.parts(want)
                })
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("\n");
        }
        let is_text_plain =
            ctype.is_empty() || ctype.to_ascii_lowercase().starts_with("text/plain");
        let matches = if want == "text/plain" {
            is_text_plain
        } else {
            ctype.to_ascii_lowercase().starts_with(want)
        };
        if !matches {
            return String::new();
        }
        decode(body, &cte)
    }
}

fn param(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn decode(body: &str, cte: &str) -> String {
    match cte.to_ascii_lowercase().as_str() {
        "quoted-printable" => decode_qp(body),
        "base64" => decode_b64(body),
        _ => body.trim_end_matches("\r\n").replace("\r\n", "\n"),
    }
}

fn decode_qp(body: &str) -> String {
    let mut out = Vec::new();
    for line in body.trim_end_matches("\r\n").split("\r\n") {
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' && i + 3 <= b.len() {
                if let Ok(v) = u8::from_str_radix(&line[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        if !soft {
            out.push(b'\n');
        }
    }
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_b64(body: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in body.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8_lossy(&out)
        .replace("\r\n", "\n")
        .trim_end_matches('\n')
        .to_owned()
}

/// How the sink answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Accept every mail.
    Accept,
    /// Greet with `421` and close (service not available).
    RefuseConnect,
    /// Answer `MAIL FROM` with `451` (local error, try again later).
    RefuseMail,
}

/// The running server.
pub struct SmtpSink {
    port: Arc<AtomicU16>,
    mode_tx: watch::Sender<Mode>,
    stop_tx: Option<watch::Sender<bool>>,
    mail_tx: mpsc::UnboundedSender<Mail>,
    /// Every accepted mail, in order.
    pub mails: mpsc::UnboundedReceiver<Mail>,
}

impl SmtpSink {
    /// Starts on a free port on 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (mail_tx, mails) = mpsc::unbounded_channel();
        let (mode_tx, _) = watch::channel(Mode::Accept);
        let mut sink = Self {
            port: Arc::new(AtomicU16::new(port)),
            mode_tx,
            stop_tx: None,
            mail_tx,
            mails,
        };
        sink.serve(listener);
        Ok(sink)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::SeqCst)
    }

    /// `smtp://127.0.0.1:<port>/?disable_starttls=true`.
    pub fn uri(&self) -> String {
        format!("smtp://127.0.0.1:{}/?disable_starttls=true", self.port())
    }

    /// Changes how the sink answers new transactions.
    pub fn set_mode(&self, mode: Mode) {
        self.mode_tx.send_replace(mode);
    }

    /// Stops listening (connections are refused until [`SmtpSink::restart`]).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            tx.send_replace(true);
            tx.closed().await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port()));
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener);
        Ok(())
    }

    /// The next accepted mail.
    pub async fn next_mail(&mut self) -> Option<Mail> {
        self.mails.recv().await
    }

    /// A mail accepted already, without waiting.
    pub fn try_next_mail(&mut self) -> Option<Mail> {
        self.mails.try_recv().ok()
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop_tx, mut stop_rx) = watch::channel(false);
        self.stop_tx = Some(stop_tx);
        let mail_tx = self.mail_tx.clone();
        let mode_rx = self.mode_tx.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let mail_tx = mail_tx.clone();
                        let mode = *mode_rx.borrow();
                        tokio::spawn(async move {
                            let _ = session(stream, mode, mail_tx).await;
                        });
                    }
                }
            }
            // Dropping the listener and the receiver frees the port and tells `stop` we are done.
            drop(listener);
            drop(stop_rx);
        });
    }
}

async fn session(
    stream: TcpStream,
    mode: Mode,
    mail_tx: mpsc::UnboundedSender<Mail>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if mode == Mode::RefuseConnect {
        write
            .write_all(b"421 sink.test Service not available\r\n")
            .await?;
        return Ok(());
    }
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end_matches(['\r', '\n']);
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            if mode == Mode::RefuseMail {
                b"451 4.3.0 try again later\r\n"
            } else {
                from = address(&cmd[10..]);
                to.clear();
                b"250 OK\r\n"
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&cmd[8..]));
            b"250 OK\r\n"
        } else if upper == "DATA" {
            if to.is_empty() {
                b"503 need RCPT\r\n"
            } else {
                write.write_all(b"354 end with .\r\n").await?;
                let mut data = Vec::new();
                loop {
                    let mut l = String::new();
                    if lines.read_line(&mut l).await? == 0 {
                        return Ok(());
                    }
                    let l = l.trim_end_matches(['\r', '\n']);
                    if l == "." {
                        break;
                    }
                    data.push(l.strip_prefix('.').unwrap_or(l).to_owned());
                }
                let _ = mail_tx.send(Mail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data: data.join("\r\n"),
                });
                b"250 OK queued\r\n"
            }
        } else if upper == "RSET" {
            from.clear();
            to.clear();
            b"250 OK\r\n"
        } else if upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg
        .strip_prefix('<')
        .and_then(|a| a.split_once('>'))
        .map(|(a, _)| a)
        .unwrap_or_else(|| arg.split_whitespace().next().unwrap_or_default());
    inner.to_owned()
}
