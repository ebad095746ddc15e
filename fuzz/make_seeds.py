#!/usr/bin/env python3
"""Rebuild the seed corpora fuzz/corpus/<target>/ from the test fixtures (run from anywhere).

Seeds are named after their source so a rebuild gives the same files; libFuzzer's own
corpus growth goes elsewhere (scripts/fuzz.sh passes fuzz/target/corpus/<target> first).
"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def unescape(s):
    """The R: escapes of tests/dialogues.rs: \\r \\n \\t \\\\ \\xNN."""
    out, i, b = bytearray(), 0, s.encode()
    while i < len(b):
        if b[i] == ord("\\") and i + 1 < len(b):
            c = chr(b[i + 1])
            if c in "rnt\\":
                out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}[c]
            elif c == "x" and i + 3 < len(b):
                out.append(int(b[i + 2 : i + 4], 16))
                i += 2
            else:
                out.append(b[i + 1])
            i += 2
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def rust_str(lit):
    return lit.encode().decode("unicode_escape")


def fixtures(directory, suffix, skip=".expected"):
    return sorted(p for p in (ROOT / directory).glob("*" + suffix) if skip not in p.name)


# decorate: the golden decoration fixtures and the content-filter inputs.
for p in fixtures("tests/fixtures/eml", ".eml") + fixtures("tests/fixtures/content", ".eml"):
    put("decorate", p.parent.name + "-" + p.stem, p.read_bytes())

# lmtp_session: the client side of every scripted dialogue, as the client sends it.
for p in sorted((ROOT / "tests/dialogues").glob("*.lmtp")):
    data = bytearray()
    for line in p.read_text().splitlines():
        if line.startswith("C:"):
            data += line[2:].removeprefix(" ").encode() + b"\r\n"
        elif line.startswith("R:"):
            data += unescape(line[2:].removeprefix(" "))
    put("lmtp_session", p.stem, bytes(data))


def session(rcpts, message, sender="poster@outside.test"):
    head = "LHLO mta.test\r\nMAIL FROM:<%s>\r\n" % sender
    head += "".join("RCPT TO:<%s>\r\n" % r for r in rcpts)
    body = message.replace("\r\n", "\n").replace("\n", "\r\n")
    return head + "DATA\r\n" + body + "\r\n.\r\nQUIT\r\n"


POST = "From: Poster <poster@outside.test>\nTo: {to}\nSubject: {subject}\nMessage-ID: <{subject}@outside.test>\n\n{body}"
MIXED = (
    "From: a@members.test\nTo: filt@example.org\nSubject: pic\nMIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: multipart/alternative; boundary=\"b2\"\n\n"
    "--b2\nContent-Type: text/plain\n\nplain\n--b2\nContent-Type: text/html\n\n<p>html</p>\n--b2--\n"
    "--b1\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--b1--\n"
)
extra = {
    "request-join": session(["dev-request@example.org"], POST.format(to="dev-request@example.org", subject="join", body="join\nhelp\nwho\nend\n")),
    "mod-request": session(["mod-join@example.org", "mod-leave@example.org"], POST.format(to="mod-join@example.org", subject="subscribe", body="subscribe\n")),
    "confirm": session(["dev-confirm+Tok3n_abcdefghij-KL@example.org"], POST.format(to="x", subject="Re: confirm Tok3n_abcdefghij-KL", body="yes\n")),
    "filt-mixed": session(["filt@example.org"], MIXED, sender="a@members.test"),
    "filt-spam": session(["filt@example.org"], "X-Spam-Flag: YES\n" + POST.format(to="filt@example.org", subject="unsubscribe", body="unsubscribe me\n")),
    "mod-post": session(["mod@example.org"], POST.format(to="mod@example.org", subject="held", body="please moderate\n"), sender="a@members.test"),
    "ann-post": session(["ann@example.org", "ann-owner@example.org"], POST.format(to="ann@example.org", subject="news", body="news\n"), sender="editor@example.org"),
    "p13n-post": session(["p13n@example.org"], POST.format(to="p13n@example.org", subject="personal", body="hi\n"), sender="a@members.test"),
    "p13n-unsubscribe": session(["p13n-unsubscribe+a=members.test.abcdefabcdef@example.org"], POST.format(to="x", subject="unsubscribe", body="\n")),
    "team-nonmember": session(["team@example.org"], POST.format(to="team@example.org", subject="nope", body="x\n")),
    "owner": session(["dev-owner@example.org"], POST.format(to="dev-owner@example.org", subject="owner", body="hello owner\n"), sender=""),
}
for p in fixtures("tests/fixtures/bounces", ".eml")[:4]:
    extra["bounce-" + p.stem] = session(["p13n-bounces+a=members.test@example.org"], p.read_text(errors="replace"), sender="")


def nested(levels, inner="Subject: innermost\n\nhello\n"):
    """`levels` unencoded message/rfc822 parts, one inside the other."""
    return "From: poster@outside.test\nSubject: nested\nMIME-Version: 1.0\n" + "Content-Type: message/rfc822\n\n" * levels + inner


def wrapped(message, encoding="base64"):
    """`message` as an encoded message/rfc822 part of a multipart/mixed post."""
    import base64, quopri
    if encoding == "base64":
        data = base64.encodebytes(message.encode()).decode()
    else:
        data = quopri.encodestring(message.encode()).decode()
    return (
        "From: poster@outside.test\nSubject: wrapped\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"w\"\n\n--w\nContent-Type: text/plain\n\nsee attached\n"
        "--w\nContent-Type: message/rfc822\nContent-Transfer-Encoding: %s\n\n%s--w--\n" % (encoding, data)
    )


DIGEST = (
    "From: poster@outside.test\nSubject: digest\nMIME-Version: 1.0\nContent-Type: multipart/digest; boundary=d\n\n"
    "--d\n\nSubject: one\n\nfirst\n--d\n\nSubject: two\nContent-Type: multipart/mixed; boundary=e\n\n--e\n\nx\n--e--\n\n--d--\n"
)
# Deep nesting (limits.max_mime_depth, 50 by default): at the limit, past it, hidden in an
# encoded part, and a digest whose parts default to message/rfc822.
depth_seeds = {
    "nested-50": nested(50),
    "nested-60": nested(60),
    "wrapped-base64-60": wrapped(nested(60)),
    "wrapped-qp-40": wrapped(nested(40), "quoted-printable"),
    "wrapped-twice": wrapped(wrapped(nested(20)), "base64"),
    "digest": DIGEST,
}
for name, message in depth_seeds.items():
    extra["depth-" + name] = session(["dev@example.org", "dev-request@example.org", "dev-join@example.org"], message)
    put("mime_depth", name, message.replace("\n", "\r\n"))
    put("mime_depth", name + "-lf", message)
    put("decorate", "depth-" + name, message)
    put("bounce", "depth-" + name, message)
for p in fixtures("tests/fixtures/eml", ".eml")[:6]:
    put("mime_depth", "eml-" + p.stem, p.read_bytes())
for name, data in extra.items():
    put("lmtp_session", "extra-" + name, data)

# commands: SUBJECT LF BODY (an empty Subject line where the fixture has none).
for p in sorted((ROOT / "tests/fixtures/commands").glob("*.txt")):
    head, rest = p.read_text().split("=== body\n", 1)
    body = rest.split("=== expect\n", 1)[0]
    subject = next((l[len("subject: "):] for l in head.splitlines() if l.startswith("subject: ")), "")
    put("commands", p.stem, subject + "\n" + body)
    put("commands", p.stem + "-crlf", subject.encode() + b"\xff" + body.replace("\n", "\r\n").encode())

# bounce: every bounce fixture, and VERP extensions.
for p in fixtures("tests/fixtures/bounces", ".eml"):
    put("bounce", p.stem, p.read_bytes())
# A few of the bounce corpus's mailer families (shapes the golden fixtures lack).
for name in ["qmail/custom-intro", "exchange/x400-dda", "sims-pmdf/action-first",
             "mailenable/bracket-list", "forwarded/dsn-in-rfc822", "mdn/quota-as-mdn",
             "imail/scrubbed-trailing-dot"]:
    path = ROOT / "tests/fixtures/bounce-corpus" / (name + ".eml")
    put("bounce", "corpus-" + name.replace("/", "-"), path.read_bytes())
put("bounce", "verp", "bob=example.org\n")
put("bounce", "verp-equals", "a=b=c=example.org\n")

# list_file: the example files, the lists of the tests and of the lmtp_session target.
for p in sorted((ROOT / "config").rglob("*.toml")):
    put("list_file", "config-" + p.stem, p.read_bytes())
for p in sorted((ROOT / "tests").glob("*.rs")) + [ROOT / "tests/common/mod.rs", ROOT / "fuzz/src/lib.rs"]:
    for m in re.finditer(r'^\s*(?:pub )?const ([A-Z_]+): &str =\s*"((?:[^"\\]|\\.)*)";', p.read_text(), re.M):
        put("list_file", "%s-%s" % (p.stem, m.group(1).lower()), rust_str(m.group(2)))
    for m in re.finditer(r'^\s*\(\s*"(\w+)",\s*"(address = (?:[^"\\]|\\.)*)",', p.read_text(), re.M):
        put("list_file", "%s-%s" % (p.stem, m.group(1)), rust_str(m.group(2)))
