#!/usr/bin/env python3
"""Mail side of the browser suite: submit the original over SMTP, and read what Sealpost
delivered into the maildir next hop. Called by run.sh (send) and by recipient.mjs (the
waits); answers are one JSON object on stdout.

  mail.py send SMTP_PORT OUTBOX WORK       send the flagged mail; write secure.htm, the
                                           generated password and the sent parts into WORK
  mail.py reply OUTBOX MESSAGE_ID          wait for the portal reply to MESSAGE_ID
  mail.py reset OUTBOX ADDRESS             wait for the password-reset mail to ADDRESS and
                                           give its one-time link
  mail.py code OUTBOX ADDRESS              wait for the one-time code (recovery or sign-in)
                                           mailed to ADDRESS
  mail.py send-to SMTP_PORT OUTBOX WORK ADDRESS
                                           send a short flagged mail to ADDRESS (a new
                                           recipient under mailbox-code); write its secure.htm
                                           into WORK and check that no credentials mail names it
  mail.py carrier OUTBOX                   how the carrier mail looks to a strict mail client:
                                           defects under email.policy.strict and the text of
                                           its text/plain part
  mail.py datafile SMTP_PORT OUTBOX WORK   send a flagged mail to DATAFILE_RECIPIENT (whose
                                           domain has delivery.profile datafile); write its
                                           message.sealpost and password into WORK (as
                                           datafile.sealpost, datafile-password) and describe
                                           the carrier (attachments, text, strict defects)
  mail.py send-link SMTP_PORT OUTBOX ADDRESS
                                           send a flagged mail to ADDRESS (a domain on the
                                           `link` profile); give the carrier's /m/ link, its
                                           attachments and the generated password
  mail.py send-to SMTP_PORT OUTBOX ADDRESS send a short flagged mail to ADDRESS; give the
                                           generated password if the mail created an account
  mail.py carriers OUTBOX ADDRESS COUNT    wait for COUNT carriers to ADDRESS; give the text
                                           and HTML parts of the COUNT-th
  mail.py logo                             a small real PNG logo as a data: URL
"""
import base64
import email
import email.policy
import glob
import json
import os
import smtplib
import sys
import time
import zlib
from email.message import EmailMessage
from email.utils import make_msgid

SENDER = "advisor@bank.example"
RECIPIENT = "customer@example.com"
SUBJECT = "[secure] Your statement"
TEXT = "Confidential text for the browser"


def png(width, height):
    """A small real PNG (a blue square with a white diagonal), so naturalWidth is meaningful."""
    rows = b""
    for y in range(height):
        row = b"\x00"
        for x in range(width):
            row += b"\xff\xff\xff" if abs(x - y) < 2 else b"\x1f\x5f\xa8"
        rows += row

    def chunk(kind, data):
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def pdf_like():
    """Binary bytes that look like a PDF: every byte value occurs, so any re-encoding shows."""
    body = bytes(range(256)) * 64 + os.urandom(4096)
    return b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + body + b"\n%%EOF\n"


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


def password_line(m):
    for line in m.get_content().splitlines():
        if line.startswith(("Password: ", "Passwort: ")):
            return line.split(": ", 1)[1].strip()
    return None


def code(outbox, address):
    def match(m):
        if m["X-Sealpost-Kind"] != "code" or address not in str(m["To"] or ""):
            return None
        for line in m.get_content().splitlines():
            if line.strip().startswith("Code: "):
                return line.split(": ", 1)[1].strip()
        return None
    return {"code": wait_for(outbox, match, "the recovery code mail")}


def send(port, outbox, work):
    image, attachment = png(48, 32), pdf_like()
    msg = EmailMessage()
    msg["From"] = f"Anna Advisor <{SENDER}>"
    msg["To"] = RECIPIENT
    msg["Subject"] = SUBJECT
    msg["Date"] = "Thu, 26 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = make_msgid(domain="bank.example")
    msg.set_content(f"{TEXT}\n\nYour statement for November is attached.\n")
    cid = make_msgid(domain="bank.example")
    msg.add_alternative(
        "<html><body><h2 style=\"color:#1f5fa8\">Your statement</h2>"
        f"<p id=\"text\">{TEXT}</p>"
        f"<p><img id=\"logo\" src=\"cid:{cid[1:-1]}\" alt=\"Bank logo\" width=\"48\" height=\"32\"></p>"
        "<p>Kind regards,<br>Anna Advisor</p></body></html>",
        subtype="html",
    )
    msg.get_payload()[1].add_related(image, maintype="image", subtype="png", cid=cid,
                                     disposition="inline", filename="logo.png")
    msg.add_attachment(attachment, maintype="application", subtype="pdf",
                       filename="statement-2026-11.pdf")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(msg, from_addr=SENDER, to_addrs=[RECIPIENT])

    def credentials(m):
        return password_line(m) if m["X-Sealpost-Kind"] == "credentials" else None

    def carrier(m):
        if m["X-Sealpost-Kind"] != "carrier":
            return None
        for part in m.iter_attachments():
            if part.get_filename() == "secure.htm":
                return part.get_payload(decode=True)
        return None

    password = wait_for(outbox, credentials, "the credentials mail")
    secure = wait_for(outbox, carrier, "the carrier mail")
    files = {"secure.htm": secure, "password": password.encode(), "attachment.pdf": attachment,
             "logo.png": image}
    for name, data in files.items():
        with open(os.path.join(work, name), "wb") as f:
            f.write(data)
    return {"message_id": msg["Message-ID"], "attachment": "statement-2026-11.pdf",
            "image_width": 48}


def send_to(port, outbox, work, address):
    """A first mail to a new recipient whose domain uses `recipients.first_contact =
    mailbox-code`: the carrier arrives, and no credentials mail is generated for it."""
    msg = EmailMessage()
    msg["From"] = f"Anna Advisor <{SENDER}>"
    msg["To"] = address
    msg["Subject"] = SUBJECT
    msg["Message-ID"] = make_msgid(domain="bank.example")
    msg.set_content(f"{TEXT}\n\nNo one phoned you a password for this one.\n")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(msg, from_addr=SENDER, to_addrs=[address])

    def carrier(m):
        if m["X-Sealpost-Kind"] != "carrier" or address not in str(m["To"] or ""):
            return None
        for part in m.iter_attachments():
            if part.get_filename() == "secure.htm":
                return part.get_payload(decode=True)
        return None

    secure = wait_for(outbox, carrier, f"the carrier mail to {address}")
    # The credentials mail would be committed with the carrier; give delivery a moment.
    time.sleep(1.0)
    credentials = [m for m in mails(outbox) if m["X-Sealpost-Kind"] == "credentials"
                   and address in m.get_content()]
    path = os.path.join(work, address.replace("@", "_at_") + ".htm")
    with open(path, "wb") as f:
        f.write(secure)
    return {"secure": path, "credentials_mails": len(credentials), "text": TEXT}


def reply(outbox, message_id):
    def match(m):
        if m["X-Sealpost-Kind"] != "reply":
            return None
        parts = [{"filename": p.get_filename(),
                  "b64": base64.b64encode(p.get_payload(decode=True)).decode()}
                 for p in m.iter_attachments()]
        body = m.get_body(preferencelist=("plain",))
        return {"in_reply_to": str(m["In-Reply-To"] or "").strip(),
                "delivered_to": str(m["Delivered-To"] or "").strip(),
                "from": str(m["From"] or ""), "subject": str(m["Subject"] or ""),
                "text": body.get_content() if body else "", "attachments": parts,
                "expected_in_reply_to": message_id}
    return wait_for(outbox, match, "the reply mail")


def reset(outbox, address):
    """The one-time link of an administrator's reset: on a line of its own in the text."""
    def match(m):
        if m["X-Sealpost-Kind"] != "password-reset" or address not in str(m["To"] or ""):
            return None
        for line in m.get_content().splitlines():
            if "/reset/" in line:
                return line.strip()
        return None
    return {"link": wait_for(outbox, match, "the password-reset mail")}


def carrier_view(outbox):
    """Parses the delivered carrier as a strict mail client would: email.policy.strict raises
    on any defect, so every header and every part's content is read, not just the top."""
    def find(m):
        return m if m["X-Sealpost-Kind"] == "carrier" else None

    path = None
    deadline = time.monotonic() + 20.0
    while path is None and time.monotonic() < deadline:
        for p in sorted(glob.glob(os.path.join(outbox, "*"))):
            with open(p, "rb") as f:
                if find(email.message_from_bytes(f.read(), policy=email.policy.default)):
                    path = p
                    break
        else:
            time.sleep(0.1)
    if path is None:
        raise SystemExit("timed out waiting for the carrier mail")
    with open(path, "rb") as f:
        data = f.read()
    defects, text, parts = [], None, []
    try:
        msg = email.message_from_bytes(data, policy=email.policy.strict)
        for part in msg.walk():
            defects += [repr(d) for d in part.defects]
            for name, value in part.items():
                defects += [f"{name}: {d!r}" for d in getattr(value, "defects", ())]
            parts.append(part.get_content_type())
            if not part.is_multipart():
                part.get_content()
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else None
    except Exception as e:  # strict raises the first defect it meets
        defects.append(f"{type(e).__name__}: {e}")
    return {"defects": defects, "text": text, "parts": parts}


DATAFILE_RECIPIENT = "reader@datafile.example"
DATAFILE_TEXT = "Confidential text for the data file"


def datafile(port, outbox, work):
    msg = EmailMessage()
    msg["From"] = f"Anna Advisor <{SENDER}>"
    msg["To"] = DATAFILE_RECIPIENT
    msg["Subject"] = "[secure] Your data file"
    msg["Date"] = "Thu, 26 Nov 2026 11:00:00 +0000"
    msg["Message-ID"] = make_msgid(domain="bank.example")
    msg.set_content(f"{DATAFILE_TEXT}\n")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(msg, from_addr=SENDER, to_addrs=[DATAFILE_RECIPIENT])

    def credentials(m):
        if m["X-Sealpost-Kind"] != "credentials" or DATAFILE_RECIPIENT not in m.get_content():
            return None
        return password_line(m)

    def carrier(m):
        if m["X-Sealpost-Kind"] != "carrier" or DATAFILE_RECIPIENT not in str(m["To"] or ""):
            return None
        return m

    password = wait_for(outbox, credentials, "the data-file recipient's credentials mail")
    m = wait_for(outbox, carrier, "the data-file carrier")
    attachments = [{"filename": p.get_filename(), "type": p.get_content_type()}
                   for p in m.iter_attachments()]
    for part in m.iter_attachments():
        if part.get_filename() == "message.sealpost":
            with open(os.path.join(work, "datafile.sealpost"), "wb") as f:
                f.write(part.get_payload(decode=True))
    with open(os.path.join(work, "datafile-password"), "w") as f:
        f.write(password)
    body = m.get_body(preferencelist=("plain",))
    defects = []
    try:
        email.message_from_bytes(m.as_bytes(policy=email.policy.SMTP), policy=email.policy.strict)
    except Exception as e:  # strict raises the first defect it meets
        defects.append(f"{type(e).__name__}: {e}")
    return {"address": DATAFILE_RECIPIENT, "attachments": attachments,
            "text": body.get_content() if body else "",
            "ledger_id": str(m["X-Sealpost-Message"] or "").strip(),
            "defects": defects, "body": DATAFILE_TEXT}
LINK_TEXT = "Confidential text behind a link"


def send_link(port, outbox, address):
    msg = EmailMessage()
    msg["From"] = f"Anna Advisor <{SENDER}>"
    msg["To"] = address
    msg["Subject"] = "[secure] Your contract"
    msg["Date"] = "Thu, 26 Nov 2026 11:00:00 +0000"
    msg["Message-ID"] = make_msgid(domain="bank.example")
    msg.set_content(f"{LINK_TEXT}\n\nPlease sign where marked.\n")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(msg, from_addr=SENDER, to_addrs=[address])

    def delivered_to(m, who):
        return str(m["Delivered-To"] or "").strip().lower() == who

    def credentials(m):
        if m["X-Sealpost-Kind"] != "credentials" or not delivered_to(m, SENDER):
            return None
        return password_line(m) if address in m.get_content() else None

    def carrier(m):
        if m["X-Sealpost-Kind"] != "carrier" or not delivered_to(m, address):
            return None
        body = m.get_body(preferencelist=("plain",))
        for word in (body.get_content() if body else "").split():
            if "/m/" in word:
                # The text may put the link in parentheses or end a sentence with it.
                return {"link": word.strip().strip("().,;"), "attachments":
                        [p.get_filename() for p in m.iter_attachments()]}
        return None

    found = wait_for(outbox, carrier, "the carrier mail with a link")
    found["password"] = wait_for(outbox, credentials, "the credentials mail")
    found["text"] = LINK_TEXT
    return found
def send_short(port, outbox, address):
    """A short flagged mail to `address`; the new account's password, or None for an account
    that already exists (no credentials mail then)."""
    before = sum(1 for m in mails(outbox) if m["X-Sealpost-Kind"] == "credentials"
                 and address in m.get_content())
    msg = EmailMessage()
    msg["From"] = f"Anna Advisor <{SENDER}>"
    msg["To"] = address
    msg["Subject"] = "[secure] A short note"
    msg["Message-ID"] = make_msgid(domain="bank.example")
    msg.set_content("A short confidential note.\n")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(msg, from_addr=SENDER, to_addrs=[address])
    if before:
        return {"password": None}

    def credentials(m):
        if m["X-Sealpost-Kind"] != "credentials" or address not in m.get_content():
            return None
        return password_line(m)
    return {"password": wait_for(outbox, credentials, f"the credentials mail for {address}")}


def carriers(outbox, address, count):
    """The text and HTML parts of the `count`-th carrier to `address` (in delivery order)."""
    def match(_):
        found = [m for m in mails(outbox) if m["X-Sealpost-Kind"] == "carrier"
                 and address in str(m["To"] or "")]
        return found if len(found) >= count else None
    nth = wait_for(outbox, match, f"{count} carriers to {address}")[count - 1]
    text = nth.get_body(preferencelist=("plain",))
    html = nth.get_body(preferencelist=("html",))
    return {"text": text.get_content() if text else "", "html": html.get_content() if html else ""}


def logo():
    return {"data_url": "data:image/png;base64," + base64.b64encode(png(120, 40)).decode()}


def main(argv):
    if argv[:1] == ["send"] and len(argv) == 4:
        out = send(int(argv[1]), argv[2], argv[3])
    elif argv[:1] == ["reply"] and len(argv) == 3:
        out = reply(argv[1], argv[2])
    elif argv[:1] == ["reset"] and len(argv) == 3:
        out = reset(argv[1], argv[2])
    elif argv[:1] == ["code"] and len(argv) == 3:
        out = code(argv[1], argv[2])
    elif argv[:1] == ["datafile"] and len(argv) == 4:
        out = datafile(int(argv[1]), argv[2], argv[3])
    elif argv[:1] == ["send-link"] and len(argv) == 4:
        out = send_link(int(argv[1]), argv[2], argv[3].lower())
    elif argv[:1] == ["send-to"] and len(argv) == 5:
        out = send_to(int(argv[1]), argv[2], argv[3], argv[4])
    elif argv[:1] == ["carrier"] and len(argv) == 2:
        out = carrier_view(argv[1])
    elif argv[:1] == ["send-to"] and len(argv) == 4:
        out = send_short(int(argv[1]), argv[2], argv[3])
    elif argv[:1] == ["carriers"] and len(argv) == 4:
        out = carriers(argv[1], argv[2], int(argv[3]))
    elif argv[:1] == ["logo"] and len(argv) == 1:
        out = logo()
    else:
        raise SystemExit(__doc__)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
