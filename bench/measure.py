#!/usr/bin/env python3
"""Measurements for bench/run.sh; each sub-command prints one JSON object.

throughput: runs smtp-source (arguments after --) and times from just before its
    first connection until the sink directory holds --expect more files than at the
    start (smtp-sink -d writes one file per delivered transaction).
latency: runs its own small SMTP sink (TimingSink) on --sink-port, sends --count
    mails at --rate per second over one SMTP connection and measures, per mail, from
    the moment the final "." of DATA is written to the socket until the sink has read
    the final "." of the mail that results (carrier or relayed copy).
warmup-wait: waits until the sink directory holds --expect files.
report: turns the JSON lines run.sh collected into the Markdown summary.
"""

import argparse
import json
import os
import smtplib
import socket
import statistics
import subprocess
import sys
import time


def count_files(directory):
    try:
        with os.scandir(directory) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


def wait_for_count(directory, target, timeout):
    deadline = time.monotonic() + timeout
    while True:
        n = count_files(directory)
        if n >= target:
            return n, True
        if time.monotonic() > deadline:
            return n, False
        time.sleep(0.02)


def cmd_throughput(args):
    before = count_files(args.sink_dir)
    start = time.monotonic()
    source = subprocess.Popen(["smtp-source"] + args.source_args)
    source_done = None
    deadline = start + args.timeout
    n = before
    complete = False
    while True:
        if source_done is None and source.poll() is not None:
            source_done = time.monotonic() - start
        n = count_files(args.sink_dir)
        if n - before >= args.expect:
            complete = True
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    elapsed = time.monotonic() - start
    if source_done is None:
        source.wait(timeout=max(1.0, deadline - time.monotonic()))
        source_done = time.monotonic() - start
    print(
        json.dumps(
            {
                "elapsed_s": round(elapsed, 3),
                "source_done_s": round(source_done, 3),
                "source_rc": source.returncode,
                "delivered": n - before,
                "expected": args.expect,
                "complete": complete,
                "input_mails": args.mails,
                "mails_per_s": round(args.mails / elapsed, 1) if complete else None,
            }
        )
    )
    return 0 if complete and source.returncode == 0 else 1


def message(i, run, size, subject_prefix):
    line = b"X" * 78 + b"\r\n"
    body = line * (size // len(line) + 1)
    head = (
        "From: <a@bank.example>\r\nTo: <b@kunde.example>\r\n"
        "Subject: %s lat-%06d-%s\r\nMessage-ID: <lat-%06d-%s@bank.example>\r\n\r\n"
        % (subject_prefix, i, run, i, run)
    ).encode()
    return head + body[:size]


def send_one(smtp, mail_from, rcpt, data):
    """MAIL, RCPT, DATA by hand so that the time of the final "." is known exactly."""
    code, resp = smtp.mail(mail_from)
    if code != 250:
        raise RuntimeError("MAIL: %d %r" % (code, resp))
    code, resp = smtp.rcpt(rcpt)
    if code not in (250, 251):
        raise RuntimeError("RCPT: %d %r" % (code, resp))
    smtp.putcmd("data")
    code, resp = smtp.getreply()
    if code != 354:
        raise RuntimeError("DATA: %d %r" % (code, resp))
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    smtp.sock.sendall(stuffed)
    t_dot = time.time()
    smtp.sock.sendall(b".\r\n")
    code, resp = smtp.getreply()
    t_ack = time.time()
    if code != 250:
        raise RuntimeError("end of DATA: %d %r" % (code, resp))
    return t_dot, t_ack


def pct(values, p):
    values = sorted(values)
    if not values:
        return None
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class TimingSink:
    """A minimal SMTP sink that notes when each message's final "." arrived.

    Used for the latency test only: smtp-sink's dump files carry the kernel's coarse
    file time stamps (a clock tick, 4-10 ms), too coarse for millisecond latencies.
    """

    def __init__(self, port):
        import socketserver
        import threading

        self.arrivals = {}  # token -> time the final "." was read
        self.count = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                w = self.wfile
                w.write(b"220 timing-sink ESMTP\r\n")
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line[:4].upper()
                    if cmd in (b"EHLO",):
                        w.write(b"250-timing-sink\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n")
                    elif cmd == b"HELO":
                        w.write(b"250 timing-sink\r\n")
                    elif cmd == b"DATA":
                        w.write(b"354 go ahead\r\n")
                        head = b""
                        while True:
                            l = self.rfile.readline()
                            if not l or l == b".\r\n":
                                break
                            if len(head) < 16384:
                                head += l
                        t = time.time()
                        pos = head.find(b"lat-")
                        with sink.lock:
                            sink.count += 1
                            if pos >= 0:
                                tok = head[pos : pos + 40].split()[0].decode("ascii", "replace")
                                sink.arrivals.setdefault(tok, t)
                        w.write(b"250 ok\r\n")
                    elif cmd == b"QUIT":
                        w.write(b"221 bye\r\n")
                        return
                    else:
                        w.write(b"250 ok\r\n")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        socketserver.ThreadingTCPServer.daemon_threads = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_count(self, n, timeout):
        deadline = time.monotonic() + timeout
        while self.count < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.count >= n


def cmd_latency(args):
    run = "%d" % time.time()
    sink = TimingSink(args.sink_port)
    warm = smtplib.SMTP("127.0.0.1", args.port, timeout=60)
    warm.sendmail("a@bank.example", [args.rcpt], message(0, "warmup", 1000, args.subject))
    warm.quit()
    if not sink.wait_count(args.warmup_expect, args.timeout):
        print(json.dumps({"error": "warm-up mail did not arrive", "sink_count": sink.count}))
        return 1
    smtp = smtplib.SMTP("127.0.0.1", args.port, timeout=60)
    # Without TCP_NODELAY the final ".\r\n" would wait for the ACK of the body (Nagle +
    # delayed ACK, ~40 ms on Linux) and that wait would be counted as gateway latency.
    smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    smtp.ehlo("bench.example")
    sent = {}
    acks = []
    interval = 1.0 / args.rate
    start = time.monotonic()
    for i in range(args.count):
        # Paced on a fixed schedule, so a slow reply does not lower the offered rate.
        due = start + i * interval
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t_dot, t_ack = send_one(smtp, "a@bank.example", args.rcpt, message(i, run, args.size, args.subject))
        sent["lat-%06d-%s" % (i, run)] = t_dot
        acks.append(t_ack - t_dot)
    smtp.quit()
    offered = args.count / (time.monotonic() - start)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and not all(t in sink.arrivals for t in sent):
        time.sleep(0.05)
    arrived = {t: sink.arrivals[t] for t in sent if t in sink.arrivals}
    latencies = [arrived[t] - sent[t] for t in arrived]
    print(
        json.dumps(
            {
                "sent": len(sent),
                "arrived": len(arrived),
                "offered_per_s": round(offered, 2),
                "ack_p50_ms": round(1000 * pct(acks, 50), 1),
                "ack_p99_ms": round(1000 * pct(acks, 99), 1),
                "p50_ms": round(1000 * pct(latencies, 50), 1) if latencies else None,
                "p99_ms": round(1000 * pct(latencies, 99), 1) if latencies else None,
                "max_ms": round(1000 * max(latencies), 1) if latencies else None,
                "mean_ms": round(1000 * statistics.mean(latencies), 1) if latencies else None,
            }
        )
    )
    return 0 if len(arrived) == len(sent) else 1


def cmd_warmup_wait(args):
    n, ok = wait_for_count(args.sink_dir, args.expect, args.timeout)
    print(json.dumps({"files": n, "expected": args.expect, "complete": ok}))
    return 0 if ok else 1


def cmd_report(args):
    rows = []
    with open(args.results) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    out = ["# Sealpost benchmark", "", "```"]
    with open(args.machine) as f:
        out += [l.rstrip() for l in f]
    out += ["```", "", "## A. Throughput (input mails/s, first connection → last mail at the sink)", ""]
    out.append("| system | database | recipients/mail | median | min | max | runs complete | Sealpost CPU s/run |")
    out.append("|---|---|---|---|---|---|---|---|")
    groups = {}
    for r in rows:
        if r.get("test") == "latency":
            continue
        groups.setdefault((r["system"], r["backend"], r["rcpts"]), []).append(r)
    medians = {}
    for key in sorted(groups, key=lambda k: (k[2], k[0], k[1])):
        runs = groups[key]
        rates = [r["mails_per_s"] for r in runs if r.get("mails_per_s")]
        cpu = [r["sealpost_cpu_s"] for r in runs if "sealpost_cpu_s" in r]
        if rates:
            med = statistics.median(rates)
            medians[key] = med
            out.append(
                "| %s | %s | %s | %.1f | %.1f | %.1f | %d/%d | %s |"
                % (key[0], key[1], key[2], med, min(rates), max(rates), len(rates), len(runs),
                   ("%.1f" % statistics.median(cpu)) if cpu else "-")
            )
        else:
            out.append("| %s | %s | %s | - | - | - | 0/%d | - |" % (key[0], key[1], key[2], len(runs)))
    out.append("")
    for (system, backend, rcpts), med in sorted(medians.items()):
        ref = medians.get(("postfix", "postfix-queue", rcpts))
        if system == "sealpost" and ref:
            out.append("- ratio Sealpost (%s) / Postfix, %s recipient(s)/mail: %.2f" % (backend, rcpts, med / ref))
    out += ["", "## C. Latency at ~10 mails/s (final \".\" of DATA sent → final \".\" read by the sink)", ""]
    out.append("| system | database | sent | arrived | offered/s | 250 after DATA p50 / p99 ms | delivery p50 ms | p99 ms | max ms |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("test") != "latency":
            continue
        out.append(
            "| %s | %s | %s | %s | %s | %s / %s | %s | %s | %s |"
            % (r["system"], r["backend"], r.get("sent"), r.get("arrived"), r.get("offered_per_s"),
               r.get("ack_p50_ms"), r.get("ack_p99_ms"), r.get("p50_ms"), r.get("p99_ms"), r.get("max_ms"))
        )
    print("\n".join(out))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("throughput")
    s.add_argument("--sink-dir", required=True)
    s.add_argument("--expect", type=int, required=True, help="files the sink must gain")
    s.add_argument("--mails", type=int, required=True, help="mails smtp-source sends")
    s.add_argument("--timeout", type=float, default=900)
    s.add_argument("source_args", nargs=argparse.REMAINDER)
    s = sub.add_parser("latency")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--rate", type=float, default=10)
    s.add_argument("--count", type=int, default=300)
    s.add_argument("--size", type=int, default=51200)
    s.add_argument("--rcpt", default="b@kunde.example")
    s.add_argument("--subject", default="[secure]")
    s.add_argument("--timeout", type=float, default=120)
    s.add_argument("--sink-port", type=int, required=True, help="port for the timing sink")
    s.add_argument("--warmup-expect", type=int, default=1, help="mails the warm-up produces")
    s = sub.add_parser("warmup-wait")
    s.add_argument("--sink-dir", required=True)
    s.add_argument("--expect", type=int, required=True)
    s.add_argument("--timeout", type=float, default=120)
    s = sub.add_parser("report")
    s.add_argument("results")
    s.add_argument("machine")
    args = p.parse_args()
    if getattr(args, "source_args", None) and args.source_args[0] == "--":
        args.source_args = args.source_args[1:]
    return {
        "throughput": cmd_throughput,
        "latency": cmd_latency,
        "warmup-wait": cmd_warmup_wait,
        "report": cmd_report,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
