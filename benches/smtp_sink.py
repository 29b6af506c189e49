#!/usr/bin/env python3
"""A loopback SMTP server that accepts every mail as fast as it can and
counts them, for measuring how fast medesk's outbox drains (issue 19).

    python3 benches/smtp_sink.py --port 2525 --report 5
    cargo bench --bench load -- --scenarios intake --duration 10 \
        --server-env MEDESK_SMTP_URL=smtp://127.0.0.1:2525

Every --report seconds (and at Ctrl-C) it prints the mails received, the
distinct Message-IDs (a mail delivered twice shows as fewer ids than
mails), the connections, and the rate over the span from the first mail to
the last. It speaks just enough SMTP for lettre: EHLO/HELO, MAIL, RCPT,
DATA, RSET, NOOP, QUIT; it checks nothing and stores nothing.

The load benchmark now has its own sink (benches/load/smtp_sink.rs, used
by its mail-drain and two-instances scenarios, which check exactly-once
themselves); this one stays for by-hand runs of any scenario over SMTP
and for pointing a server started by hand at a sink.
"""

import argparse
import asyncio
import signal
import time


class Counts:
    def __init__(self):
        self.mails = 0
        self.ids = set()
        self.connections = 0
        self.first = None
        self.last = None

    def line(self):
        span = (self.last - self.first) if self.first is not None else 0.0
        rate = (self.mails - 1) / span if span > 0 else 0.0
        return (
            f"smtp_sink: {self.mails} mails, {len(self.ids)} distinct Message-IDs, "
            f"{self.connections} connections, {span:.2f} s from first to last mail, "
            f"{rate:.0f} mails/s"
        )


COUNTS = Counts()


async def session(reader, writer):
    COUNTS.connections += 1
    writer.write(b"220 sink ESMTP\r\n")
    await writer.drain()
    while True:
        line = await reader.readline()
        if not line:
            break
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go on\r\n")
            await writer.drain()
            message_id = None
            while True:
                data = await reader.readline()
                if not data or data == b".\r\n":
                    break
                if message_id is None and data[:11].lower() == b"message-id:":
                    message_id = data[11:].strip()
            now = time.monotonic()
            COUNTS.mails += 1
            COUNTS.ids.add(message_id)
            if COUNTS.first is None:
                COUNTS.first = now
            COUNTS.last = now
            writer.write(b"250 queued\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            break
        else:
            # HELO, MAIL, RCPT, RSET, NOOP: all accepted.
            writer.write(b"250 ok\r\n")
        await writer.drain()
    writer.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--report", type=float, default=5.0)
    args = parser.parse_args()
    server = await asyncio.start_server(session, "127.0.0.1", args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"smtp_sink: listening on 127.0.0.1:{args.port}", flush=True)
    async with server:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), args.report)
            except asyncio.TimeoutError:
                pass
            print(COUNTS.line(), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
