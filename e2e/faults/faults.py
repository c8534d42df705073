#!/usr/bin/env python3
"""Fault scenarios against real `sealpost serve` processes (SQLite in temp dirs) with a real
SMTP sink as next hop. Python standard library only.

  python3 faults.py --bin target/debug/sealpost [--mails 2000] [--pause 15] [--only NAME]

Scenarios (names for --only): crash, hop-down, bounce, hang, disk-full, db-down, overload.
db-down needs PostgreSQL (SEALPOST_FAULTS_PG, default postgres://postgres@127.0.0.1:5432/postgres);
it only creates, locks and drops its own scratch database.
Prints what each scenario did and its counts, then "N passed, M failed"; exit 1 on failure.
Everything it starts is stopped, and every mount it made is unmounted, when it exits.
"""
import argparse
import email.header
import email.parser
import glob
import json
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SINK = os.path.join(HERE, "..", "lib", "smtpsink.py")
ID_RE = re.compile(r"fid-[a-z0-9]+-\d{6}")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")

PROCS = []       # every child process, stopped at exit
MOUNTS = []      # every tmpfs mounted, unmounted at exit
RESULTS = []     # (name, ok, detail)


def log(msg):
    print(msg, flush=True)


def check(name, ok, detail=""):
    RESULTS.append((name, ok, detail))
    log("  %s  %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(cmd, logfile, env=None):
    f = open(logfile, "ab")
    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    f.close()
    PROCS.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    for m in MOUNTS:
        subprocess.call(["umount", "-l", m], stderr=subprocess.DEVNULL)


def wait_port(port, timeout=30.0, proc=None):
    """Waits for an SMTP greeting on port."""
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(64).startswith(b"220"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("port %d did not answer" % port)


class Sink:
    def __init__(self, workdir, port=None, extra=(), script=SINK):
        self.dir = os.path.join(workdir, "sink")
        self.port = port or free_port()
        self.extra = list(extra)
        self.script = script
        self.log = os.path.join(workdir, "sink.log")
        self.proc = None

    def start(self, extra=None):
        if extra is not None:
            self.extra = list(extra)
        self.proc = spawn([sys.executable, self.script, "--port", str(self.port),
                           "--dir", self.dir] + self.extra, self.log)
        wait_port(self.port, proc=self.proc)

    def stop(self):
        stop(self.proc)

    def mails(self):
        """[(envelope dict, header dict, raw bytes)] of every mail written so far."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.dir, "*.eml"))):
            with open(path, "rb") as f:
                raw = f.read()
            with open(path[:-4] + ".env") as f:
                env = json.load(f)
            out.append((env, headers(raw), raw))
        return out


def headers(raw):
    msg = email.parser.BytesHeaderParser().parsebytes(raw)
    h = {}
    for k, v in msg.items():
        try:
            v = str(email.header.make_header(email.header.decode_header(v)))
        except Exception:
            v = str(v)
        h.setdefault(k.lower(), v)
    return h


class Node:
    def __init__(self, binary, workdir, relay, database_url=None, smtp_extra=None, **delivery):
        self.binary = binary
        self.dir = workdir
        self.smtp_port = free_port()
        self.web_port = free_port()
        self.log = os.path.join(workdir, "node.log")
        self.proc = None
        self.config = os.path.join(workdir, "sealpost.toml")
        d = {"relay": relay, "retry_base_secs": 1, "retry_max_secs": 2, "lease_secs": 5,
             "concurrency": 16}
        d.update(delivery)
        lines = ['data_dir = "%s"' % os.path.join(workdir, "data"),
                 'hostname = "gw.test"', "",
                 "[smtp]", 'listen = "127.0.0.1:%d"' % self.smtp_port]
        for k, v in (smtp_extra or {}).items():
            lines.append('%s = %s' % (k, json.dumps(v)))
        lines += ["",
                 "[web]", 'listen = "127.0.0.1:%d"' % self.web_port,
                 'public_url = "http://127.0.0.1:%d"' % self.web_port, 'tls = "off"', "",
                 "[policy]", 'internal_domains = ["bank.example"]', ""]
        if database_url:
            lines += ["[database]", 'url = %s' % json.dumps(database_url), ""]
        lines.append("[delivery]")
        for k, v in d.items():
            lines.append('%s = %s' % (k, json.dumps(v)))
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        env = dict(os.environ, SEALPOST_LOG="info,sqlx=warn", NO_COLOR="1")
        self.proc = spawn([self.binary, "serve", "--config", self.config], self.log, env=env)
        wait_port(self.smtp_port, timeout=60, proc=self.proc)

    def kill9(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        stop(self.proc)

    def log_count(self, pattern):
        with open(self.log, "rb") as f:
            text = ANSI_RE.sub("", f.read().decode("utf-8", "replace"))
        return len(re.findall(pattern, text))


def make_mail(fid, sender="load@bank.example", to="kunde@example.com", secure=False,
              body_lines=20):
    subject = "load %s%s" % (fid, " [secure]" if secure else "")
    body = "".join("line %d of %s, some text to give the mail a body\r\n" % (i, fid)
                   for i in range(body_lines))
    return ("From: Load <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@load.test>\r\n"
            "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nX-Fault-Id: %s\r\n\r\n%s"
            % (sender, to, subject, fid, fid, body)).encode()


def send_one(port, sender, rcpts, data, timeout=10):
    """One transaction on a fresh connection; True on 250 for every recipient."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="load.test", timeout=timeout) as s:
        refused = s.sendmail(sender, rcpts, data)
        return not refused


class LoadClient:
    """Sends mails like an MTA does: a mail counts as accepted only after the 250 to DATA;
    any error (connection refused or reset, 4xx, no reply) means keep it and try again."""

    def __init__(self, port, mails, threads=8):
        self.port = port
        self.todo = list(mails)   # [(fid, sender, rcpt, data)]
        self.lock = threading.Lock()
        self.accepted = set()
        self.retried = set()   # ids with a failed attempt: a re-send may duplicate them
        self.attempts = 0
        self.errors = 0
        self.threads = threads

    def run(self):
        ts = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.threads)]
        for t in ts:
            t.start()
        return ts

    def next(self):
        with self.lock:
            return self.todo.pop() if self.todo else None

    def worker(self):
        conn = None
        item = self.next()
        deadline = time.time() + 600
        while item is not None and time.time() < deadline:
            fid, sender, rcpt, data = item
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", self.port, local_hostname="load.test",
                                        timeout=15)
                with self.lock:
                    self.attempts += 1
                refused = conn.sendmail(sender, [rcpt], data)
                if refused:
                    raise smtplib.SMTPRecipientsRefused(refused)
                with self.lock:
                    self.accepted.add(fid)
                item = self.next()
            except (smtplib.SMTPException, OSError):
                with self.lock:
                    self.errors += 1
                    self.retried.add(fid)
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                conn = None
                time.sleep(0.2)
        if conn is not None:
            try:
                conn.quit()
            except Exception:
                pass


def delivered_ids(sink):
    counts = {}
    for _env, h, _raw in sink.mails():
        m = ID_RE.search(h.get("subject", ""))
        if m:
            counts[m.group(0)] = counts.get(m.group(0), 0) + 1
    return counts


def wait_until(pred, timeout, step=0.5):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ---------------------------------------------------------------- scenarios

def scenario_crash(args, root):
    log("\n[1] crash: %d mails, kill -9 the node 3 times at random moments, restart it"
        % args.mails)
    work = os.path.join(root, "crash")
    os.makedirs(work)
    sink = Sink(work)
    sink.start()
    node = Node(args.bin, work, "smtp://127.0.0.1:%d" % sink.port)
    node.start()
    rng = random.Random(args.seed)
    mails = []
    for i in range(args.mails):
        fid = "fid-c-%06d" % i
        if i % 10 == 0:
            # Every tenth is encrypted (three recipients, so their accounts exist early).
            to = "kunde%d@example.com" % (i % 3)
            mails.append((fid, "advisor@bank.example", to, make_mail(fid, "advisor@bank.example", to, True)))
        else:
            mails.append((fid, "load@bank.example", "kunde@example.com", make_mail(fid)))
    mails.reverse()  # pop() takes from the end: send in id order
    client = LoadClient(node.smtp_port, mails)
    start = time.time()
    threads = client.run()
    # Kill when the accepted count passes a random point in each third of 10 %..85 % of the
    # load, so all three kills hit a node that is busy taking mails in and delivering.
    lo, hi = args.mails // 10, args.mails * 85 // 100
    slot = (hi - lo) // 3
    thresholds = [rng.randrange(lo + i * slot, lo + (i + 1) * slot) for i in range(3)]
    kills = []
    during_load = 0
    for t in thresholds:
        jitter = rng.uniform(0, 0.3)
        while len(client.accepted) < t and any(th.is_alive() for th in threads):
            time.sleep(0.01)
        time.sleep(jitter)
        kills.append(len(client.accepted))
        during_load += len(client.accepted) < args.mails
        node.kill9()
        time.sleep(rng.uniform(0.2, 1.0))
        node.start()
    for th in threads:
        th.join()
    load_secs = time.time() - start
    accepted = set(client.accepted)
    log("  load done in %.1fs: %d accepted after %d attempts (%d client errors), "
        "kills after %s accepted" % (load_secs, len(accepted), client.attempts,
                                     client.errors, kills))
    # Leases held by a killed process expire after lease_secs (5 s), then delivery resumes.
    wait_until(lambda: accepted <= set(delivered_ids(sink)), 120)
    time.sleep(2)
    counts = delivered_ids(sink)
    lost = sorted(accepted - set(counts))
    dup = sum(n - 1 for n in counts.values() if n > 1)
    dup_resent = sum(n - 1 for f, n in counts.items() if n > 1 and f in client.retried)
    kinds = {}
    for _e, h, _r in sink.mails():
        k = h.get("x-sealpost-kind", "relay")
        kinds[k] = kinds.get(k, 0) + 1
    log("  accepted=%d delivered=%d lost=%d duplicated=%d  (sink: %s)"
        % (len(accepted), len(set(counts) & accepted), len(lost), dup, kinds))
    log("  duplicates: %d of mails the client had to re-send (killed after commit, before "
        "the 250), %d redelivered after a crash (sink had it, completion not committed)"
        % (dup_resent, dup - dup_resent))
    check("crash: every mail sent was accepted in the end", len(accepted) == args.mails,
          "%d of %d" % (len(accepted), args.mails))
    check("crash: nothing accepted is lost", not lost, "lost: %s" % lost[:10] if lost else "")
    # Each kill can duplicate at most what was in flight at that moment: one transaction per
    # client connection plus two deliveries per worker slot (a session sends the next mail
    # while the previous outcome commits). More would mean a systematic redelivery, not the
    # crash window.
    bound = len(kills) * (client.threads + 2 * 16)
    check("crash: duplicates only from in-flight work (<= %d)" % bound, dup <= bound,
          "%d" % dup)
    check("crash: node was killed 3 times, each while mails were still coming in",
          len(kills) == 3 and during_load == 3, "%d during the load" % during_load)
    node.stop()
    sink.stop()


def scenario_hop_down(args, root):
    log("\n[2a] next hop down for %d s (the issue says a minute; shortened for CI)" % args.pause)
    work = os.path.join(root, "hopdown")
    os.makedirs(work)
    sink = Sink(work)
    sink.start()
    node = Node(args.bin, work, "smtp://127.0.0.1:%d" % sink.port)
    node.start()
    fids = ["fid-h-%06d" % i for i in range(40)]
    ok = send_one(node.smtp_port, "load@bank.example", ["kunde@example.com"], make_mail("fid-h-warmup"))
    wait_until(lambda: "fid-h-warmup" in delivered_ids(sink), 20)
    sink.stop()
    t0 = time.time()
    for fid in fids:
        ok &= send_one(node.smtp_port, "load@bank.example", ["kunde@example.com"], make_mail(fid))
    check("hop down: all 40 mails accepted while the sink is down", ok)
    time.sleep(max(0, args.pause - (time.time() - t0)))
    during = set(delivered_ids(sink)) & set(fids)
    deferred = node.log_count(r"delivery attempt.*deferred=1")
    log("  after %ds down: delivered=%d, deferred attempts logged=%d" % (args.pause, len(during), deferred))
    check("hop down: mails are deferred, not dropped", not during and deferred >= len(fids),
          "deferred attempts %d" % deferred)
    sink.start()
    t1 = time.time()
    wait_until(lambda: set(fids) <= set(delivered_ids(sink)), 60)
    counts = delivered_ids(sink)
    got = set(counts) & set(fids)
    log("  sink back: %d of %d delivered %.1fs later, duplicates %d"
        % (len(got), len(fids), time.time() - t1, sum(counts[f] - 1 for f in got)))
    check("hop down: all delivered when it returns", got == set(fids))
    node.stop()
    sink.stop()


def scenario_bounce(args, root):
    log("\n[2b] next hop answers 5xx: one bounce per mail to its sender")
    work = os.path.join(root, "bounce")
    os.makedirs(work)
    sink = Sink(work, extra=["--reject-domain", "reject.test"])
    sink.start()
    node = Node(args.bin, work, "smtp://127.0.0.1:%d" % sink.port)
    node.start()
    n = 10
    ok = True
    for i in range(n):
        fid = "fid-b-%06d" % i
        ok &= send_one(node.smtp_port, "sender%d@bank.example" % i,
                       ["nobody%d@reject.test" % i], make_mail(fid, "sender%d@bank.example" % i))
    # One mail with a good and a rejected recipient: one delivery plus one bounce.
    ok &= send_one(node.smtp_port, "mixed@bank.example", ["good@example.com", "bad@reject.test"],
                   make_mail("fid-b-mixed", "mixed@bank.example"))
    check("bounce: mails accepted", ok)

    def bounces():
        return [(e, h, r) for e, h, r in sink.mails() if h.get("x-sealpost-kind") == "bounce"]
    wait_until(lambda: len(bounces()) >= n + 1, 30)
    time.sleep(4)  # later retries would show up as extra bounces
    bs = bounces()
    per_sender = {}
    for e, h, r in bs:
        for t in e["to"]:
            per_sender[t] = per_sender.get(t, 0) + 1
        if e["from"] != "":
            per_sender["<non-null sender>"] = per_sender.get("<non-null sender>", 0) + 1
    expected = {"sender%d@bank.example" % i: 1 for i in range(n)}
    expected["mixed@bank.example"] = 1
    named = all(("nobody%d@reject.test" % i).encode() in r
                for e, h, r in bs for i in range(n) if e["to"] == ["sender%d@bank.example" % i])
    good = [e for e, h, r in sink.mails() if e["to"] == ["good@example.com"]]
    log("  bounces=%d (expected %d), delivered to the good recipient=%d"
        % (len(bs), n + 1, len(good)))
    check("bounce: exactly one bounce per mail, to its sender, from <>", per_sender == expected,
          "%s" % per_sender if per_sender != expected else "")
    check("bounce: the bounce names the failed recipient", named)
    check("bounce: the good recipient of the mixed mail got it once", len(good) == 1)
    node.stop()
    sink.stop()


def scenario_hang(args, root):
    log("\n[2c] next hop hangs mid-DATA: timed out (delivery.timeout_secs = 3) and retried")
    work = os.path.join(root, "hang")
    os.makedirs(work)
    sink = Sink(work, extra=["--hang-data"])
    sink.start()
    node = Node(args.bin, work, "smtp://127.0.0.1:%d" % sink.port, timeout_secs=3)
    node.start()
    fids = ["fid-g-%06d" % i for i in range(3)]
    ok = all(send_one(node.smtp_port, "load@bank.example", ["kunde@example.com"], make_mail(f))
             for f in fids)
    check("hang: mails accepted", ok)
    pattern = r"delivery attempt.*deferred=1"
    wait_until(lambda: node.log_count(pattern) >= 2 * len(fids), 30)
    timeouts = node.log_count(r"outbound SMTP failed.*timeout")
    attempts = node.log_count(pattern)
    log("  while hanging: deferred attempts=%d (timeouts logged=%d), delivered=%d"
        % (attempts, timeouts, len(delivered_ids(sink))))
    check("hang: each mail timed out and was retried at least once",
          attempts >= 2 * len(fids) and timeouts >= 2 * len(fids), "attempts %d" % attempts)
    sink.stop()
    sink.start(extra=[])
    wait_until(lambda: set(fids) <= set(delivered_ids(sink)), 30)
    counts = delivered_ids(sink)
    log("  sink healthy again: delivered %d of %d" % (len(set(counts) & set(fids)), len(fids)))
    check("hang: all delivered after the hop recovers, once each",
          all(counts.get(f) == 1 for f in fids), "%s" % counts)
    node.stop()
    sink.stop()


def maildir_ids(outbox):
    counts = {}
    for path in glob.glob(os.path.join(outbox, "new", "*")):
        with open(path, "rb") as f:
            h = headers(f.read())
        m = ID_RE.search(h.get("subject", ""))
        if m:
            counts[m.group(0)] = counts.get(m.group(0), 0) + 1
    return counts


def scenario_disk_full(args, root):
    work = os.path.join(root, "diskfull")
    os.makedirs(work)
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt)
    mounted = subprocess.call(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt],
                              stderr=subprocess.DEVNULL) == 0
    outbox = os.path.join(mnt, "outbox")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(outbox, sub))
    filler = os.path.join(mnt, "filler")
    if mounted:
        MOUNTS.append(mnt)
        log("\n[4] disk full: maildir next hop on a 512 KiB tmpfs filled to the last block")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass
        os.close(fd)
    else:
        # No mount here: the next best fault is a maildir that cannot be written, made by a
        # plain file where the tmp/ directory must be (root ignores permission bits).
        log("\n[4] disk full: mount not permitted here, simulated by an unwritable maildir "
            "(a file in place of tmp/)")
        os.rmdir(os.path.join(outbox, "tmp"))
        with open(os.path.join(outbox, "tmp"), "w") as f:
            f.write("x")
    node = Node(args.bin, work, "maildir:%s" % outbox)
    node.start()
    fids = ["fid-d-%06d" % i for i in range(20)]
    ok = all(send_one(node.smtp_port, "load@bank.example", ["kunde@example.com"],
                      make_mail(f, body_lines=40)) for f in fids)
    check("disk full: mails accepted into the queue", ok)
    wait_until(lambda: node.log_count(r"delivery attempt.*deferred=1") >= 2 * len(fids), 20)
    deferred = node.log_count(r"delivery attempt.*deferred=1")
    nospace = node.log_count(r"maildir delivery failed.*(No space|ENOSPC|os error 28)")
    partial = len(os.listdir(os.path.join(outbox, "new"))) + (
        len(os.listdir(os.path.join(outbox, "tmp"))) if mounted else 0)
    log("  while full: deferred attempts=%d, ENOSPC errors logged=%d, files in new/+tmp/=%d"
        % (deferred, nospace, partial))
    check("disk full: deferred, nothing written, no partial files",
          deferred >= len(fids) and partial == 0 and (nospace > 0 or not mounted))
    if mounted:
        os.remove(filler)
    else:
        os.remove(os.path.join(outbox, "tmp"))
        os.makedirs(os.path.join(outbox, "tmp"))
    wait_until(lambda: set(fids) <= set(maildir_ids(outbox)), 30)
    counts = maildir_ids(outbox)
    log("  space freed: delivered %d of %d" % (len(set(counts) & set(fids)), len(fids)))
    check("disk full: all delivered once space is back, once each",
          all(counts.get(f) == 1 for f in fids), "%d" % len(counts))
    node.stop()
    if mounted:
        subprocess.call(["umount", mnt])
        MOUNTS.remove(mnt)


PG_ADMIN = os.environ.get("SEALPOST_FAULTS_PG", "postgres://postgres@127.0.0.1:5432/postgres")


def psql(sql):
    r = subprocess.run(["psql", PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("psql %r: %s" % (sql, r.stderr.strip()))
    return r.stdout.strip()


def http(port, method, path, body=None, headers=None, timeout=10, source=None):
    """(status, body text) of one plain-HTTP request to the node's web listener, from the
    loopback address `source` when given (each 127.x.y.z is a client address of its own)."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                   source_address=(source, 0) if source else None)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def smtp_stages(port, sender, rcpt, data, timeout=15):
    """Runs one transaction step by step; returns (stage, code) of the first non-2xx/3xx
    reply, or ("done", 250)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="load.test", timeout=timeout) as s:
        s.ehlo()
        code, _ = s.mail(sender)
        if code >= 400:
            return "MAIL", code
        code, _ = s.rcpt(rcpt)
        if code >= 400:
            return "RCPT", code
        code, _ = s.data(data)
        if code >= 400:
            return "DATA", code
        return "done", code


def scenario_db_down(args, root):
    log("\n[5] database down: PostgreSQL database refuses connections, then comes back")
    work = os.path.join(root, "dbdown")
    os.makedirs(work)
    db = "sp_faults_%d_%06d" % (os.getpid(), random.randrange(10 ** 6))
    base = PG_ADMIN.rsplit("/", 1)[0]
    psql("CREATE DATABASE %s" % db)
    try:
        sink = Sink(work)
        sink.start()
        node = Node(args.bin, work, "smtp://127.0.0.1:%d" % sink.port,
                    database_url="%s/%s" % (base, db))
        node.start()
        rcpt = ["kunde@example.com"]
        ok = send_one(node.smtp_port, "load@bank.example", rcpt, make_mail("fid-d-000001"))
        check("db down: mail before the outage accepted", ok)
        st, _ = http(node.web_port, "GET", "/readyz")
        log("  before: /readyz %d" % st)

        psql("ALTER DATABASE %s ALLOW_CONNECTIONS false" % db)
        psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname='%s'" % db)
        time.sleep(1)
        try:
            stage, code = smtp_stages(node.smtp_port, "load@bank.example", rcpt[0],
                                      make_mail("fid-d-000002"))
        except (smtplib.SMTPException, OSError) as e:
            stage, code = "error", repr(e)
        log("  during: SMTP %s %s" % (stage, code))
        check("db down: new mail gets a 4xx, not accepted",
              stage != "done" and isinstance(code, int) and 400 <= code < 500,
              "%s %s" % (stage, code))
        t = time.time()
        st, _ = http(node.web_port, "GET", "/readyz")
        log("  during: /readyz %d (%.2fs)" % (st, time.time() - t))
        check("db down: /readyz answers 503", st == 503, str(st))
        st, body = http(node.web_port, "POST", "/login",
                        body="address=kunde%40example.com&password=wrong-password&next=%2F",
                        headers={"content-type": "application/x-www-form-urlencoded",
                                 "origin": "http://127.0.0.1:%d" % node.web_port})
        text = re.sub(r"<[^>]+>", " ", body)
        log("  during: POST /login %d: %s" % (st, " ".join(text.split())[:160]))
        friendly = ("<html" in body.lower() and re.search(r"[A-Z][a-z]+ [a-z]+ [a-z]+", text)
                    and not re.search(r"panicked|backtrace|sqlx|PoolTimedOut|\.rs:\d", body))
        check("db down: portal answers a friendly 5xx error page",
              500 <= st < 600 and bool(friendly), "%d" % st)
        check("db down: node still running", node.proc.poll() is None)

        psql("ALTER DATABASE %s ALLOW_CONNECTIONS true" % db)
        t = time.time()
        back = wait_until(lambda: http(node.web_port, "GET", "/readyz")[0] == 200, 20)
        log("  database back: /readyz 200 after %.1fs" % (time.time() - t))
        check("db up: /readyz 200 again within 20 s, no restart", back)
        ok = False
        try:
            ok = send_one(node.smtp_port, "load@bank.example", rcpt, make_mail("fid-d-000003"))
        except (smtplib.SMTPException, OSError) as e:
            log("  after: %r" % e)
        check("db up: new mail accepted", ok)
        wait_until(lambda: {"fid-d-000001", "fid-d-000003"} <= set(delivered_ids(sink)), 20)
        got = delivered_ids(sink)
        log("  delivered: %s" % sorted(got))
        check("db up: mail after recovery delivered", "fid-d-000003" in got)
        check("db up: mail from before the outage delivered (nothing lost)",
              "fid-d-000001" in got)
        check("db down: refused mail was not delivered", "fid-d-000002" not in got)
        node.stop()
        sink.stop()
    finally:
        try:
            psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
        except Exception as e:
            log("  could not drop %s: %r" % (db, e))


def check_per_client_cap(port, cap=64, extra=6):
    """One address holding `cap` idle web connections: its further connections are closed at
    once (before any HTTP), while another address is still served."""
    flooder = "127.0.9.1"

    def connect():
        s = socket.socket()
        s.bind((flooder, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        return s

    held = [connect() for _ in range(cap)]
    time.sleep(0.5)  # let the node accept (and count) them
    closed = 0
    for _ in range(extra):
        s = connect()
        s.settimeout(2)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            closed += s.recv(64) == b""
        except (ConnectionResetError, BrokenPipeError):
            closed += 1
        except socket.timeout:
            pass
        finally:
            s.close()
    st, _ = http(port, "GET", "/healthz", timeout=5, source="127.0.9.2")
    log("  one address holding %d connections: %d of %d more closed at once; another address: %d"
        % (cap, closed, extra, st))
    check("overload: connections over the per-client cap are closed at once",
          closed == extra, "%d of %d" % (closed, extra))
    check("overload: other clients are served meanwhile", st == 200, str(st))
    for s in held:
        s.close()


def scenario_overload(args, root):
    log("\n[6] overload: 500 concurrent SMTP sessions (max_connections 300), 200 portal clients")
    work = os.path.join(root, "overload")
    os.makedirs(work)
    sink = Sink(work)
    sink.start()
    node = Node(args.bin, work, "smtp://127.0.0.1:%d" % sink.port,
                smtp_extra={"max_connections": 300, "max_connections_per_ip": 1000})
    node.start()
    n = 500
    socks = [None] * n
    greet = [None] * n

    def opener(i):
        try:
            s = socket.create_connection(("127.0.0.1", node.smtp_port), timeout=10)
            socks[i] = s
            greet[i] = s.recv(256)[:3].decode("ascii", "replace") or "closed"
        except OSError as e:
            greet[i] = "error:%s" % type(e).__name__

    ts = [threading.Thread(target=opener, args=(i,), daemon=True) for i in range(n)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    counts = {}
    for g in greet:
        counts[g or "hanging"] = counts.get(g or "hanging", 0) + 1
    log("  %d SMTP sessions opened in %.1fs: %s" % (n, time.time() - t0, counts))
    ok220 = counts.get("220", 0)
    check("overload: about 300 sessions get 220", 280 <= ok220 <= 300, str(ok220))
    check("overload: the rest get 421, none hanging or failing",
          counts.get("421", 0) == n - ok220, str(counts))

    t = time.time()
    st, _ = http(node.web_port, "GET", "/healthz", timeout=5)
    dt = time.time() - t
    log("  /healthz %d in %.3fs with the sessions open" % (st, dt))
    check("overload: /healthz answers 200 in < 1 s", st == 200 and dt < 1.0, "%d %.3fs" % (st, dt))

    # 200 clients, each from a loopback address of its own: the web listener caps open
    # connections per client address (web.max_connections_per_client, 64 by default), so 200
    # from one address would be one client flooding, which is checked below.
    web = [None] * 200

    def client(i):
        try:
            web[i] = str(http(node.web_port, "GET", "/login", timeout=15,
                              source="127.0.%d.%d" % (1 + i // 250, 1 + i % 250))[0])
        except Exception as e:
            web[i] = "error:%s" % type(e).__name__

    ws = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(200)]
    t = time.time()
    for w in ws:
        w.start()
    for w in ws:
        w.join(20)
    wc = {}
    for r in web:
        wc[r or "hanging"] = wc.get(r or "hanging", 0) + 1
    log("  200 concurrent GET /login in %.1fs: %s" % (time.time() - t, wc))
    check("overload: every portal client answered 200/429/503",
          sum(wc.get(c, 0) for c in ("200", "429", "503")) == 200, str(wc))
    check_per_client_cap(node.web_port)

    for s in socks:
        if s is not None:
            try:
                s.close()
            except OSError:
                pass
    check("overload: node still running", node.proc.poll() is None)
    time.sleep(1)
    ok = False
    try:
        ok = wait_until(lambda: send_one(node.smtp_port, "load@bank.example",
                                         ["kunde@example.com"], make_mail("fid-o-000001")), 10)
    except (smtplib.SMTPException, OSError) as e:
        log("  after: %r" % e)
    check("overload: a normal mail afterwards gets 250", ok)
    check("overload: and arrives",
          wait_until(lambda: "fid-o-000001" in delivered_ids(sink), 20))
    node.stop()
    sink.stop()


SCENARIOS = [("crash", scenario_crash), ("hop-down", scenario_hop_down),
             ("bounce", scenario_bounce), ("hang", scenario_hang),
             ("disk-full", scenario_disk_full), ("db-down", scenario_db_down),
             ("overload", scenario_overload)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--mails", type=int, default=2000)
    p.add_argument("--pause", type=int, default=15)
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--only", action="append")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = tempfile.mkdtemp(prefix="sealpost-faults-")
    log("faults: work dir %s, seed %d" % (root, args.seed))
    try:
        for name, fn in SCENARIOS:
            if args.only and name not in args.only:
                continue
            t = time.time()
            try:
                fn(args, root)
            except Exception as e:  # a scenario that breaks is a failure, not a stop
                check("%s: scenario ran" % name, False, repr(e))
            log("  (%s took %.0fs)" % (name, time.time() - t))
    finally:
        cleanup()
        failed = [r for r in RESULTS if not r[1]]
        if failed or args.keep:
            log("logs kept in %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
        log("\n%d passed, %d failed" % (len(RESULTS) - len(failed), len(failed)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
