#!/usr/bin/env python3
"""Mail side of msgctl.mjs (message control): send one flagged mail to a new recipient and
wait for its credentials and carrier in the maildir next hop.

  msgctl_mail.py send SMTP_PORT OUTBOX WORK ADDRESS [EXPIRES]
      writes WORK/<ADDRESS>.secure.htm; prints {"password", "envelope_id", "secure",
      "status_link"} (status_link: the sender's /s/... link in the credentials mail)
      (envelope_id: the ledger id, bytes 5..21 of the envelope, as hex)
"""
import base64
import email
import email.policy
import glob
import json
import os
import re
import smtplib
import sys
import time
from email.message import EmailMessage
from email.utils import make_msgid

SENDER = "advisor@bank.example"


def mails(outbox):
    for path in sorted(glob.glob(os.path.join(outbox, "*"))):
        with open(path, "rb") as f:
            yield email.message_from_bytes(f.read(), policy=email.policy.default)


def wait_for(outbox, match, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in mails(outbox):
            found = match(m)
            if found is not None:
                return found
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def send(port, outbox, work, address, expires=None):
    msg = EmailMessage()
    msg["From"] = f"Anna Advisor <{SENDER}>"
    msg["To"] = address
    msg["Subject"] = "[secure] Your offer"
    msg["Date"] = "Thu, 26 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = make_msgid(domain="bank.example")
    if expires:
        msg["X-Sealpost-Expires"] = expires
    msg.set_content("Confidential offer text.\n")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(msg, from_addr=SENDER, to_addrs=[address])

    def credentials(m):
        if m["X-Sealpost-Kind"] != "credentials" or address not in m.get_content():
            return None
        for line in m.get_content().splitlines():
            if line.startswith(("Password: ", "Passwort: ")):
                return line.split(": ", 1)[1].strip()
        return None

    def carrier(m):
        if m["X-Sealpost-Kind"] != "carrier" or address not in str(m["To"]):
            return None
        for part in m.iter_attachments():
            if part.get_filename() == "secure.htm":
                return part.get_payload(decode=True)
        return None

    def status_link(m):
        if m["X-Sealpost-Kind"] != "credentials" or address not in m.get_content():
            return None
        found = re.search(r"https://\S+/s/[A-Za-z0-9_-]{43}", m.get_content())
        return found.group(0) if found else None

    password = wait_for(outbox, credentials, f"the credentials mail for {address}")
    link = wait_for(outbox, status_link, f"the status link for {address}")
    secure = wait_for(outbox, carrier, f"the carrier mail for {address}")
    path = os.path.join(work, f"{address}.secure.htm")
    with open(path, "wb") as f:
        f.write(secure)
    payload = re.search(rb'name="payload"[^>]*>([^<]*)<', secure) or re.search(
        rb"<textarea[^>]*>([^<]*)</textarea>", secure)
    value = payload.group(1) if payload else b""
    if not value:
        found = re.search(rb'value="([A-Za-z0-9+/=\s]+)"', secure)
        value = found.group(1) if found else b""
    envelope = base64.b64decode(b"".join(value.split()))
    return {"password": password, "envelope_id": envelope[5:21].hex(), "secure": path,
            "status_link": link}


if __name__ == "__main__":
    if len(sys.argv) >= 6 and sys.argv[1] == "send":
        print(json.dumps(send(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5],
                              sys.argv[6] if len(sys.argv) > 6 else None)))
    else:
        raise SystemExit(__doc__)
