#!/usr/bin/env python3
"""A small, real SMTP sink for end-to-end scripts (Python standard library only).

Writes every accepted message to DIR/<n>.eml (envelope in DIR/<n>.env as JSON) and can be
told to answer RCPT or DATA with a temporary or permanent failure, or to go slow, so scripts
can exercise retries, bounces and lease take-over.

  python3 smtpsink.py --port 2526 --dir /tmp/sink [--rcpt-reply "450 4.2.0 busy"]
                      [--data-reply "554 5.0.0 no"] [--delay 0.02] [--hang-data]
                      [--reject-domain reject.test]

SIGTERM stops it. One line per accepted mail is appended to DIR/log.
"""
import argparse
import asyncio
import json
import os
import signal


class Sink:
    def __init__(self, args):
        self.args = args
        self.count = 0
        os.makedirs(args.dir, exist_ok=True)

    async def handle(self, reader, writer):
        async def reply(line):
            writer.write((line + "\r\n").encode())
            await writer.drain()

        mail_from, rcpts = None, []
        await reply("220 sink.test ESMTP e2e sink")
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb = line[:4].upper()
                if verb in ("EHLO", "HELO"):
                    if verb == "EHLO":
                        await reply("250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 209715200")
                    else:
                        await reply("250 sink.test")
                elif verb == "MAIL":
                    mail_from, rcpts = line.split(":", 1)[1].strip().split(" ")[0].strip("<>"), []
                    await reply("250 2.1.0 ok")
                elif verb == "RCPT":
                    addr = line.split(":", 1)[1].strip().split(" ")[0].strip("<>")
                    domain = self.args.reject_domain
                    if domain and addr.lower().endswith("@" + domain):
                        await reply("550 5.1.1 <%s>: recipient unknown" % addr)
                    elif self.args.rcpt_reply:
                        await reply(self.args.rcpt_reply)
                    else:
                        rcpts.append(addr)
                        await reply("250 2.1.5 ok")
                elif verb == "DATA":
                    if not rcpts:
                        await reply("554 5.5.1 no valid recipients")
                        continue
                    await reply("354 go ahead")
                    chunks = []
                    while True:
                        l = await reader.readline()
                        if not l:
                            return
                        if l in (b".\r\n", b".\n"):
                            break
                        if self.args.hang_data:
                            await asyncio.sleep(3600)
                        chunks.append(l[1:] if l.startswith(b"..") else l)
                    if self.args.delay:
                        await asyncio.sleep(self.args.delay)
                    if self.args.data_reply:
                        await reply(self.args.data_reply)
                        continue
                    self.count += 1
                    n = self.count
                    base = os.path.join(self.args.dir, f"{os.getpid()}-{n:06d}")
                    with open(base + ".eml.tmp", "wb") as f:
                        f.write(b"".join(chunks))
                    with open(base + ".env", "w") as f:
                        json.dump({"from": mail_from, "to": rcpts}, f)
                    os.rename(base + ".eml.tmp", base + ".eml")
                    with open(os.path.join(self.args.dir, "log"), "a") as f:
                        f.write(f"{n} {mail_from} {','.join(rcpts)}\n")
                    await reply(f"250 2.0.0 ok {n}")
                    mail_from, rcpts = None, []
                elif verb == "RSET":
                    mail_from, rcpts = None, []
                    await reply("250 ok")
                elif verb == "QUIT":
                    await reply("221 bye")
                    break
                elif verb == "NOOP":
                    await reply("250 ok")
                else:
                    await reply("502 5.5.1 not implemented")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--rcpt-reply", default="")
    p.add_argument("--data-reply", default="")
    p.add_argument("--reject-domain", default="",
                   help="refuse recipients in this domain for good (550), accept the rest")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--hang-data", action="store_true")
    args = p.parse_args()
    sink = Sink(args)
    server = await asyncio.start_server(sink.handle, "127.0.0.1", args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
