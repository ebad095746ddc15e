#!/usr/bin/env python3
"""Small SMTP client and Maildir checker for tests/e2e/postfix.sh (standard library only).

Subcommands:
  freeports N                      print N free TCP ports on 127.0.0.1
  send --port P --sender S --to R [--to R...] --subject S [--size BYTES] [--from F] [--body TEXT]
       [--message-id ID]           submit one message (envelope sender S, header From F, S by
                                   default); print the submission time (epoch seconds)
  probe --port P --sender S --rcpt R [--xverp yes|no]
                                   EHLO, MAIL FROM (with XVERP), RCPT TO, RSET: all must be accepted
                                   and XVERP must (yes) or must not (no) be offered
  rcpt --port P --sender S --rcpt R --expect CODE
                                   EHLO, MAIL FROM, RCPT TO, RSET: the RCPT reply code must start
                                   with CODE ("250", "550", "4"); print the reply
  forge-dsn --port P --to R --failed ADDR
                                   submit, from the null sender, a well-formed RFC 3464 bounce
                                   (multipart/report, 5.1.1) to R that says ADDR failed: what
                                   anyone on the Internet can send to a bounce address
  wait --base DIR --users U [--users-file F] --token T [--count N] [--timeout S] [--since T0]
                                   poll until every user's Maildir holds >= N messages containing T
                                   (N = 1 by default); with --since, print the end-to-end time to
                                   the last delivery (newest file mtime - T0)
  verify --base DIR --users U --token T --exact N [header/body checks]
                                   every user's Maildir holds exactly N messages containing T,
                                   and each of them passes the checks
  find --base DIR --user U [--match NAME:TEXT...] [--body-contains T...] [--count N]
       [--timeout S | --now]       wait until U's Maildir holds N (default 1) messages whose
                                   header NAME contains TEXT (all --match and --body-contains
                                   hold); fail if it holds more; print their paths, one a line.
                                   --now: no waiting, exactly N (0 allowed) must match now
  count --base DIR --user U        print how many messages U's Maildir holds
  header FILE NAME                 print the (unfolded) value of header NAME of FILE, or fail
  check FILE [--match NAME:TEXT...] [--regex NAME:REGEX...] [--body-contains T...] [--lacks T...]
                                   the message in FILE passes every check (--lacks: T occurs
                                   neither in its raw bytes nor in its decoded text)
  reply FILE --port P --from ADDR [--to ADDR] [--text TEXT]
                                   answer FILE the way a mail client does: To its Reply-To (else
                                   its From), "Re: " Subject, In-Reply-To and References, the
                                   original body quoted under TEXT; submit it with envelope ADDR
A user is the local part of USER@members.test; its Maildir is DIR/members.test/USER/.
"""

import argparse
import email
import email.policy
import email.utils
import os
import re
import smtplib
import socket
import sys
import time
from email.message import EmailMessage

MEMBER_DOMAIN = "members.test"


def die(msg):
    print(f"mailtool: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def cmd_freeports(args):
    socks = []
    for _ in range(args.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def cmd_send(args):
    msg = EmailMessage()
    msg["From"] = args.sender if args.from_ is None else args.from_
    msg["To"] = ", ".join(args.to)
    msg["Subject"] = args.subject
    msg["Message-ID"] = args.message_id or email.utils.make_msgid(domain="e2e.members.test")
    msg["Date"] = email.utils.formatdate(localtime=True)
    body = f"Hello list, this is {args.subject}.\n" if args.body is None else args.body + "\n"
    if args.size:
        line = "The quick brown fox jumps over the lazy dog, again and again and again.\n"
        body += line * (args.size // len(line) + 1)
        body = body[: args.size - 1] + "\n"
    msg.set_content(body, cte="7bit")
    t0 = time.time()
    submit(args.port, msg, args.sender, args.to)
    print(f"{t0:.6f}")


def submit(port, msg, sender, rcpts):
    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.members.test", timeout=30) as s:
            refused = s.send_message(msg, from_addr=sender, to_addrs=rcpts)
    except smtplib.SMTPException as e:
        die(f"submission of {str(msg['Subject'])!r} failed: {e!r}")
    if refused:
        die(f"recipients refused at submission: {refused}")


def cmd_probe(args):
    with smtplib.SMTP("127.0.0.1", args.port, local_hostname="listkeeper.test", timeout=30) as s:
        s.ehlo()
        offered = s.has_extn("xverp")
        if offered != (args.xverp == "yes"):
            die(f"port {args.port}: XVERP {'not ' if not offered else ''}offered, expected {args.xverp}")
        code, reply = s.mail(args.sender, ["XVERP"] if offered else [])
        if code != 250:
            die(f"port {args.port}: MAIL FROM:<{args.sender}> answered {code} {reply!r}")
        code, reply = s.rcpt(args.rcpt)
        if code != 250:
            die(f"port {args.port}: RCPT TO:<{args.rcpt}> answered {code} {reply!r}")
        s.rset()


def cmd_rcpt(args):
    with smtplib.SMTP("127.0.0.1", args.port, local_hostname="client.members.test", timeout=30) as s:
        s.ehlo()
        code, reply = s.mail(args.sender)
        if code != 250:
            die(f"port {args.port}: MAIL FROM:<{args.sender}> answered {code} {reply!r}")
        code, reply = s.rcpt(args.rcpt)
        s.rset()
    text = reply.decode(errors="replace")
    if not str(code).startswith(args.expect):
        die(f"port {args.port}: RCPT TO:<{args.rcpt}> answered {code} {text!r}, expected {args.expect}")
    print(f"{code} {text}")


def cmd_forge_dsn(args):
    lines = [
        "From: MAILER-DAEMON@forger.example (Mail Delivery System)",
        f"To: {args.to}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {email.utils.formatdate(localtime=True)}",
        f"Message-ID: {email.utils.make_msgid(domain='forger.example')}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="forged"',
        "",
        "--forged",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"<{args.failed}>: host mx.forger.example said: 550 5.1.1 User unknown",
        "",
        "--forged",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.forger.example",
        "",
        f"Final-Recipient: rfc822; {args.failed}",
        "Action: failed",
        "Status: 5.1.1",
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown",
        "",
        "--forged--",
        "",
    ]
    raw = "\r\n".join(lines).encode("ascii")
    try:
        with smtplib.SMTP("127.0.0.1", args.port, local_hostname="mx.forger.example", timeout=30) as s:
            refused = s.sendmail("", [args.to], raw)
    except smtplib.SMTPException as e:
        die(f"submission of a forged DSN to {args.to} failed: {e!r}")
    if refused:
        die(f"forged DSN refused at submission: {refused}")


def read_users(args):
    users = list(args.users or [])
    if args.users_file:
        with open(args.users_file) as f:
            users += [ln.strip().split("@")[0] for ln in f if ln.strip()]
    if not users:
        die("no users given")
    return users


def maildir_files(base, user):
    root = os.path.join(base, MEMBER_DOMAIN, user)
    out = []
    for sub in ("new", "cur"):
        try:
            with os.scandir(os.path.join(root, sub)) as it:
                out += [e.path for e in it if e.is_file()]
        except FileNotFoundError:
            pass
    return out


class Matcher:
    """Caches which Maildir files contain the token (delivered files never change)."""

    def __init__(self, token):
        self.token = token.encode()
        self.seen = {}

    def matches(self, base, user):
        hits = []
        for path in maildir_files(base, user):
            hit = self.seen.get(path)
            if hit is None:
                try:
                    with open(path, "rb") as f:
                        hit = self.token in f.read()
                except FileNotFoundError:  # moved from new/ to cur/ meanwhile
                    continue
                self.seen[path] = hit
            if hit:
                hits.append(path)
        return hits


def cmd_wait(args):
    users = read_users(args)
    m = Matcher(args.token)
    deadline = time.time() + args.timeout
    pending = set(users)
    found = {}
    while True:
        for u in list(pending):
            hits = m.matches(args.base, u)
            if len(hits) >= args.count:
                found[u] = hits
                pending.discard(u)
        if not pending:
            break
        if time.time() > deadline:
            sample = ", ".join(sorted(pending)[:10])
            die(
                f"timeout after {args.timeout:.0f} s: {len(pending)} of {len(users)} Maildirs "
                f"lack {args.count} message(s) containing {args.token!r} (e.g. {sample})"
            )
        time.sleep(0.1)
    if args.since:
        last = max(os.stat(p).st_mtime for hits in found.values() for p in hits)
        print(f"{last - args.since:.2f}")


def cmd_verify(args):
    users = read_users(args)
    m = Matcher(args.token)
    problems = []
    for u in users:
        hits = m.matches(args.base, u)
        if len(hits) != args.exact:
            problems.append(f"{u}@{MEMBER_DOMAIN}: {len(hits)} messages containing {args.token!r}, expected {args.exact}")
            continue
        for path in hits:
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            where = f"{u}@{MEMBER_DOMAIN} ({path})"
            for spec in args.header_contains:
                name, _, want = spec.partition(":")
                values = [str(v) for v in msg.get_all(name, [])]
                if not any(want in v for v in values):
                    problems.append(f"{where}: header {name!r} = {values!r} does not contain {want!r}")
            if args.return_path is not None:
                rp = [str(v).strip() for v in msg.get_all("Return-Path", [])]
                if rp != [f"<{args.return_path}>"]:
                    problems.append(f"{where}: Return-Path {rp!r}, expected ['<{args.return_path}>']")
            if args.subject_prefix is not None:
                subj = str(msg.get("Subject", ""))
                if not subj.startswith(args.subject_prefix + " "):
                    problems.append(f"{where}: Subject {subj!r} does not start with {args.subject_prefix!r}")
                if subj.count(args.subject_prefix) != 1:
                    problems.append(f"{where}: Subject {subj!r} carries the prefix more than once")
            if args.body_contains:
                texts = []
                for part in msg.walk():
                    if part.get_content_maintype() == "text":
                        texts.append(part.get_content())
                body = "\n".join(texts)
                for want in args.body_contains:
                    if want not in body:
                        problems.append(f"{where}: body does not contain {want!r}")
    if problems:
        for p in problems[:20]:
            print(f"mailtool: {p}", file=sys.stderr)
        if len(problems) > 20:
            print(f"mailtool: ... and {len(problems) - 20} more", file=sys.stderr)
        die(f"{len(problems)} problem(s) in {len(users)} Maildirs")


def read_message(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def text_of(msg):
    texts = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            texts.append(part.get_content())
    return "\n".join(texts)


def check_message(msg, matches=(), regexes=(), bodies=()):
    """The problems of msg against NAME:TEXT matches, NAME:REGEX regexes and body texts."""
    problems = []
    for spec in matches:
        name, _, want = spec.partition(":")
        values = [str(v) for v in msg.get_all(name, [])]
        if not any(want in v for v in values):
            problems.append(f"header {name!r} = {values!r} does not contain {want!r}")
    for spec in regexes:
        name, _, rx = spec.partition(":")
        values = [str(v) for v in msg.get_all(name, [])]
        if not any(re.fullmatch(rx, v) for v in values):
            problems.append(f"header {name!r} = {values!r} does not match {rx!r}")
    if bodies:
        body = text_of(msg)
        for want in bodies:
            if want not in body:
                problems.append(f"body does not contain {want!r}")
    return problems


def cmd_find(args):
    if args.count == 0:
        args.now = True  # waiting for nothing to arrive proves nothing
    deadline = time.time() + args.timeout
    seen = {}  # path -> matches (delivered files never change)
    while True:
        hits = []
        for path in maildir_files(args.base, args.user):
            ok = seen.get(path)
            if ok is None:
                try:
                    ok = not check_message(read_message(path), args.match, (), args.body_contains)
                except FileNotFoundError:
                    continue
                seen[path] = ok
            if ok:
                hits.append(path)
        if len(hits) > args.count:
            die(
                f"{args.user}@{MEMBER_DOMAIN}: {len(hits)} messages match {args.match + args.body_contains!r}, "
                f"expected {args.count}: {sorted(hits)}"
            )
        if len(hits) == args.count:
            break
        if args.now or time.time() > deadline:
            subjects = []
            for path in maildir_files(args.base, args.user):
                try:
                    subjects.append(str(read_message(path).get("Subject", "")))
                except FileNotFoundError:
                    pass
            die(
                f"{args.user}@{MEMBER_DOMAIN}: {len(hits)} messages match {args.match + args.body_contains!r}, "
                f"expected {args.count}{'' if args.now else f' within {args.timeout:.0f} s'}; "
                f"the Maildir holds {len(subjects)}: subjects {subjects!r}"
            )
        time.sleep(0.1)
    for path in sorted(hits, key=lambda p: os.stat(p).st_mtime):
        print(path)


def cmd_count(args):
    print(len(maildir_files(args.base, args.user)))


def cmd_header(args):
    values = read_message(args.file).get_all(args.name, [])
    if len(values) != 1:
        die(f"{args.file}: {len(values)} {args.name!r} headers, expected 1")
    print(str(values[0]))


def cmd_check(args):
    msg = read_message(args.file)
    problems = check_message(msg, args.match, args.regex, args.body_contains)
    if args.lacks:
        with open(args.file, "rb") as f:
            raw = f.read().decode("utf-8", "replace")
        text = text_of(msg)
        for t in args.lacks:
            if t.lower() in raw.lower() or t.lower() in text.lower():
                problems.append(f"contains {t!r}")
    if problems:
        for p in problems:
            print(f"mailtool: {args.file}: {p}", file=sys.stderr)
        die(f"{len(problems)} problem(s) in {args.file}")


def cmd_reply(args):
    orig = read_message(args.file)
    to = str(orig.get("Reply-To") or orig.get("From") or "")
    if args.to:
        to = args.to
    rcpts = [a for _, a in email.utils.getaddresses([to]) if a]
    if len(rcpts) != 1:
        die(f"{args.file}: cannot tell whom to answer (Reply-To/From {to!r})")
    subject = str(orig.get("Subject", ""))
    if not re.match(r"(?i)re:", subject):
        subject = "Re: " + subject
    msg = EmailMessage()
    msg["From"] = args.from_
    msg["To"] = rcpts[0]
    msg["Subject"] = subject
    msg["Message-ID"] = email.utils.make_msgid(domain="e2e.members.test")
    msg["Date"] = email.utils.formatdate(localtime=True)
    orig_id = str(orig.get("Message-ID", "")).strip()
    if orig_id:
        msg["In-Reply-To"] = orig_id
        refs = str(orig.get("References", "")).split()
        msg["References"] = " ".join(refs + [orig_id])
    quoted = "\n".join(("> " + ln).rstrip() for ln in text_of(orig).splitlines())
    who = str(orig.get("From", "someone"))
    date = str(orig.get("Date", "an earlier day"))
    msg.set_content(f"{args.text}\n\nOn {date}, {who} wrote:\n{quoted}\n")
    submit(args.port, msg, args.from_, rcpts)
    print(msg["Message-ID"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("freeports")
    s.add_argument("n", type=int)
    s.set_defaults(fn=cmd_freeports)

    s = sub.add_parser("send")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--sender", required=True)
    s.add_argument("--to", action="append", required=True)
    s.add_argument("--subject", required=True)
    s.add_argument("--size", type=int, default=0)
    s.add_argument("--from", dest="from_")
    s.add_argument("--body")
    s.add_argument("--message-id")
    s.set_defaults(fn=cmd_send)

    s = sub.add_parser("probe")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--sender", required=True)
    s.add_argument("--rcpt", required=True)
    s.add_argument("--xverp", choices=["yes", "no"], required=True)
    s.set_defaults(fn=cmd_probe)

    s = sub.add_parser("rcpt")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--sender", required=True)
    s.add_argument("--rcpt", required=True)
    s.add_argument("--expect", required=True)
    s.set_defaults(fn=cmd_rcpt)

    s = sub.add_parser("forge-dsn")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--to", required=True)
    s.add_argument("--failed", required=True)
    s.set_defaults(fn=cmd_forge_dsn)

    for name, fn in (("wait", cmd_wait), ("verify", cmd_verify)):
        s = sub.add_parser(name)
        s.add_argument("--base", required=True)
        s.add_argument("--users", nargs="*")
        s.add_argument("--users-file")
        s.add_argument("--token", required=True)
        s.set_defaults(fn=fn)
    w = sub.choices["wait"]
    w.add_argument("--count", type=int, default=1)
    w.add_argument("--timeout", type=float, default=60)
    w.add_argument("--since", type=float)
    v = sub.choices["verify"]
    v.add_argument("--exact", type=int, required=True)
    v.add_argument("--header-contains", action="append", default=[], metavar="NAME:TEXT")
    v.add_argument("--return-path")
    v.add_argument("--subject-prefix")
    v.add_argument("--body-contains", action="append", default=[])

    s = sub.add_parser("find")
    s.add_argument("--base", required=True)
    s.add_argument("--user", required=True)
    s.add_argument("--match", action="append", default=[], metavar="NAME:TEXT")
    s.add_argument("--body-contains", action="append", default=[])
    s.add_argument("--count", type=int, default=1)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--timeout", type=float, default=60)
    g.add_argument("--now", action="store_true")
    s.set_defaults(fn=cmd_find)

    s = sub.add_parser("count")
    s.add_argument("--base", required=True)
    s.add_argument("--user", required=True)
    s.set_defaults(fn=cmd_count)

    s = sub.add_parser("header")
    s.add_argument("file")
    s.add_argument("name")
    s.set_defaults(fn=cmd_header)

    s = sub.add_parser("check")
    s.add_argument("file")
    s.add_argument("--match", action="append", default=[], metavar="NAME:TEXT")
    s.add_argument("--regex", action="append", default=[], metavar="NAME:REGEX")
    s.add_argument("--body-contains", action="append", default=[])
    s.add_argument("--lacks", action="append", default=[])
    s.set_defaults(fn=cmd_check)

    s = sub.add_parser("reply")
    s.add_argument("file")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--from", dest="from_", required=True)
    s.add_argument("--to")
    s.add_argument("--text", default="Yes, that was me.")
    s.set_defaults(fn=cmd_reply)

    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
