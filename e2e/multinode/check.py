#!/usr/bin/env python3
"""Checks run by run.sh against two nodes behind nginx. Prints PASS/FAIL per check."""
import email
import email.policy
import glob
import http.cookiejar
import os
import re
import signal
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

LB = os.environ["LB"]
SINK = os.environ["SINK_DIR"]
results = {"passed": 0, "failed": 0}


def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    results["passed" if ok else "failed"] += 1
    return ok


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browser():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ctx),
        urllib.request.HTTPCookieProcessor(jar),
        NoRedirect,
    )


def request(opener, path, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(LB + path, data=data)
    try:
        r = opener.open(req, timeout=30)
        return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")


def sink_mails():
    out = []
    for f in sorted(glob.glob(os.path.join(SINK, "*.eml"))):
        with open(f, "rb") as fh:
            out.append(email.message_from_bytes(fh.read(), policy=email.policy.default))
    return out


def wait_for(pred, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    return pred()


def send(port, rcpt, subject, body, extra=""):
    msg = (f"From: advisor@bank.example\r\nTo: {rcpt}\r\nSubject: {subject}\r\n{extra}"
           f"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n{body}\r\n")
    with smtplib.SMTP("127.0.0.1", int(port), timeout=30) as s:
        s.sendmail("advisor@bank.example", [rcpt], msg)


def credentials_and_payload(rcpt):
    def find():
        password = payload = None
        for m in sink_mails():
            kind = m["X-Sealpost-Kind"]
            if kind == "credentials" and rcpt in m.get_content():
                for line in m.get_content().splitlines():
                    if line.startswith(("Password: ", "Passwort: ")):
                        password = line.split(": ", 1)[1].strip()
            if kind == "carrier" and rcpt in str(m["To"]):
                for part in m.iter_attachments():
                    if part.get_filename() == "secure.htm":
                        html = part.get_payload(decode=True).decode()
                        payload = re.search(r'name="payload"[^>]*>([^<]*)<', html, re.S)
                        payload = payload.group(1) if payload else None
        return (password, payload) if password and payload else None
    return wait_for(find, 30)


# 1. A mail accepted by node A opens through the balancer, requests landing on both nodes,
#    with the session made on one node valid on the other.
send(os.environ["A_SMTP"], "kunde@example.com", "[secure] Statement", "Balance 42 EUR")
found = credentials_and_payload("kunde@example.com")
if check(found is not None, "node A accepted the flagged mail; carrier and credentials reached the sink"):
    password, payload = found
    b = browser()
    status, headers, _ = request(b, "/open", {"payload": payload})
    check(status == 303 and headers.get("Location", "").startswith("/open/"),
          f"POST /open through the balancer: HTTP {status} to {headers.get('Location')}")
    open_path = headers.get("Location", "")
    status, headers, _ = request(b, "/login", {"address": "kunde@example.com", "password": password, "next": open_path})
    login_node = headers.get("X-Upstream")
    check(status == 303, f"login through the balancer (served by {login_node})")
    upstreams, statuses = set(), []
    for _ in range(6):
        status, headers, body = request(b, open_path)
        upstreams.add(headers.get("X-Upstream"))
        statuses.append(status if "Balance 42 EUR" in body else f"{status} without the text")
    check(all(s == 200 for s in statuses), f"the message opened on every request: {statuses}")
    check(len(upstreams) == 2, f"requests landed on both nodes: {sorted(upstreams)}")
    check(any(u != login_node for u in upstreams), "the session made on one node is valid on the other")

# 2. Five failed logins spread over both nodes lock the account.
send(os.environ["B_SMTP"], "locked@example.com", "[secure] Hi", "x")
found = credentials_and_payload("locked@example.com")
if check(found is not None, "node B accepted a second flagged mail"):
    password, _ = found
    fail_nodes = set()
    for _ in range(5):
        status, headers, _ = request(browser(), "/login", {"address": "locked@example.com", "password": "wrong-" + password, "next": "/"})
        fail_nodes.add(headers.get("X-Upstream"))
    check(len(fail_nodes) == 2, f"failed logins reached both nodes: {sorted(fail_nodes)}")
    status, _, _ = request(browser(), "/login", {"address": "locked@example.com", "password": password, "next": "/"})
    check(status == 401, f"after 5 failures the right password is refused too (HTTP {status})")


def seqs(batch):
    counts = {}
    for m in sink_mails():
        s = m["X-Seq"]
        if s and s.startswith(batch + "-"):
            counts[s] = counts.get(s, 0) + 1
    return counts


def a_b_deliveries():
    def count(path):
        with open(path, errors="replace") as f:
            return sum(1 for line in f if "delivery attempt" in line)
    return count(os.environ["A_LOG"]), count(os.environ["B_LOG"])


# 3. 500 queued mails, delivered by both workers, arrive exactly once each.
before = a_b_deliveries()
for i in range(500):
    send(os.environ["A_SMTP"] if i % 2 == 0 else os.environ["B_SMTP"], f"r{i}@example.net", "plain", f"mail {i}", f"X-Seq: one-{i}\r\n")
counts = wait_for(lambda: seqs("one") if len(seqs("one")) >= 500 else None, 120) or seqs("one")
after = a_b_deliveries()
check(len(counts) == 500, f"all 500 mails arrived ({len(counts)} distinct)")
dups = sum(c - 1 for c in counts.values())
check(dups == 0, f"each exactly once (duplicates: {dups})")
check(after[0] > before[0] and after[1] > before[1], f"both workers delivered (A {after[0]-before[0]}, B {after[1]-before[1]} attempts)")

# 4. Killing node A in the middle of delivering 500 mails leaves nothing undelivered.
for i in range(500):
    send(os.environ["A_SMTP"], f"k{i}@example.net", "plain", f"mail {i}", f"X-Seq: two-{i}\r\n")
wait_for(lambda: len(seqs("two")) >= 50, 60)
os.kill(int(os.environ["A_PID"]), signal.SIGKILL)
delivered_at_kill = len(seqs("two"))
print(f"killed node A with {delivered_at_kill} of 500 delivered", flush=True)
counts = wait_for(lambda: seqs("two") if len(seqs("two")) >= 500 else None, 120) or seqs("two")
check(len(counts) == 500, f"after the kill, node B delivered the rest: {len(counts)} of 500 arrived, lost {500 - len(counts)}")
print(f"duplicates after the kill (preferred to loss, expected at most the in-flight mails): {sum(c - 1 for c in counts.values())}")

print(f"{results['passed']} passed, {results['failed']} failed")
raise SystemExit(1 if results["failed"] else 0)
