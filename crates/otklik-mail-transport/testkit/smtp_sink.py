"""Otklik testkit: an SMTP peer on loopback (aiosmtpd) that keeps every message in a Maildir.

Usage: python smtp_sink.py MAILDIR
Prints "READY <port>" once listening on 127.0.0.1 (on a port the kernel picked, so parallel
tests never collide). For each message it writes NAME.json (the envelope) and then NAME.eml (the
raw bytes exactly as received, dot-unstuffed) into MAILDIR/new, each via MAILDIR/tmp and a
rename, so a reader that sees NAME.eml also sees a complete NAME.json.

Recipients whose local part is "temp-fail" get 451 and "perm-fail" get 550 at RCPT, for outbox
retry and permanent-failure tests. The process exits when its stdin closes, so it never outlives
the test process that started it.
"""

import asyncio
import itertools
import json
import os
import sys
import threading

from aiosmtpd.smtp import SMTP


class MaildirHandler:
    def __init__(self, root):
        self.root = root
        self.counter = itertools.count(1)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.rsplit("@", 1)[0].lower()
        if local == "temp-fail":
            return "451 4.3.0 Temporary failure (testkit)"
        if local == "perm-fail":
            return "550 5.1.1 No such user (testkit)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = "%08d" % next(self.counter)
        mail_from = envelope.mail_from or ""
        if mail_from == "<>":
            mail_from = ""
        meta = {"mail_from": mail_from, "rcpt_to": list(envelope.rcpt_tos)}
        self._write(name + ".json", json.dumps(meta).encode())
        self._write(name + ".eml", envelope.original_content)
        return "250 OK stored as " + name

    def _write(self, filename, data):
        tmp = os.path.join(self.root, "tmp", filename)
        with open(tmp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.rename(tmp, os.path.join(self.root, "new", filename))


def exit_with_parent():
    sys.stdin.buffer.read()
    os._exit(0)


async def main(root):
    handler = MaildirHandler(root)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", enable_SMTPUTF8=True),
        host="127.0.0.1",
        port=0,
    )
    port = server.sockets[0].getsockname()[1]
    print("READY", port, flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    threading.Thread(target=exit_with_parent, daemon=True).start()
    asyncio.run(main(sys.argv[1]))
