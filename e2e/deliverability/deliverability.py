#!/usr/bin/python3
"""Deliverability of every mail Sealpost writes, judged by independent tools.

Drives a running node (started by run.sh) to produce each kind — carrier and credentials
(a flagged mail to a new external recipient), reply (the portal over HTTPS: sign in, open,
reply), bounce (a flagged mail to a recipient the next hop refuses), password-reset and notice
(`sealpost user reset-password`, first as a link to the holder, then with
mail.reset_mail_to = sender, which also mails the holder a notice) — plus one mail relayed
unchanged. Then, for every mail the next hop (an SMTP sink) received:

  * every DKIM signature verifies with Python's `dkim` module (Debian's python3-dkim), the
    public keys given to it directly (no DNS);
  * `email.message_from_bytes(..., policy=email.policy.strict)` parses every part without a
    defect;
  * SpamAssassin (`spamassassin -L -t`, Debian's shipped rules, local tests only) scores it
    at most 1.0;
  * the relayed mail carries no signature of ours.

Prints a table (kind | dkim rsa | dkim ed25519 | strict parse | SA score), the SpamAssassin
rules that fired on each kind, and "N passed, M failed"; exits 1 on any failure.

  deliverability.py BIN CONFIG SMTP_PORT WEB_PORT PORTAL_HOST SINK_DIR RECORDS_JSON
"""
import email
import email.policy
import glob
import http.client
import json
import os
import re
import smtplib
import ssl
import subprocess
import sys
import time
import urllib.parse
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import dkim

ADVISOR = "advisor@bank.example"
CUSTOMER = "customer@example.com"
REFUSED = "nobody@reject.test"
NEW_PASSWORD = "blue tram 47 over rivers"
SA_LIMIT = 1.0
KINDS = ["carrier", "credentials", "reply", "bounce", "password-reset", "notice"]


def original(to, subject, text):
    msg = EmailMessage()
    msg["From"] = f"Anna Advisor <{ADVISOR}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="bank.example")
    msg.set_content(text)
    return msg


def submit(port, msg, to):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.send_message(msg, from_addr=ADVISOR, to_addrs=[to])


def sink_mails(sink):
    out = []
    for path in sorted(glob.glob(os.path.join(sink, "*.eml"))):
        with open(path, "rb") as f:
            data = f.read()
        with open(path[: -len(".eml")] + ".env") as f:
            env = json.load(f)
        msg = email.message_from_bytes(data, policy=email.policy.default)
        out.append({"path": path, "data": data, "env": env, "msg": msg})
    return out


def wait_for(sink, match, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in sink_mails(sink):
            if match(m):
                return m
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def kind_of(m):
    return str(m["msg"]["X-Sealpost-Kind"] or "").strip()


def kind_to(kind, rcpt):
    return lambda m: kind_of(m) == kind and rcpt in m["env"]["to"]


class Portal:
    """A browser-like HTTPS client: cookies, no redirects followed, the portal's host name in
    Host (the node listens on 127.0.0.1; the certificate is self-signed)."""

    def __init__(self, port, host):
        self.port, self.host, self.cookies = port, host, {}
        self.ctx = ssl._create_unverified_context()

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)
        h = {"Host": self.host}
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        for value in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        conn.close()
        return resp.status, resp.headers, data.decode("utf-8", "replace")

    def form(self, path, fields, headers=None):
        body = urllib.parse.urlencode(fields)
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        return self.request("POST", path, body, h)

    def multipart(self, path, fields):
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in fields:
            parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
        body = ("".join(parts) + f"--{boundary}--\r\n").encode()
        return self.request("POST", path, body,
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def hidden(page, name):
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    if not m:
        raise SystemExit(f"no hidden {name} in the page")
    return m.group(1)


def payload_of(carrier):
    for part in carrier["msg"].iter_attachments():
        if part.get_filename() == "secure.htm":
            html = part.get_payload(decode=True).decode("utf-8", "replace")
            m = re.search(r'<textarea[^>]*name="payload"[^>]*>(.*?)</textarea', html, re.S | re.I) \
                or re.search(r'<input[^>]*name="payload"[^>]*value="([^"]*)"', html, re.S | re.I)
            if m:
                return re.sub(r"\s+", "", m.group(1))
    raise SystemExit("no payload in the carrier's secure.htm")


def password_of(credentials):
    for line in credentials["msg"].get_body(preferencelist=("plain",)).get_content().splitlines():
        if line.startswith(("Password: ", "Passwort: ")):
            return line.split(": ", 1)[1].strip()
    raise SystemExit("no password line in the credentials mail")


def portal_reply(port, host, carrier, password):
    p = Portal(port, host)
    status, headers, _ = p.form("/login", {"address": CUSTOMER, "password": password, "next": "/"})
    if status != 303:
        raise SystemExit(f"login answered {status}")
    where = headers["Location"]
    if where.startswith("/welcome"):
        _, _, page = p.request("GET", where)
        status, _, _ = p.form("/welcome", {
            "csrf": hidden(page, "csrf"), "next": "/", "password": NEW_PASSWORD,
            "password2": NEW_PASSWORD, "question": "pet", "own_question": "", "answer": "Rex"})
        if status != 303:
            raise SystemExit(f"first sign-in page answered {status}")
    status, headers, _ = p.form("/open", {"payload": payload_of(carrier)}, {"Origin": "null"})
    if status != 303:
        raise SystemExit(f"POST /open answered {status}")
    message = headers["Location"]
    status, _, page = p.request("GET", message)
    if status != 200:
        raise SystemExit(f"GET {message} answered {status}")
    status, _, _ = p.multipart(f"{message}/reply", [
        ("csrf", hidden(page, "csrf")),
        ("body", "Thank you, I have read the contract and agree.\nBest regards,\nK. Customer")])
    if status != 303:
        raise SystemExit(f"the reply answered {status}")


def cli(bin_path, config, *args):
    subprocess.run([bin_path, *args, "--config", config], check=True,
                   stdout=subprocess.DEVNULL)


def produce(bin_path, config, smtp_port, web_port, host, sink):
    """Makes the node write every kind; returns the relayed mail's Message-ID."""
    submit(smtp_port, original(CUSTOMER, "[secure] Your contract",
                               "Dear customer,\n\nyour contract is attached to this message.\n"
                               "\nKind regards,\nAnna Advisor\n"), CUSTOMER)
    carrier = wait_for(sink, kind_to("carrier", CUSTOMER), "the carrier")
    credentials = wait_for(sink, kind_to("credentials", ADVISOR), "the credentials mail")
    plain = original("partner@example.org", "Meeting on Monday",
                     "Hello,\n\nsee you on Monday at ten.\n\nAnna\n")
    submit(smtp_port, plain, "partner@example.org")
    submit(smtp_port, original(REFUSED, "[secure] Your statement",
                               "Dear customer,\n\nyour statement is ready.\n"), REFUSED)
    portal_reply(web_port, host, carrier, password_of(credentials))
    wait_for(sink, kind_to("reply", ADVISOR), "the portal reply")
    wait_for(sink, kind_to("bounce", ADVISOR), "the bounce")
    cli(bin_path, config, "user", "reset-password", CUSTOMER)
    wait_for(sink, kind_to("password-reset", CUSTOMER), "the reset link")
    cli(bin_path, config, "settings", "set", "mail.reset_mail_to", "sender")
    cli(bin_path, config, "user", "reset-password", CUSTOMER)
    wait_for(sink, kind_to("password-reset", ADVISOR), "the reset password to the sender")
    wait_for(sink, kind_to("notice", CUSTOMER), "the notice")
    wait_for(sink, lambda m: str(m["msg"]["Message-ID"]) == plain["Message-ID"], "the relayed mail")
    return plain["Message-ID"]


def dkim_results(data, records):
    """{algorithm: [verified?, ...]} over the DKIM-Signature headers, in order."""
    def dnsfunc(name, timeout=5):
        return records.get(name.decode().rstrip(".").lower(), "").encode() or None

    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    out = {}
    verifier = dkim.DKIM(data, minkey=2048)
    for idx, header in enumerate(msg.get_all("DKIM-Signature") or []):
        m = re.search(r"\ba=([\w-]+)", re.sub(r"\s+", "", str(header)))
        algorithm = {"rsa-sha256": "rsa", "ed25519-sha256": "ed25519"}.get(m.group(1) if m else "", "other")
        try:
            ok = bool(verifier.verify(idx=idx, dnsfunc=dnsfunc))
        except dkim.DKIMException:
            ok = False
        out.setdefault(algorithm, []).append(ok)
    return out


def strict_defects(data):
    defects = []
    try:
        msg = email.message_from_bytes(data, policy=email.policy.strict)
        for part in msg.walk():
            defects += [repr(d) for d in part.defects]
            for name, value in part.items():
                defects += [f"{name}: {d!r}" for d in getattr(value, "defects", ())]
            if not part.is_multipart():
                part.get_content()
    except Exception as e:  # strict raises on the first defect
        defects.append(f"{type(e).__name__}: {e}")
    return defects


def spamassassin(data):
    """(score, [rules that fired with their points])."""
    run = subprocess.run(["spamassassin", "-L", "-t"], input=data, capture_output=True, timeout=120)
    report = run.stdout.decode("utf-8", "replace")
    m = re.search(r"X-Spam-Status: \w+, score=(-?[\d.]+)", report)
    if not m:
        raise SystemExit(f"spamassassin gave no score: {run.stderr.decode()[-500:]}")
    rules = re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", report, re.M)
    return float(m.group(1)), [f"{name} {points}" for points, name in rules]


def main(argv):
    if len(argv) != 7:
        raise SystemExit(__doc__)
    bin_path, config, smtp_port, web_port, host, sink, records_file = argv
    with open(records_file) as f:
        records = {k.lower(): v for k, v in json.load(f).items()}
    relayed_id = produce(bin_path, config, int(smtp_port), int(web_port), host, sink)
    mails = sink_mails(sink)
    passed = failed = 0
    rows, fired = [], []

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {what}")

    for kind in KINDS:
        found = [m for m in mails if kind_of(m) == kind]
        check(bool(found), f"no {kind} mail was delivered")
        for m in found:
            to = ",".join(m["env"]["to"])
            sigs = dkim_results(m["data"], records)
            defects = strict_defects(m["data"])
            score, rules = spamassassin(m["data"])
            rsa, ed = sigs.get("rsa", []), sigs.get("ed25519", [])
            check(rsa == [True], f"{kind} to {to}: RSA signature {rsa}")
            check(ed == [True], f"{kind} to {to}: Ed25519 signature {ed}")
            check(not sigs.get("other"), f"{kind} to {to}: unexpected signatures")
            check(not defects, f"{kind} to {to}: strict parse: {defects}")
            check(score <= SA_LIMIT, f"{kind} to {to}: SpamAssassin {score} > {SA_LIMIT}: {rules}")
            rows.append((f"{kind} ({to})", "pass" if rsa == [True] else f"FAIL {rsa}",
                         "pass" if ed == [True] else f"FAIL {ed}",
                         "ok" if not defects else f"{len(defects)} defects", f"{score:.1f}"))
            fired.append(f"{kind}: {', '.join(rules) or '(none)'}")
    relayed = [m for m in mails if str(m["msg"]["Message-ID"]) == relayed_id]
    check(len(relayed) == 1, "the relayed mail arrived once")
    for m in relayed:
        check("DKIM-Signature" not in m["msg"], "the relayed mail was signed by Sealpost")
        rows.append(("relay (pass-through)", "unsigned" if "DKIM-Signature" not in m["msg"] else "SIGNED",
                     "unsigned" if "DKIM-Signature" not in m["msg"] else "SIGNED", "-", "-"))

    head = ("kind", "dkim rsa", "dkim ed25519", "strict parse", "SA score")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head, tuple("-" * w for w in widths)] + rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    print("\nSpamAssassin rules that fired:")
    for line in fired:
        print(f"  {line}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
