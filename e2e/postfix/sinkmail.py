#!/usr/bin/env python3
"""Reads the files smtp-sink writes with `-d DIR/%H%M%S.` and checks them.

smtp-sink's dump format (man smtp-sink, "DUMP FILE FORMAT"): its own
X-Client-Addr / X-Client-Proto / X-Helo-Args / X-Mail-Args / X-Rcpt-Args
records, then a three-line `Received: ... (smtp-sink) ...` header, then the
message exactly as received (dot-unstuffed, lines ending in LF instead of
CRLF), then one extra empty line. Only what smtp-sink adds is removed here;
everything else is compared or inspected as the sink stored it.

Each sub-command prints one line that says what it saw and exits 0 (PASS) or
1 (FAIL); run.sh turns that into its PASS/FAIL lines.
"""

import argparse
import email
import email.policy
import os
import sys
import time


class SinkMail:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            raw = f.read()
        lines = raw.split(b"\n")
        self.mail_from = None
        self.rcpts = []
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith(b"X-Mail-Args: "):
                self.mail_from = _addr(line[len(b"X-Mail-Args: "):])
            elif line.startswith(b"X-Rcpt-Args: "):
                self.rcpts.append(_addr(line[len(b"X-Rcpt-Args: "):]))
            elif line.startswith(b"Received: ") and b"(smtp-sink)" in lines[i + 1]:
                # The sink's Received header is three lines long and ends its prefix.
                i += 1
                while i < len(lines) and lines[i][:1] in (b"\t", b" "):
                    i += 1
                break
            i += 1
        body = b"\n".join(lines[i:])
        # The sink appends one empty line after the message.
        if body.endswith(b"\n\n"):
            body = body[:-1]
        self.data = body
        self.msg = email.message_from_bytes(body, policy=email.policy.default)

    @property
    def kind(self):
        return (self.msg.get("X-Sealpost-Kind") or "").strip()

    @property
    def subject(self):
        return str(self.msg.get("Subject") or "")

    def describe(self):
        return "%s: from=<%s> to=%s kind=%s subject=%r" % (
            os.path.basename(self.path),
            self.mail_from,
            ",".join(self.rcpts),
            self.kind or "-",
            self.subject,
        )


def _addr(arg):
    """`<a@b> SIZE=…` → `a@b` (smtp-sink stores the MAIL/RCPT arguments verbatim)."""
    text = arg.decode("utf-8", "replace").strip()
    if text.startswith("<") and ">" in text:
        return text[1 : text.index(">")]
    return text.split()[0] if text else ""


def load_all(directory):
    mails = []
    if not os.path.isdir(directory):
        return mails
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        try:
            mails.append(SinkMail(path))
        except (OSError, IndexError):
            # The sink may still be writing this file; the next poll reads it whole.
            continue
    return mails


def matches(m, args):
    if args.rcpt and args.rcpt.lower() not in [r.lower() for r in m.rcpts]:
        return False
    if args.kind is not None and m.kind != args.kind:
        return False
    if args.mail_from is not None and (m.mail_from or "") != args.mail_from:
        return False
    if args.token and args.token.encode() not in m.data:
        return False
    return True


def cmd_wait(args):
    """Waits until a mail matching the filters is in DIR; prints its path."""
    deadline = time.time() + args.timeout
    while True:
        found = [m for m in load_all(args.dir) if matches(m, args)]
        # A file is written while the DATA phase runs; wait until it stops growing.
        if found:
            m = found[0]
            size = os.path.getsize(m.path)
            time.sleep(0.2)
            if os.path.getsize(m.path) == size:
                print(SinkMail(m.path).path)
                return 0
        if time.time() > deadline:
            seen = load_all(args.dir)
            print(
                "nothing matching after %ss; sink holds %d mail(s): %s"
                % (args.timeout, len(seen), "; ".join(m.describe() for m in seen[-5:]) or "none"),
            )
            return 1
        time.sleep(0.25)


def cmd_describe(args):
    print(SinkMail(args.file).describe())
    return 0


def cmd_count(args):
    print(sum(1 for m in load_all(args.dir) if matches(m, args)))
    return 0


def attachments(msg):
    return [p for p in msg.walk() if p.get_content_disposition() == "attachment"]


def text_of(msg):
    out = []
    for part in msg.walk():
        if part.get_content_maintype() == "text" and part.get_content_disposition() != "attachment":
            try:
                out.append(part.get_content())
            except (LookupError, UnicodeError):
                out.append(part.get_payload(decode=True).decode("utf-8", "replace"))
    return "\n".join(out)


def cmd_carrier(args):
    m = SinkMail(args.file)
    problems = []
    if m.kind != "carrier":
        problems.append("X-Sealpost-Kind is %r, not carrier" % m.kind)
    atts = attachments(m.msg)
    names = [a.get_filename() for a in atts]
    if names != ["secure.htm"]:
        problems.append("attachments %r, expected exactly ['secure.htm']" % names)
    page = b""
    if atts:
        page = atts[0].get_payload(decode=True) or b""
        if b'name="payload"' not in page or b"/open" not in page:
            problems.append("secure.htm has no payload form posting to /open")
    if args.secret.encode() in m.data or args.secret.encode() in page:
        problems.append("the plaintext body text appears in the carrier")
    if "[secure]" in m.subject.lower():
        problems.append("trigger keyword still in the subject")
    seen = "%s, attachments=%r, secure.htm %d bytes" % (m.describe(), names, len(page))
    if problems:
        print("%s; problems: %s" % (seen, "; ".join(problems)))
        return 1
    print(seen)
    return 0


def cmd_credentials(args):
    m = SinkMail(args.file)
    problems = []
    if m.kind != "credentials":
        problems.append("X-Sealpost-Kind is %r, not credentials" % m.kind)
    text = text_of(m.msg)
    if args.account.lower() not in text.lower():
        problems.append("the account address %s is not named" % args.account)
    pw_lines = [
        l for l in text.splitlines() if l.strip().startswith(("Password:", "Passwort:"))
    ]
    if len(pw_lines) != 1 or len(pw_lines[0].split(":", 1)[1].strip()) < 12:
        problems.append("no single 'Password: …' line with a password")
    seen = "%s, names %s, password line present=%s" % (
        m.describe(),
        args.account,
        bool(pw_lines),
    )
    if problems:
        print("%s; problems: %s" % (seen, "; ".join(problems)))
        return 1
    print(seen)
    return 0


def cmd_identical(args):
    """The delivered mail minus the Received headers Postfix prepended equals the original.

    Postfix (smtpd on port 25, and again on the re-injection port) prepends one
    `Received:` header per hop and adds nothing else to a message that already has
    From, To, Date and Message-ID. We drop exactly the leading `Received:` fields
    that name Postfix (`by <myhostname> (Postfix)`), require exactly --hops of them,
    and compare all remaining bytes with the original after mapping CRLF to LF (the
    sink stores LF line ends; SMTP itself carries CRLF).
    """
    m = SinkMail(args.file)
    with open(args.original, "rb") as f:
        original = f.read().replace(b"\r\n", b"\n")
    data = m.data
    stripped = []
    while data.startswith(b"Received: "):
        end = data.find(b"\n")
        while data[end + 1 : end + 2] in (b" ", b"\t"):
            end = data.find(b"\n", end + 1)
        field = data[: end + 1]
        if b"(Postfix)" not in field:
            break
        stripped.append(field)
        data = data[end + 1 :]
    problems = []
    if len(stripped) != args.hops:
        problems.append("expected %d Postfix Received headers, found %d" % (args.hops, len(stripped)))
    if data != original:
        # Show where they part, to make a failure easy to read.
        n = next((i for i, (a, b) in enumerate(zip(data, original)) if a != b), min(len(data), len(original)))
        problems.append(
            "differs at byte %d: got %r, expected %r" % (n, data[max(0, n - 20) : n + 40], original[max(0, n - 20) : n + 40])
        )
    seen = "%s, %d Postfix Received header(s) removed, %d bytes compared" % (
        m.describe(),
        len(stripped),
        len(original),
    )
    if problems:
        print("%s; problems: %s" % (seen, "; ".join(problems)))
        return 1
    print(seen + ", identical")
    return 0


def cmd_bounce(args):
    m = SinkMail(args.file)
    problems = []
    if m.kind != "bounce":
        problems.append("X-Sealpost-Kind is %r, not bounce" % m.kind)
    if m.mail_from != "":
        problems.append("envelope sender is <%s>, a bounce uses <>" % m.mail_from)
    if m.rcpts != [args.sender]:
        problems.append("sent to %r, not the original sender %s" % (m.rcpts, args.sender))
    body = m.data.decode("utf-8", "replace")
    if args.failed not in body:
        problems.append("the failed recipient %s is not named" % args.failed)
    if "Status: 5." not in body:
        problems.append("no permanent (5.x.x) Status field in the delivery-status part")
    seen = m.describe()
    if problems:
        print("%s; problems: %s" % (seen, "; ".join(problems)))
        return 1
    print(seen + ", names " + args.failed)
    return 0


def cmd_dkim(args):
    """Every DKIM signature verifies with Python's dkim module (Debian's python3-dkim; run
    this sub-command with /usr/bin/python3), the public keys given directly (--records: a
    JSON object, "selector._domainkey.domain" -> TXT value), and both algorithms are there."""
    import json
    import re
    import dkim

    with open(args.records) as f:
        records = {k.lower(): v for k, v in json.load(f).items()}

    def dnsfunc(name, timeout=5):
        return records.get(name.decode().rstrip(".").lower(), "").encode() or None

    m = SinkMail(args.file)
    headers = email.message_from_bytes(m.data, policy=email.policy.compat32).get_all("DKIM-Signature") or []
    verifier = dkim.DKIM(m.data, minkey=2048)
    results = []
    for idx, header in enumerate(headers):
        tag = re.search(r"\ba=([\w-]+)", re.sub(r"\s+", "", str(header)))
        try:
            ok = bool(verifier.verify(idx=idx, dnsfunc=dnsfunc))
        except dkim.DKIMException as e:
            ok = False
            print("signature %d: %s" % (idx, e))
        results.append("%s %s" % (tag.group(1) if tag else "?", "pass" if ok else "FAIL"))
    seen = "%s: %s" % (m.describe(), ", ".join(results) or "no DKIM signature")
    want = sorted(["rsa-sha256 pass", "ed25519-sha256 pass"])
    if sorted(results) != want:
        print(seen)
        return 1
    print(seen + ", after Postfix")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("wait", "count"):
        s = sub.add_parser(name)
        s.add_argument("dir")
        s.add_argument("--rcpt")
        s.add_argument("--kind")
        s.add_argument("--mail-from")
        s.add_argument("--token", help="a byte string the message must contain")
        s.add_argument("--timeout", type=float, default=30)
    s = sub.add_parser("describe")
    s.add_argument("file")
    s = sub.add_parser("carrier")
    s.add_argument("file")
    s.add_argument("--secret", required=True, help="body text that must not appear in clear")
    s = sub.add_parser("credentials")
    s.add_argument("file")
    s.add_argument("--account", required=True)
    s = sub.add_parser("identical")
    s.add_argument("file")
    s.add_argument("--original", required=True)
    s.add_argument("--hops", type=int, default=2)
    s = sub.add_parser("dkim")
    s.add_argument("file")
    s.add_argument("--records", required=True)
    s = sub.add_parser("bounce")
    s.add_argument("file")
    s.add_argument("--sender", required=True)
    s.add_argument("--failed", required=True)
    args = p.parse_args()
    return {
        "wait": cmd_wait,
        "count": cmd_count,
        "describe": cmd_describe,
        "carrier": cmd_carrier,
        "credentials": cmd_credentials,
        "identical": cmd_identical,
        "bounce": cmd_bounce,
        "dkim": cmd_dkim,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
