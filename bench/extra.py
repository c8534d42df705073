#!/usr/bin/env python3
"""Measurements for bench/extra.sh (parts E and D); each sub-command prints JSON.

rss PID: VmHWM / VmRSS of a process in MB (from /proc/PID/status).
idle: opens --count SMTP connections to --port, reads each greeting, keeps them idle for
    --hold seconds, reads the memory of --pid meanwhile, then closes them.
portal: part D. Sends one [secure] mail per size through Sealpost (whose delivery.relay is
    an smtp-sink -d writing to --sink-dir), takes the initial password from the credentials
    mail, signs in, answers /welcome, and then times POST /open + GET /open/{token} with the
    payload of each carrier's secure.htm: one client (median of --reps) and --clients
    concurrent clients (threads, each bound to its own 127.0.0.x source address so that the
    per-address rate limit of POST /open is not what is measured; they share the session).
    Per size it also notes the server's peak RSS of one single open (the first of that size,
    VmHWM reset through /proc/PID/clear_refs) above its RSS just before, and the CPU seconds
    of server and client during the concurrent phase (is the Python client the bottleneck?).
single-open: in a freshly started server on the same database, logs in, waits, and opens
    one --size message: its peak RSS (VmHWM, reset first) above the idle RSS before it.
ratio: portal single-client median ÷ bare decrypt + decompress median (criterion's
    estimates.json under --criterion, group bare_open/<size>) per size.
"""

import argparse
import email
import email.policy
import html
import http.client
import json
import os
import re
import smtplib
import socket
import statistics
import sys
import threading
import time
import urllib.parse
from email.message import EmailMessage


def mem(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                k, v = line.split(":", 1)
                out[k] = round(int(v.split()[0]) / 1024.0, 1)  # kB → MB (MiB)
    return {"vmhwm_mb": out.get("VmHWM"), "vmrss_mb": out.get("VmRSS")}


def reset_peak(pid):
    """Resets VmHWM to the current RSS (Linux ≥ 4.0, needs the right to write clear_refs)."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_s(pid):
    """utime + stime of a process in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cmd_rss(args):
    print(json.dumps(mem(args.pid)))
    return 0


def cmd_idle(args):
    before = mem(args.pid)
    socks = []
    greeted = 0
    t0 = time.monotonic()
    for _ in range(args.count):
        s = socket.create_connection(("127.0.0.1", args.port), timeout=30)
        socks.append(s)
    for s in socks:
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(1024)
            if not chunk:
                break
            buf += chunk
        if buf.startswith(b"220"):
            greeted += 1
    opened_s = time.monotonic() - t0
    time.sleep(args.hold)
    during = mem(args.pid)
    # Is the server still responsive with all of them open? One more session, timed.
    t1 = time.monotonic()
    extra_ok = False
    try:
        c = smtplib.SMTP("127.0.0.1", args.port, timeout=30)
        c.ehlo("probe.example")
        c.quit()
        extra_ok = True
    except Exception:
        pass
    probe_ms = round(1000 * (time.monotonic() - t1), 1)
    for s in socks:
        s.close()
    time.sleep(2)
    after = mem(args.pid)
    print(json.dumps({
        "connections": args.count, "greeted": greeted, "open_s": round(opened_s, 2),
        "before": before, "during": during, "after_close": after,
        "extra_session_ok": extra_ok, "extra_session_ms": probe_ms,
    }))
    return 0 if greeted == args.count else 1


# ---------------------------------------------------------------- part D

def files(d):
    """Mail files of smtp-sink -d (no extension) or e2e/lib/smtpsink.py (*.eml)."""
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    return sorted(os.path.join(d, n) for n in names
                  if n != "log" and not n.endswith((".env", ".tmp")))


def wait_new(d, known, n, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [f for f in files(d) if f not in known]
        if len(new) >= n:
            time.sleep(0.3)  # smtp-sink writes the file while it receives
            return [f for f in files(d) if f not in known]
        time.sleep(0.1)
    raise RuntimeError("sink did not get %d new mail(s)" % n)


def parse(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def kind(m):
    return (m.get("X-Sealpost-Kind") or "").strip()


def payload_of(carrier):
    for part in carrier.walk():
        if part.get_filename() == "secure.htm":
            page = part.get_payload(decode=True).decode("utf-8", "replace")
            m = re.search(r'<textarea[^>]*name="payload"[^>]*>(.*?)</textarea', page, re.S | re.I)
            if not m:
                m = re.search(r'<input[^>]*name="payload"[^>]*value="([^"]*)"', page, re.S | re.I)
            if m:
                return re.sub(r"\s+", "", html.unescape(m.group(1)))
    raise RuntimeError("no payload in the carrier's secure.htm")


def password_of(cred):
    for part in cred.walk():
        if part.get_content_type() == "text/plain":
            for line in part.get_content().splitlines():
                if line.strip().startswith(("Password:", "Passwort:")):
                    return line.split(":", 1)[1].strip()
    raise RuntimeError("no password line in the credentials mail")


def make_mail(size, rcpt, label):
    msg = EmailMessage()
    msg["From"] = "a@bank.example"
    msg["To"] = rcpt
    msg["Subject"] = "[secure] portal bench %s" % label
    msg.set_content("Statement attached.\n" * 20)
    # Incompressible, like a PDF or JPEG: zstd cannot make it smaller.
    msg.add_attachment(os.urandom(size), maintype="application", subtype="pdf",
                       filename="statement-%s.pdf" % label)
    return msg


class Client:
    """HTTP/1.1 keep-alive client with a shared cookie dict and a fixed source address."""

    def __init__(self, port, cookies, source_ip):
        self.port, self.cookies, self.source_ip = port, cookies, source_ip
        self.conn = None

    def request(self, method, path, body=None, ctype=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300,
                                                       source_address=(self.source_ip, 0))
            headers = {"Cookie": "; ".join("%s=%s" % kv for kv in self.cookies.items())}
            if ctype:
                headers["Content-Type"] = ctype
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            for k, v in r.getheaders():
                if k.lower() == "set-cookie":
                    name, _, rest = v.partition("=")
                    self.cookies[name.strip()] = rest.split(";", 1)[0]
            return r.status, r.getheader("Location"), data
        raise RuntimeError("unreachable")


def form(**kw):
    return urllib.parse.urlencode(kw).encode(), "application/x-www-form-urlencoded"


def open_once(client, body, split=None):
    t0 = time.monotonic()
    status, loc, _ = client.request("POST", "/open", body, "application/x-www-form-urlencoded")
    if status not in (302, 303) or not loc or not loc.startswith("/open/"):
        raise RuntimeError("POST /open: %s %s" % (status, loc))
    t1 = time.monotonic()
    status, loc2, page = client.request("GET", loc)
    if status != 200:
        raise RuntimeError("GET %s: %s %s" % (loc, status, loc2))
    t2 = time.monotonic()
    if split is not None:
        split.append((t1 - t0, t2 - t1))
    return t2 - t0, len(page)


def cmd_portal(args):
    rcpt = args.rcpt
    sizes = [int(s) for s in args.sizes.split(",")]
    smtp = lambda: smtplib.SMTP("127.0.0.1", args.smtp_port, timeout=300)
    # Warm-up mail: creates the account, which yields a credentials mail and a carrier.
    known = set(files(args.sink_dir))
    with smtp() as s:
        s.send_message(make_mail(1000, rcpt, "warmup"))
    new = wait_new(args.sink_dir, known, 2)
    known |= set(new)
    password = None
    for f in new:
        m = parse(f)
        if kind(m) == "credentials":
            password = password_of(m)
    if not password:
        raise RuntimeError("no credentials mail among %r" % new)
    payloads = {}
    for size in sizes:
        with smtp() as s:
            s.send_message(make_mail(size, rcpt, str(size)))
        new = wait_new(args.sink_dir, known, 1)
        known |= set(new)
        carrier = parse(new[0])
        payloads[size] = form(payload=payload_of(carrier))[0]

    cookies = {}
    c = Client(args.web_port, cookies, "127.0.0.2")
    body, ct = form(address=rcpt, password=password, next="/")
    status, loc, _ = c.request("POST", "/login", body, ct)
    if status not in (302, 303):
        raise RuntimeError("login: %s" % status)
    status, loc2, page = c.request("GET", loc or "/welcome")
    text = page.decode("utf-8", "replace")
    current_pw = password
    if "/welcome" in (loc or "") or 'action="/welcome"' in text:
        if status != 200:
            status, _, page = c.request("GET", "/welcome?next=/")
            text = page.decode("utf-8", "replace")
        csrf = re.search(r'name="csrf" value="([^"]*)"', text).group(1)
        q = re.findall(r'<option value="([^"]+)"', text)
        new_pw = "Bench-Portal-Passw0rd-%d!" % os.getpid()
        fields = dict(csrf=csrf, next="/", password=new_pw, password2=new_pw)
        if 'name="answer"' in text:
            fields.update(question=q[0] if q else "", answer="bench answer")
        body, ct = form(**fields)
        status, loc, page = c.request("POST", "/welcome", body, ct)
        if status not in (302, 303):
            raise RuntimeError("welcome: %s %s" % (status, page[:300]))
        current_pw = new_pw

    results, single_rss = [], []
    for size in sizes:
        body = payloads[size]
        # The first open of this size (also the warm-up, not timed): the server's peak RSS
        # during it, above its RSS just before.
        if args.pid:
            time.sleep(0.5)
            before = mem(args.pid)
            reset = reset_peak(args.pid)
        open_once(c, body)
        if args.pid:
            peak = mem(args.pid)
            single_rss.append({
                "size": size, "rss_before_mb": before["vmrss_mb"], "vmhwm_mb": peak["vmhwm_mb"],
                "peak_above_mb": round(peak["vmhwm_mb"] - before["vmrss_mb"], 1) if reset else None,
                "hwm_reset": reset,
            })
            print(json.dumps(single_rss[-1]), file=sys.stderr)
        single, split = [], []
        page_len = 0
        single_cpu0 = cpu_s(args.pid) if args.pid else None
        for _ in range(args.reps):
            dt, page_len = open_once(c, body, split)
            single.append(dt)
        single_cpu = cpu_s(args.pid) - single_cpu0 if args.pid else None
        # Concurrent clients: each its own connection and source address, shared session.
        if size <= 256 * 1024:
            rounds = args.rounds_small
        elif size <= 2 * 1024 * 1024:
            rounds = args.rounds
        else:
            rounds = args.rounds_big
        lat, errors = [], []
        lock = threading.Lock()
        start_evt = threading.Event()

        def worker(i):
            cl = Client(args.web_port, dict(cookies), "127.0.0.%d" % (10 + i))
            start_evt.wait()
            for _ in range(rounds):
                try:
                    dt, _ = open_once(cl, body)
                    with lock:
                        lat.append(dt)
                except Exception as e:  # noqa: BLE001 - reported
                    with lock:
                        errors.append(str(e)[:200])

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        if args.pid:
            conc_before = mem(args.pid)
            reset_peak(args.pid)
            server_cpu0 = cpu_s(args.pid)
        client_cpu0 = sum(os.times()[:2])
        t0 = time.monotonic()
        start_evt.set()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        client_cpu = sum(os.times()[:2]) - client_cpu0
        server_cpu = cpu_s(args.pid) - server_cpu0 if args.pid else None
        results.append({
            "size": size, "payload_bytes": len(body), "page_bytes": page_len,
            "single_median_ms": round(1000 * statistics.median(single), 1),
            "single_all_ms": [round(1000 * x, 1) for x in single],
            "single_post_median_ms": round(1000 * statistics.median(p for p, _ in split), 1),
            "single_get_median_ms": round(1000 * statistics.median(g for _, g in split), 1),
            "single_server_cpu_ms": round(1000 * single_cpu / args.reps, 1) if args.pid else None,
            "clients": args.clients, "rounds": rounds, "opens": len(lat),
            "errors": len(errors), "first_error": errors[0] if errors else None,
            "conc_median_ms": round(1000 * statistics.median(lat), 1) if lat else None,
            "conc_max_ms": round(1000 * max(lat), 1) if lat else None,
            "conc_wall_s": round(wall, 2),
            "conc_opens_per_s": round(len(lat) / wall, 1),
            "conc_mb_per_s": round(len(lat) * size / wall / 1048576, 1),
            "conc_server_cpu_s": round(server_cpu, 2) if server_cpu is not None else None,
            "conc_client_cpu_s": round(client_cpu, 2),
            "sealpost_mem_before": conc_before if args.pid else None,
            "sealpost_mem": mem(args.pid) if args.pid else None,
        })
        print(json.dumps(results[-1]), file=sys.stderr)
    if args.rss_out:
        with open(args.rss_out, "w") as f:
            json.dump({"single_open_rss": single_rss}, f)
    if args.state_dir:
        # For `single-open` in a fresh process: the account's password and the payloads.
        with open(os.path.join(args.state_dir, "state.json"), "w") as f:
            json.dump({"rcpt": rcpt, "password": current_pw, "sizes": sizes}, f)
        for size in sizes:
            with open(os.path.join(args.state_dir, "payload-%d.form" % size), "wb") as f:
                f.write(payloads[size])
    print(json.dumps({"portal": results}))
    return 0


def cmd_single_open(args):
    """One open of --size in a freshly started server (same database and master key as a
    `portal` run that wrote --state-dir): peak RSS above the idle, logged-in process."""
    with open(os.path.join(args.state_dir, "state.json")) as f:
        state = json.load(f)
    with open(os.path.join(args.state_dir, "payload-%d.form" % args.size), "rb") as f:
        body = f.read()
    c = Client(args.web_port, {}, "127.0.0.3")
    form_body, ct = form(address=state["rcpt"], password=state["password"], next="/")
    status, _, _ = c.request("POST", "/login", form_body, ct)
    if status not in (302, 303):
        raise RuntimeError("login: %s" % status)
    time.sleep(args.settle)
    idle = mem(args.pid)
    reset = reset_peak(args.pid)
    dt, _ = open_once(c, body)
    time.sleep(0.5)
    peak = mem(args.pid)
    print(json.dumps({
        "size": args.size, "idle_rss_mb": idle["vmrss_mb"], "vmhwm_mb": peak["vmhwm_mb"],
        "peak_above_idle_mb": round(peak["vmhwm_mb"] - idle["vmrss_mb"], 1) if reset else None,
        "hwm_reset": reset, "open_ms": round(1000 * dt, 1), "after_mb": peak["vmrss_mb"],
    }))
    return 0


def cmd_ratio(args):
    portal = json.loads(args.portal_json)["portal"]
    out = []
    for r in portal:
        est = os.path.join(args.criterion, "bare_open", str(r["size"]), "new", "estimates.json")
        try:
            with open(est) as f:
                bare_ms = json.load(f)["median"]["point_estimate"] / 1e6  # ns → ms
        except (OSError, KeyError, ValueError) as e:
            out.append({"size": r["size"], "error": "no criterion estimate: %s" % e})
            continue
        out.append({
            "size": r["size"],
            "portal_single_median_ms": r["single_median_ms"],
            "bare_median_ms": round(bare_ms, 2),
            "portal_over_bare": round(r["single_median_ms"] / bare_ms, 2),
        })
        print("   %9d B: portal %8.1f ms, bare %8.2f ms, ratio %6.2f" % (
            r["size"], r["single_median_ms"], bare_ms, r["single_median_ms"] / bare_ms),
            file=sys.stderr)
    print(json.dumps({"ratio": out}))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("rss")
    s.add_argument("pid", type=int)
    s = sub.add_parser("idle")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--count", type=int, default=1000)
    s.add_argument("--hold", type=float, default=5)
    s = sub.add_parser("portal")
    s.add_argument("--smtp-port", type=int, required=True)
    s.add_argument("--web-port", type=int, required=True)
    s.add_argument("--sink-dir", required=True)
    s.add_argument("--pid", type=int, default=0)
    s.add_argument("--rcpt", default="reader@kunde.example")
    s.add_argument("--sizes", default="102400,1048576,20971520")
    s.add_argument("--reps", type=int, default=7, help="single-client opens per size (median)")
    s.add_argument("--clients", type=int, default=16)
    s.add_argument("--rounds-small", type=int, default=40,
                   help="opens per concurrent client up to 256 KB")
    s.add_argument("--rounds", type=int, default=10, help="opens per concurrent client up to 2 MB")
    s.add_argument("--rounds-big", type=int, default=1, help="opens per concurrent client above 2 MB")
    s.add_argument("--rss-out", default="", help="write the single-open RSS figures here (JSON)")
    s.add_argument("--state-dir", default="", help="keep password and payloads here for single-open")
    s = sub.add_parser("single-open")
    s.add_argument("--web-port", type=int, required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--state-dir", required=True)
    s.add_argument("--size", type=int, default=20971520)
    s.add_argument("--settle", type=float, default=2.0, help="seconds between login and open")
    s = sub.add_parser("ratio")
    s.add_argument("--criterion", required=True, help="criterion's output directory")
    s.add_argument("--portal-json", required=True, help="the output of `portal`")
    args = p.parse_args()
    return {"rss": cmd_rss, "idle": cmd_idle, "portal": cmd_portal, "ratio": cmd_ratio,
            "single-open": cmd_single_open}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
