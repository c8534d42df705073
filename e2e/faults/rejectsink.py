#!/usr/bin/env python3
"""An SMTP sink that refuses chosen recipients for good (one 5xx per RCPT), for the bounce
scenario: the originals must bounce while the bounces themselves (null sender, to the
original sender) are accepted and written like e2e/lib/smtpsink.py does (DIR/<n>.eml).

  python3 rejectsink.py --port 2527 --dir /tmp/sink --reject-domain reject.test
"""
import argparse
import asyncio
import json
import os
import signal


async def handle(reader, writer, args, state):
    async def reply(line):
        writer.write((line + "\r\n").encode())
        await writer.drain()

    mail_from, rcpts = None, []
    await reply("220 reject.test ESMTP")
    try:
        while True:
            raw = await reader.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb == "EHLO":
                await reply("250-reject.test\r\n250-8BITMIME\r\n250 SIZE 209715200")
            elif verb == "HELO":
                await reply("250 reject.test")
            elif verb == "MAIL":
                mail_from, rcpts = line.split(":", 1)[1].strip().split(" ")[0].strip("<>"), []
                await reply("250 2.1.0 ok")
            elif verb == "RCPT":
                addr = line.split(":", 1)[1].strip().split(" ")[0].strip("<>")
                if addr.lower().endswith("@" + args.reject_domain):
                    await reply("550 5.1.1 <%s>: recipient unknown" % addr)
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
                    chunks.append(l[1:] if l.startswith(b"..") else l)
                state["n"] += 1
                base = os.path.join(args.dir, "%d-%06d" % (os.getpid(), state["n"]))
                with open(base + ".env", "w") as f:
                    json.dump({"from": mail_from, "to": rcpts}, f)
                with open(base + ".eml.tmp", "wb") as f:
                    f.write(b"".join(chunks))
                os.rename(base + ".eml.tmp", base + ".eml")
                await reply("250 2.0.0 ok")
                mail_from, rcpts = None, []
            elif verb == "RSET":
                mail_from, rcpts = None, []
                await reply("250 ok")
            elif verb == "QUIT":
                await reply("221 bye")
                break
            else:
                await reply("250 ok")
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--reject-domain", required=True)
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    state = {"n": 0}
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args, state), "127.0.0.1", args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
