#!/usr/bin/env python3
"""Fault-injection tools for tests/e2e/faults.sh (standard library only).

Subcommands:
  sink --port P --log FILE         counting SMTP sink (PIPELINING, 8BITMIME, SIZE, ENHANCEDSTATUSCODES):
                                   every accepted message becomes one JSON line in FILE (envelope
                                   sender, accepted recipients, a few headers), written and flushed
                                   before the 250 after the dot, so the log is exactly what was
                                   accepted
  proxy --port P --upstream PORT --control PORT
                                   SMTP-aware fault proxy in front of an SMTP server. Modes (set
                                   over the control port): pass (relay everything), refuse (not
                                   listening; open connections are dropped), 421 (MAIL FROM is
                                   answered "421 4.3.2" and the connection closed), 451 (the
                                   transaction is answered locally: 250 to MAIL/RCPT, 354, and
                                   "451 4.3.0" after the final dot; nothing of it reaches the
                                   server). Plus a reply delay (each reply released >= D ms after
                                   it was ready) and a kill trigger (SIGKILL a pid D ms after the
                                   server accepted >= K recipients through the proxy; K = 0: at
                                   the first MAIL FROM). Its stats count the recipients the
                                   server accepted on the killed client's connections after the
                                   kill (their 250 never reached it: the race of invariant 2)
  ctl --port C WORDS...            send one control line to a proxy, print its answer. Lines:
                                   "mode pass|refuse|421|451", "delay MS", "arm PID K MS",
                                   "disarm", "reset", "stats" (a JSON object)
  count --log FILE --mid ID --members-file F
                                   per-member copies of the message with Message-ID ID: prints a
                                   JSON object {members, lost, duplicated, dup_members, max,
                                   strangers, copies}
  find --log FILE --rcpt ADDR [--header NAME:TEXT...]
                                   print how many accepted messages to ADDR carry every header
                                   NAME containing TEXT
  rss --pid P --out FILE [--interval S]
                                   sample VmRSS of P every S seconds (0.2) until P exits or this
                                   process gets SIGTERM; write "max_kb samples" to FILE
  lmtp-stall --socket PATH --rcpt ADDR [--timeout S]
                                   LHLO, MAIL, RCPT, DATA, a few lines of the message, then
                                   silence: print the seconds until the server's reply and the
                                   reply; fail unless it is a 421 followed by the server closing
  killpoint SEED --max-k K --max-ms M
                                   the seeded kill point "K D" for "arm": odd seeds D (0-20) ms
                                   after K (1..K-1) accepted recipients, even seeds D (0..M) ms
                                   after the first MAIL FROM (K = 0)
  members --prefix P --count N --domain D
                                   print N addresses P00001@D ...
  freeports N                      print N free TCP ports on 127.0.0.1
"""

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import socket
import sys
import time


def die(msg):
    print(f"faultkit: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# SMTP reply parsing shared by the proxy.


class ReplyParser:
    """Splits a byte stream of SMTP replies into complete (possibly multi-line) replies."""

    def __init__(self):
        self.buf = b""
        self.lines = []

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                break
            line, self.buf = self.buf[: i + 1], self.buf[i + 1 :]
            self.lines.append(line)
            # "250-..." continues, "250 ..." (or a bare "250") ends the reply.
            if len(line) < 4 or line[3:4] != b"-":
                out.append(b"".join(self.lines))
                self.lines = []
        return out


def reply_code(reply):
    try:
        return int(reply[:3])
    except (ValueError, TypeError):
        return 0


# ---------------------------------------------------------------------------------------------
# Counting sink.

HEADERS_KEPT = ("message-id", "subject", "from", "to", "in-reply-to", "reply-to", "auto-submitted", "list-id")


def parse_headers(data):
    """A few headers of the message (unfolded), from its raw (dot-unstuffed) bytes."""
    end = data.find(b"\r\n\r\n")
    head = data[: end if end >= 0 else min(len(data), 65536)].decode("utf-8", "replace")
    out = {}
    name = None
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and name:
            if name in out:
                out[name] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        name = name.strip().lower() if sep else None
        if name in HEADERS_KEPT and name not in out:
            out[name] = value.strip()
        elif name not in HEADERS_KEPT:
            name = None
    return out


async def sink_session(reader, writer, logf, delay):
    peer = writer.get_extra_info("peername")
    out = []

    def say(line):
        out.append(line.encode() + b"\r\n")

    say("220 sink.test ESMTP counting sink")
    sender, rcpts, data_mode, data = None, [], False, []
    buf = b""
    try:
        while True:
            if out:
                if delay:
                    await asyncio.sleep(delay)
                writer.write(b"".join(out))
                out.clear()
                await writer.drain()
            chunk = await reader.read(65536)
            if not chunk:
                return
            buf += chunk
            while True:
                if data_mode:
                    # The message ends with CRLF.CRLF; the DATA line's CRLF counts as the first.
                    joined = b"".join(data) + buf
                    i = (b"\r\n" + joined).find(b"\r\n.\r\n")
                    if i < 0:
                        data, buf = [joined], b""
                        break
                    body = joined[: max(i, 0)]
                    buf = joined[i + 3 :] if i > 0 else joined[3:]
                    data, data_mode = [], False
                    body = body.replace(b"\r\n..", b"\r\n.")
                    if body.startswith(b".."):
                        body = body[1:]
                    rec = {
                        "t": round(time.time(), 3),
                        "from": sender,
                        "rcpts": rcpts,
                        "size": len(body),
                        "h": parse_headers(body),
                    }
                    logf.write(json.dumps(rec) + "\n")
                    logf.flush()
                    say("250 2.0.0 Ok: queued")
                    sender, rcpts = None, []
                    continue
                i = buf.find(b"\n")
                if i < 0:
                    break
                line, buf = buf[:i].rstrip(b"\r").decode("utf-8", "replace"), buf[i + 1 :]
                verb = line[:4].upper()
                if verb in ("EHLO", "LHLO"):
                    say("250-sink.test")
                    say("250-PIPELINING")
                    say("250-SIZE 104857600")
                    say("250-8BITMIME")
                    say("250 ENHANCEDSTATUSCODES")
                elif verb == "HELO":
                    say("250 sink.test")
                elif verb == "MAIL":
                    a = line.find("<")
                    b = line.find(">", a + 1)
                    sender, rcpts = line[a + 1 : b] if a >= 0 and b > a else "", []
                    say("250 2.1.0 Ok")
                elif verb == "RCPT":
                    if sender is None:
                        say("503 5.5.1 need MAIL first")
                        continue
                    a = line.find("<")
                    b = line.find(">", a + 1)
                    rcpts.append(line[a + 1 : b].lower())
                    say("250 2.1.5 Ok")
                elif verb == "DATA":
                    if not rcpts:
                        say("554 5.5.1 no valid recipients")
                        continue
                    say("354 End data with <CR><LF>.<CR><LF>")
                    data_mode, data = True, []
                elif verb == "RSET":
                    sender, rcpts = None, []
                    say("250 2.0.0 Ok")
                elif verb == "NOOP":
                    say("250 2.0.0 Ok")
                elif verb == "QUIT":
                    say("221 2.0.0 Bye")
                    writer.write(b"".join(out))
                    await writer.drain()
                    return
                else:
                    say("502 5.5.2 command not recognized")
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def cmd_sink(args):
    logf = open(args.log, "a", buffering=1 << 16)

    async def main():
        server = await asyncio.start_server(
            lambda r, w: sink_session(r, w, logf, args.delay_ms / 1000.0), "127.0.0.1", args.port, backlog=256
        )
        async with server:
            await server.serve_forever()

    run_until_term(main())


def run_until_term(coro):
    """Run the server coroutine until SIGTERM or SIGINT, then exit quietly."""

    async def wrapper():
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        task = asyncio.ensure_future(coro)
        await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        os._exit(0)  # no teardown of open sessions: this is a test tool being stopped

    asyncio.run(wrapper())


# ---------------------------------------------------------------------------------------------
# Fault proxy.


class ProxyState:
    def __init__(self):
        self.mode = "pass"
        self.delay = 0.0
        self.server = None
        self.conns = set()
        self.kill_time = None
        self.txlog_file = None
        self.armed = None  # (pid, k, delay_s)
        self.timer = None  # the pending kill
        self.reset()

    def reset(self):
        self.kill_time = None
        self.stats = collections.OrderedDict(
            connections=0,
            mail_seen=0,
            tx_passed=0,  # transactions the server accepted (2xx after the dot)
            rcpts_passed=0,  # recipients the server accepted in those transactions
            tx_failed_upstream=0,  # forwarded transactions the server did not accept
            tx_421=0,  # MAIL FROMs answered 421 by the proxy
            tx_451=0,  # transactions answered 451 after the dot by the proxy
            rcpts_after_kill=0,  # accepted on connections of the killed process, after the kill
            rcpts_at_kill=None,
            tx_at_kill=None,
            killed=None,
            kill_note=None,
        )

    def check_trigger(self, at_mail=False):
        if not self.armed:
            return
        pid, k, delay = self.armed
        if (k == 0 and at_mail) or (k > 0 and self.stats["rcpts_passed"] >= k):
            self.armed = None
            self.stats["kill_note"] = f"triggered at {self.stats['rcpts_passed']} accepted"
            self.timer = asyncio.get_running_loop().call_later(delay, self.kill, pid)

    def txlog(self, **rec):
        if self.txlog_file is not None:
            rec["t"] = round(time.time(), 4)
            self.txlog_file.write(json.dumps(rec) + "\n")
            self.txlog_file.flush()

    def kill(self, pid):
        self.timer = None
        self.txlog(event="kill", pid=pid)
        try:
            os.kill(pid, signal.SIGKILL)
            self.stats["killed"] = pid
        except ProcessLookupError:
            self.stats["killed"] = f"{pid} was gone"
        self.kill_time = time.monotonic()
        self.stats["rcpts_at_kill"] = self.stats["rcpts_passed"]
        self.stats["tx_at_kill"] = self.stats["tx_passed"]


class ProxyConn:
    """One client connection, relayed to its own upstream connection."""

    def __init__(self, st, creader, cwriter, upstream_port):
        self.st = st
        self.cr, self.cw = creader, cwriter
        self.upstream_port = upstream_port
        self.ur = self.uw = None
        self.slots = asyncio.Queue()  # futures of replies to the client, in command order
        self.pending_up = collections.deque()  # futures waiting for the server's next reply
        self.closed = False
        self.born = time.monotonic()

    def slot(self):
        fut = asyncio.get_running_loop().create_future()
        self.slots.put_nowait(fut)
        return fut

    def local(self, text, close=False):
        self.slot().set_result((text.encode() + b"\r\n", time.monotonic(), close))

    def upstream(self):
        fut = self.slot()
        self.pending_up.append(fut)
        return fut

    async def writer_task(self):
        try:
            while True:
                fut = await self.slots.get()
                reply, ready, close = await fut
                if reply is None:
                    break
                if self.st.delay:
                    wait = ready + self.st.delay - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                self.cw.write(reply)
                await self.cw.drain()
                if close:
                    break
        except (ConnectionError, OSError):
            pass
        self.abort()

    async def upstream_reader(self):
        parser = ReplyParser()
        try:
            while True:
                data = await self.ur.read(65536)
                if not data:
                    break
                for reply in parser.feed(data):
                    now = time.monotonic()
                    if self.pending_up:
                        fut = self.pending_up.popleft()
                        if not fut.done():
                            fut.set_result((reply, now, False))
                    else:
                        # Unsolicited (e.g. 421 on the server's idle timeout): pass it on.
                        self.local(reply.decode("utf-8", "replace").rstrip("\r\n"))
        except (ConnectionError, OSError):
            pass
        while self.pending_up:
            fut = self.pending_up.popleft()
            if not fut.done():
                fut.set_result((None, time.monotonic(), True))
        self.slots.put_nowait(self._done())
        self.abort()

    def _done(self):
        fut = asyncio.get_running_loop().create_future()
        fut.set_result((None, time.monotonic(), True))
        return fut

    def abort(self):
        if self.closed:
            return
        self.closed = True
        for w in (self.cw, self.uw):
            if w is not None:
                try:
                    w.close()
                except Exception:
                    pass
        self.st.conns.discard(self)

    async def run(self):
        st = self.st
        st.conns.add(self)
        st.stats["connections"] += 1
        try:
            self.ur, self.uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            self.abort()
            return
        sock = self.uw.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.upstream()  # the greeting
        tasks = [asyncio.ensure_future(self.writer_task()), asyncio.ensure_future(self.upstream_reader())]
        try:
            await self.client_loop()
        except (ConnectionError, OSError):
            pass
        finally:
            # The client is gone or done: whatever it sent is forwarded. The replies still owed
            # (a 421, the server's answer to a final dot the client sent before it died) are
            # written, then both sides are closed.
            if self.uw is not None and not self.closed:
                try:
                    await self.uw.drain()
                except (ConnectionError, OSError):
                    pass
            self.slots.put_nowait(self._done())
            try:
                await asyncio.wait_for(asyncio.shield(tasks[0]), 30)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
            self.abort()
            for t in tasks:
                t.cancel()

    async def client_loop(self):
        st = self.st
        buf = b""
        tx = None  # None | {"local": bool, "rcpts": [futures]}
        while not self.closed:
            chunk = await self.cr.read(65536)
            if not chunk:
                return
            buf += chunk
            out = []
            while True:
                if tx is not None and tx.get("data"):
                    # In the message: look for CRLF.CRLF (the DATA line's CRLF counts).
                    scan = tx["tail"] + buf
                    i = scan.find(b"\r\n.\r\n")
                    if i < 0:
                        if not tx["local"]:
                            out.append(buf)
                        tx["tail"] = scan[-4:]
                        buf = b""
                        break
                    end = i + 5 - len(tx["tail"])  # bytes of buf up to and including the dot line
                    if not tx["local"]:
                        out.append(buf[:end])
                    buf = buf[end:]
                    if tx["local"]:
                        st.stats["tx_451"] += 1
                        self.local("451 4.3.0 fault proxy: transaction failed after the dot")
                    else:
                        fut = self.upstream()
                        rcpt_futs, first = tx["rcpts"], tx.get("first")
                        st.txlog(event="dot", conn=id(self) % 100000, first=first)
                        fut.add_done_callback(lambda f, r=rcpt_futs, a=first: self.tx_done(f, r, a))
                    tx = None
                    continue
                i = buf.find(b"\n")
                if i < 0:
                    break
                line, buf = buf[: i + 1], buf[i + 1 :]
                verb = line[:4].upper()
                if verb == b"MAIL":
                    st.stats["mail_seen"] += 1
                    st.check_trigger(at_mail=True)
                    if st.mode == "421":
                        if out:
                            self.uw.write(b"".join(out))
                        st.stats["tx_421"] += 1
                        self.local("421 4.3.2 fault proxy: service not available, closing", close=True)
                        return
                    if st.mode == "451":
                        tx = {"local": True, "rcpts": []}
                        self.local("250 2.1.0 Ok (fault proxy)")
                        continue
                    tx = {"local": False, "rcpts": []}
                    out.append(line)
                    self.upstream()
                    continue
                if tx is not None and tx["local"]:
                    if verb == b"RCPT":
                        self.local("250 2.1.5 Ok (fault proxy)")
                        continue
                    if verb == b"DATA":
                        self.local("354 End data with <CR><LF>.<CR><LF> (fault proxy)")
                        tx.update(data=True, tail=b"\r\n")
                        continue
                    if verb == b"RSET":
                        tx = None
                        # fall through: forwarded
                out.append(line)
                fut = self.upstream()
                if tx is not None and verb == b"RCPT":
                    tx["rcpts"].append(fut)
                    tx.setdefault("first", line[8:].strip().decode("utf-8", "replace"))
                elif verb == b"DATA" and tx is not None:
                    # The client sends the message only after 354: wait for the verdict.
                    self.uw.write(b"".join(out))
                    out = []
                    await self.uw.drain()
                    reply, _, _ = await asyncio.shield(fut)
                    if reply is not None and reply_code(reply) == 354:
                        tx.update(data=True, tail=b"\r\n")
                    else:
                        tx = None
                elif verb in (b"RSET", b"QUIT", b"HELO", b"EHLO"):
                    tx = None
            if out:
                self.uw.write(b"".join(out))
                await self.uw.drain()

    def tx_done(self, fut, rcpt_futs, first):
        reply = fut.result()[0]
        st = self.st
        st.txlog(event="reply", conn=id(self) % 100000, first=first, reply=(reply or b"").decode("utf-8", "replace").strip())
        if reply is not None and reply_code(reply) // 100 == 2:
            accepted = sum(1 for f in rcpt_futs if f.done() and reply_code(f.result()[0]) // 100 == 2)
            st.stats["tx_passed"] += 1
            st.stats["rcpts_passed"] += accepted
            if st.kill_time is not None and self.born < st.kill_time:
                st.stats["rcpts_after_kill"] += accepted
            st.check_trigger()
        else:
            st.stats["tx_failed_upstream"] += 1


async def proxy_control(st, reader, writer, listen):
    try:
        line = (await reader.readline()).decode().split()
        ans = "ok"
        if not line:
            ans = "error: empty"
        elif line[0] == "mode" and len(line) == 2 and line[1] in ("pass", "refuse", "421", "451"):
            st.mode = line[1]
            if st.mode == "refuse":
                if st.server is not None:
                    st.server.close()
                    await st.server.wait_closed()
                    st.server = None
                for c in list(st.conns):
                    c.abort()
            elif st.server is None:
                st.server = await listen()
        elif line[0] == "delay" and len(line) == 2:
            st.delay = int(line[1]) / 1000.0
        elif line[0] == "arm" and len(line) == 4:
            st.armed = (int(line[1]), int(line[2]), int(line[3]) / 1000.0)
            st.check_trigger()
        elif line[0] == "disarm":
            st.armed = None
            if st.timer is not None:
                st.timer.cancel()
                st.timer = None
        elif line[0] == "reset":
            st.reset()
        elif line[0] == "stats":
            ans = json.dumps(dict(st.stats, mode=st.mode, delay_ms=int(st.delay * 1000), conns=len(st.conns)))
        else:
            ans = f"error: unknown command {' '.join(line)!r}"
        writer.write(ans.encode() + b"\n")
        await writer.drain()
    finally:
        writer.close()


def cmd_proxy(args):
    st = ProxyState()
    if args.txlog:
        st.txlog_file = open(args.txlog, "a")

    async def listen():
        return await asyncio.start_server(
            lambda r, w: ProxyConn(st, r, w, args.upstream).run(), "127.0.0.1", args.port, backlog=64
        )

    async def main():
        st.server = await listen()
        ctl = await asyncio.start_server(lambda r, w: proxy_control(st, r, w, listen), "127.0.0.1", args.control)
        async with ctl:
            await ctl.serve_forever()

    run_until_term(main())


def cmd_ctl(args):
    with socket.create_connection(("127.0.0.1", args.port), timeout=10) as s:
        s.sendall((" ".join(args.words) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    ans = data.decode().strip()
    print(ans)
    if ans.startswith("error"):
        sys.exit(1)


# ---------------------------------------------------------------------------------------------
# Queries on the sink's log.


def read_log(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)


def cmd_count(args):
    with open(args.members_file) as f:
        members = [ln.strip().lower() for ln in f if ln.strip()]
    copies = dict.fromkeys(members, 0)
    strangers = 0
    msgs = 0
    for rec in read_log(args.log):
        if rec["h"].get("message-id", "").strip() != args.mid:
            continue
        msgs += 1
        for r in rec["rcpts"]:
            if r in copies:
                copies[r] += 1
            else:
                strangers += 1
    lost = sum(1 for c in copies.values() if c == 0)
    dup = sum(c - 1 for c in copies.values() if c > 1)
    print(
        json.dumps(
            {
                "members": len(members),
                "lost": lost,
                "duplicated": dup,
                "dup_members": sum(1 for c in copies.values() if c > 1),
                "max": max(copies.values()) if copies else 0,
                "strangers": strangers,
                "copies": sum(copies.values()),
                "transactions": msgs,
                "lost_sample": [m for m, c in copies.items() if c == 0][:5],
            }
        )
    )


def cmd_find(args):
    want = [h.partition(":") for h in args.header]
    n = 0
    for rec in read_log(args.log):
        if args.rcpt.lower() not in rec["rcpts"]:
            continue
        if all(t in rec["h"].get(name.lower(), "") for name, _, t in want):
            n += 1
    print(n)


# ---------------------------------------------------------------------------------------------
# Other helpers.


def cmd_rss(args):
    samples, peak = 0, 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def write():
        with open(args.out + ".tmp", "w") as f:
            f.write(f"{peak} {samples}\n")
        os.replace(args.out + ".tmp", args.out)

    while not stop:
        try:
            with open(f"/proc/{args.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        peak = max(peak, int(line.split()[1]))
                        samples += 1
                        break
        except (FileNotFoundError, ProcessLookupError):
            break
        write()
        time.sleep(args.interval)
    write()


def cmd_lmtp_stall(args):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    s.connect(args.socket)
    f = s.makefile("rb")

    def reply():
        lines = []
        while True:
            line = f.readline()
            if not line:
                return lines
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                return lines

    def expect(cmd, code):
        if cmd is not None:
            s.sendall(cmd.encode() + b"\r\n")
        r = reply()
        if not r or not r[-1].startswith(str(code)):
            die(f"lmtp-stall: {cmd or 'greeting'!r} answered {r!r}, expected {code}")

    expect(None, 220)
    expect("LHLO stall.test", 250)
    expect("MAIL FROM:<staller@members.test>", 250)
    expect(f"RCPT TO:<{args.rcpt}>", 250)
    expect("DATA", 354)
    s.sendall(b"From: staller@members.test\r\nTo: " + args.rcpt.encode() + b"\r\nSubject: stall\r\n\r\nhalf a messa")
    t0 = time.monotonic()
    try:
        r = reply()
    except socket.timeout:
        die(f"lmtp-stall: no reply within {args.timeout} s of silence in DATA")
    elapsed = time.monotonic() - t0
    try:
        rest = s.recv(4096)
    except socket.timeout:
        die(f"lmtp-stall: the server answered {r!r} after {elapsed:.2f} s but did not close the connection")
    except ConnectionError:
        rest = b""
    print(f"{elapsed:.2f} {' | '.join(r)}")
    if not r or not r[0].startswith("421"):
        die(f"lmtp-stall: reply {r!r} after {elapsed:.2f} s, expected 421")
    if rest:
        die(f"lmtp-stall: more after the 421: {rest!r}")


def cmd_members(args):
    w = len(str(args.count))
    print("\n".join(f"{args.prefix}{i:0{w}d}@{args.domain}" for i in range(1, args.count + 1)))


def cmd_freeports(args):
    socks = []
    for _ in range(args.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def cmd_killpoint(args):
    """The kill point of a seed: K accepted recipients, then D ms (K = 0: first MAIL FROM)."""
    rng = random.Random(args.seed)
    if args.seed % 2:
        k, d = rng.randrange(1, args.max_k), rng.randrange(0, 21)
    else:
        k, d = 0, rng.randrange(0, args.max_ms + 1)
    print(k, d)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("sink")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--delay-ms", type=int, default=0)
    s.set_defaults(fn=cmd_sink)

    s = sub.add_parser("proxy")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--upstream", type=int, required=True)
    s.add_argument("--control", type=int, required=True)
    s.add_argument("--txlog", help="append a JSON line per final dot, final reply and kill")
    s.set_defaults(fn=cmd_proxy)

    s = sub.add_parser("ctl")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("words", nargs="+")
    s.set_defaults(fn=cmd_ctl)

    s = sub.add_parser("count")
    s.add_argument("--log", required=True)
    s.add_argument("--mid", required=True)
    s.add_argument("--members-file", required=True)
    s.set_defaults(fn=cmd_count)

    s = sub.add_parser("find")
    s.add_argument("--log", required=True)
    s.add_argument("--rcpt", required=True)
    s.add_argument("--header", action="append", default=[], metavar="NAME:TEXT")
    s.set_defaults(fn=cmd_find)

    s = sub.add_parser("rss")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--interval", type=float, default=0.2)
    s.set_defaults(fn=cmd_rss)

    s = sub.add_parser("lmtp-stall")
    s.add_argument("--socket", required=True)
    s.add_argument("--rcpt", required=True)
    s.add_argument("--timeout", type=float, default=30)
    s.set_defaults(fn=cmd_lmtp_stall)

    s = sub.add_parser("members")
    s.add_argument("--prefix", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--domain", required=True)
    s.set_defaults(fn=cmd_members)

    s = sub.add_parser("freeports")
    s.add_argument("n", type=int)
    s.set_defaults(fn=cmd_freeports)

    s = sub.add_parser("killpoint")
    s.add_argument("seed", type=int)
    s.add_argument("--max-k", type=int, required=True)
    s.add_argument("--max-ms", type=int, required=True)
    s.set_defaults(fn=cmd_killpoint)

    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
