#!/usr/bin/env bash
# End-to-end test: listkeeper as the LMTP sidecar of a private Postfix instance.
#
# Runs as root on Debian 12 (installs Postfix if it is absent). It builds listkeeper
# (cargo build --release), starts a private Postfix (own config, queue and data directories and
# maillog, loopback ports chosen free, no port 25, no chroot), configured with exactly the
# operator snippets in postfix/ (only paths and ports substituted), delivers the list domain
# lists.test over LMTP to listkeeper and the member domain members.test to one Maildir per
# address, and checks with python3's smtplib:
#   a. a post to a 5-member list reaches every member exactly once, decorated
#   b. a post sent while listkeeper is down is deferred, then delivered exactly once
#   c. mail to an unknown list address is refused (550 5.1.1) and bounced to the sender
#   d. a non-member post to a members-only list is refused with a bounce to the sender
#   e. cost: a 10 KB post to a 1000-member list (prints a COST: line)
#   f. subscription by email: join, a real reply to the confirmation, welcome, a post reaching
#      the new member, leave the same way; a join of a member; a forged join (tests/e2e/flows.sh)
#   g. moderation: a stranger's post held, approved by the moderator's reply exactly once, a
#      second approval sends nothing; a rejection reaches the poster (tests/e2e/flows.sh)
#   h. personalized delivery and bounces: per-member copies with VERP, footer and
#      List-Unsubscribe; a member address Postfix bounces (5.1.1), Postfix's DSN to its VERP
#      address sends it a probe, the probe's DSN disables it (owner told, no more copies);
#      forged DSNs about a live member disable nobody; unsubscribe by the member's own
#      List-Unsubscribe address; members enable (tests/e2e/bounces.sh)
#   i. routing from the list files (postfix/socketmap.cf.snippet): role addresses accepted,
#      unknown ones refused at RCPT with no bounce, a new list file routable at once, 4xx at
#      RCPT while listkeeper is down (tests/e2e/routing.sh)
#
# Environment: LISTKEEPER_BIN=/path/to/listkeeper skips the build and tests that binary;
#              KEEP_TMP=1 keeps the temporary directory even on success.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SNIPPETS="$ROOT/postfix"
LIST_DOMAIN=lists.test
MEMBER_DOMAIN=members.test
TIMEOUT=60          # seconds to wait for any single condition
STEP="setup"

log() { printf '[e2e %s] %s\n' "$(date +%T)" "$*"; }
fail() {
    printf '[e2e %s] FAIL (%s): %s\n' "$(date +%T)" "$STEP" "$*" >&2
    exit 1
}
mailtool() { python3 "$HERE/mailtool.py" "$@"; }

[[ $EUID -eq 0 ]] || fail "must run as root (it starts a private Postfix instance)"

# ---------------------------------------------------------------------------------------------
# Packages: Postfix (not started, no system configuration) and python3.
STEP="packages"
postfix_installed() {
    [[ "$(dpkg-query -W -f='${Status}' postfix 2>/dev/null)" == "install ok installed" ]] &&
        [[ -x /usr/sbin/postfix ]]
}
if ! postfix_installed || ! command -v python3 >/dev/null; then
    log "installing postfix and python3 with apt-get"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        postfix python3 >/dev/null
fi
postfix_installed || fail "postfix is not installed"
log "$(postconf -d -h mail_version 2>/dev/null | sed 's/^/postfix /')"

# ---------------------------------------------------------------------------------------------
# listkeeper binary.
STEP="build"
if [[ -n "${LISTKEEPER_BIN:-}" ]]; then
    BIN="$LISTKEEPER_BIN"
else
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release)
    target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
    [[ "$target_dir" == /* ]] || target_dir="$ROOT/$target_dir"
    BIN="$target_dir/release/listkeeper"
fi
[[ -x "$BIN" ]] || fail "no listkeeper binary at $BIN"

# ---------------------------------------------------------------------------------------------
# Temporary directory and cleanup.
STEP="tmpdir"
T="$(mktemp -d "${TMPDIR:-/tmp}/listkeeper-e2e.XXXXXX")"
chmod 755 "$T"                       # postfix and the Maildir owner must traverse it
PFC="$T/postfix/etc"                 # Postfix config directory
PFQ="$T/postfix/queue"               # Postfix queue directory
MAILLOG="$T/log/maillog"
MAILBASE="$T/mail"                   # virtual_mailbox_base
LK="$T/listkeeper"                   # listkeeper config, lists, data, log
LKCONF="$LK/listkeeper.toml"
LKLOG="$LK/listkeeper.log"
SOCK="$LK/run/lmtp.sock"
LK_PID=""
PF_STARTED=0

diagnostics() {
    echo "======== postfix maillog (last 80 lines): $MAILLOG" >&2
    tail -n 80 "$MAILLOG" >&2 2>/dev/null || true
    echo "======== postfix queue" >&2
    postqueue -c "$PFC" -p 2>&1 | head -n 40 >&2 || true
    echo "======== listkeeper log (last 80 lines): $LKLOG" >&2
    tail -n 80 "$LKLOG" >&2 2>/dev/null || true
    echo "========" >&2
}

stop_postfix() {
    local pid i
    pid="$(head -n 1 "$PFQ/pid/master.pid" 2>/dev/null | tr -d ' ')" || true
    postfix -c "$PFC" stop >/dev/null 2>&1 || true
    if [[ -n "$pid" ]]; then
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            postfix -c "$PFC" abort >/dev/null 2>&1 || true
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    PF_STARTED=0
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    ((rc == 0)) || { diagnostics; log "FAILED in step: $STEP"; }
    if [[ -n "$LK_PID" ]]; then
        kill -TERM "$LK_PID" 2>/dev/null
        for ((i = 0; i < 50; i++)); do kill -0 "$LK_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$LK_PID" 2>/dev/null
        wait "$LK_PID" 2>/dev/null
    fi
    ((PF_STARTED)) && stop_postfix
    if ((rc == 0)) && [[ -z "${KEEP_TMP:-}" ]]; then
        rm -rf "$T"
    else
        log "kept $T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Helpers.

# wait_for DESCRIPTION COMMAND...: poll COMMAND every 0.1 s until it succeeds, up to $TIMEOUT s.
wait_for() {
    local what="$1" deadline=$((SECONDS + TIMEOUT))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || fail "timeout after ${TIMEOUT} s waiting for $what"
        sleep 0.1
    done
}
maillog_mark() { wc -l <"$MAILLOG" 2>/dev/null || echo 0; }
# maillog_has MARK REGEX: a maillog line after line MARK matches the extended REGEX. Not a
# pipe into `grep -q`: under pipefail, grep's early exit can fail tail with SIGPIPE and a
# present line would read as missing.
maillog_has() { grep -Eq -- "$2" < <(tail -n "+$(($1 + 1))" "$MAILLOG" 2>/dev/null); }
maillog_show() { tail -n "+$(($1 + 1))" "$MAILLOG" | grep -E -- "$2" | sed 's/^/    maillog: /'; }
# held_re RCPT: the maillog line of an LMTP delivery to RCPT that listkeeper answered "held".
held_re() { printf 'to=<%s>.*status=sent .*held for moderation' "$1"; }
queue_empty() { grep -q 'Mail queue is empty' < <(postqueue -c "$PFC" -p 2>/dev/null); }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
lk_up() { kill -0 "$LK_PID" 2>/dev/null || fail "listkeeper exited; see $LKLOG"; [[ -S "$SOCK" ]]; }

start_listkeeper() {
    (cd / && exec "$BIN" serve --config "$LKCONF") >>"$LKLOG" 2>&1 &
    LK_PID=$!
    wait_for "listkeeper's LMTP socket $SOCK" lk_up
    log "listkeeper serving (pid $LK_PID)"
}

stop_listkeeper() {
    local rc=0 i
    kill -TERM "$LK_PID"
    for ((i = 0; i < 100; i++)); do kill -0 "$LK_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$LK_PID" 2>/dev/null && fail "listkeeper (pid $LK_PID) still running 10 s after SIGTERM"
    wait "$LK_PID" || rc=$?
    LK_PID=""
    ((rc == 0)) || fail "listkeeper exited with status $rc after SIGTERM (expected 0)"
    log "listkeeper stopped cleanly (exit 0)"
}

# render FILE: the snippet with its placeholders replaced by this instance's paths and ports.
render() {
    local out
    out="$(sed -e "s|@LIST_DOMAIN@|$LIST_DOMAIN|g" \
        -e "s|@POSTFIX_CONFIG_DIR@|$PFC|g" \
        -e "s|@LMTP_SOCKET@|$SOCK|g" \
        -e "s|@REINJECT_LISTEN@|127.0.0.1:$REINJECT_PORT|g" \
        -e "s|@MAP_SOCKET@|$MAPSOCK|g" "$1")"
    local left
    left="$(grep -v '^[[:space:]]*#' <<<"$out" | grep -Eo '@[A-Z_]+@' | sort -u | tr '\n' ' ')" || true
    [[ -z "$left" ]] || fail "unknown placeholder(s) in $1: $left"
    printf '%s\n' "$out"
}

# The steps f and g (subscription by email, moderation) and their helpers.
# shellcheck source=flows.sh
source "$HERE/flows.sh"
# The step h (personalized delivery and bounces) and its helpers.
# shellcheck source=bounces.sh
source "$HERE/bounces.sh"
# The step i (routing through listkeeper's socketmap) and its helpers.
# shellcheck source=routing.sh
source "$HERE/routing.sh"

# ---------------------------------------------------------------------------------------------
# Private Postfix instance.
STEP="postfix setup"
read -r SUBMIT_PORT REINJECT_PORT <<<"$(mailtool freeports 2)"
log "temp dir $T; submission 127.0.0.1:$SUBMIT_PORT, re-injection 127.0.0.1:$REINJECT_PORT"

mkdir -p "$PFQ" "$T/log" "$MAILBASE" "$LK/run" "$LK/lists.d"
cp -r /etc/postfix "$PFC"
rm -f "$PFC/makedefs.out" "$PFC/main.cf" "$PFC/transport" "$PFC"/*.db
: >"$PFC/main.cf"
chown nobody:nogroup "$MAILBASE"

# Test-instance settings (everything an operator's existing main.cf would already have).
postconf -c "$PFC" -e \
    "compatibility_level = 3.6" \
    "queue_directory = $PFQ" \
    "data_directory = $T/postfix/data" \
    "maillog_file = $MAILLOG" \
    "maillog_file_prefixes = /var, /dev/stdout, $T" \
    "myhostname = mx.test" \
    "mydomain = test" \
    "myorigin = \$myhostname" \
    "mydestination =" \
    "inet_interfaces = 127.0.0.1" \
    "inet_protocols = ipv4" \
    "mynetworks = 127.0.0.0/8" \
    "alias_maps =" \
    "alias_database =" \
    "biff = no" \
    "smtp_dns_support_level = disabled" \
    "default_transport = error:5.7.1 this test instance delivers only to $LIST_DOMAIN and $MEMBER_DOMAIN" \
    "virtual_mailbox_domains = $MEMBER_DOMAIN" \
    "virtual_mailbox_base = $MAILBASE" \
    "virtual_mailbox_maps = texthash:$PFC/vmailbox" \
    "virtual_uid_maps = static:$(id -u nobody)" \
    "virtual_gid_maps = static:$(id -g nobody)" \
    "queue_run_delay = 1s" \
    "minimal_backoff_time = 1s" \
    "maximal_backoff_time = 2s" \
    "delay_warning_time = 0"
# One Maildir per address: USER@members.test -> $MAILBASE/members.test/USER/ (virtual(8)
# refuses $1 substitution from regexp tables, so every test address is listed; others bounce).
DEV_MEMBERS=(a1 a2 a3 a4 a5)
CLOSED_MEMBERS=(c1 c2)
PERF_USERS="$T/perf-members.txt"
for i in $(seq -w 1 1000); do echo "p$i@$MEMBER_DOMAIN"; done >"$PERF_USERS"
for user in "${DEV_MEMBERS[@]}" "${CLOSED_MEMBERS[@]}" poster outsider owner "${FLOW_USERS[@]}" \
    "${NEWS_USERS[@]}" "${ROUTING_USERS[@]}" $(sed 's/@.*//' "$PERF_USERS"); do
    printf '%s@%s\t%s/%s/\n' "$user" "$MEMBER_DOMAIN" "$MEMBER_DOMAIN" "$user"
done >"$PFC/vmailbox"

# master.cf: no chroot, no port 25, one plain smtpd on a free port standing in for the MX.
postconf -c "$PFC" -F '*/*/chroot = n'
postconf -c "$PFC" -M# smtp/inet
postconf -c "$PFC" -Me "127.0.0.1:$SUBMIT_PORT/inet = 127.0.0.1:$SUBMIT_PORT inet n - n - - smtpd"

# The operator snippets, exactly as shipped (placeholders substituted).
render "$SNIPPETS/master.cf.snippet" >>"$PFC/master.cf"
while IFS= read -r line; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    postconf -c "$PFC" -e "$line"
done < <(render "$SNIPPETS/main.cf.snippet")
render "$SNIPPETS/transport" >"$PFC/transport"
postmap -c "$PFC" "hash:$PFC/transport"

postconf -c "$PFC" -n >"$T/postfix/main.cf.effective"
if postconf -c "$PFC" -n 2>&1 >/dev/null | grep -q warning; then
    postconf -c "$PFC" -n 2>&1 >/dev/null | sed 's/^/    /' >&2
    fail "postconf warns about the configuration"
fi
postfix -c "$PFC" set-permissions || fail "postfix set-permissions failed"
postfix -c "$PFC" check || fail "postfix check failed"
PF_STARTED=1
postfix -c "$PFC" start >/dev/null 2>&1 || fail "postfix start failed; see $MAILLOG"
wait_for "postfix on 127.0.0.1:$SUBMIT_PORT" port_open "$SUBMIT_PORT"
wait_for "postfix re-injection on 127.0.0.1:$REINJECT_PORT" port_open "$REINJECT_PORT"
log "private postfix running (config $PFC)"
# The re-injection listener offers XVERP to listkeeper and accepts any recipient from it;
# the public listener does not offer XVERP.
mailtool probe --port "$REINJECT_PORT" --sender "dev-bounces@$LIST_DOMAIN" \
    --rcpt "someone@elsewhere.example" --xverp yes
mailtool probe --port "$SUBMIT_PORT" --sender "poster@$MEMBER_DOMAIN" \
    --rcpt "a1@$MEMBER_DOMAIN" --xverp no

# ---------------------------------------------------------------------------------------------
# listkeeper configuration, lists and members.
STEP="listkeeper setup"
cat >"$LKCONF" <<EOF
[server]
lmtp_listen = ["unix:$SOCK"]
lmtp_socket_mode = "0666"
data_dir = "data"
lists_dir = "lists.d"
recipient_delimiter = "+"

[reinject]
target = "127.0.0.1:$REINJECT_PORT"
connections = 4
max_recipients_per_transaction = 500
helo_name = "listkeeper.test"

[limits]
max_message_size = 10485760
max_recipients = 1000
EOF
routing_conf >>"$LKCONF"
cat >"$LK/lists.d/dev.toml" <<'EOF'
address = "dev@lists.test"
display_name = "Developers"
description = "Development discussion"
owners = ["owner@members.test"]
[posting]
policy = "open"
[decoration]
subject_prefix = "[dev]"
footer = "Developers list\nPost to {list_address}. Help: {request_address}"
EOF
cat >"$LK/lists.d/closed.toml" <<'EOF'
address = "closed@lists.test"
display_name = "Closed"
description = "Members-only list"
owners = ["owner@members.test"]
[posting]
policy = "members"
non_member_action = "reject"
[decoration]
subject_prefix = "[closed]"
footer = "Closed list\nPost to {list_address}."
EOF
cat >"$LK/lists.d/perf.toml" <<'EOF'
address = "perf@lists.test"
display_name = "Performance"
description = "1000 members"
owners = ["owner@members.test"]
[posting]
policy = "open"
[decoration]
subject_prefix = "[perf]"
footer = "Performance list\nPost to {list_address}."
EOF
flows_lists
bounces_lists

"$BIN" check --config "$LKCONF" >>"$LKLOG" 2>&1 || fail "listkeeper check rejects the test config; see $LKLOG"

# Members added while the server is stopped.
"$BIN" members add --config "$LKCONF" dev@lists.test "${DEV_MEMBERS[@]/%/@$MEMBER_DOMAIN}" >>"$LKLOG" 2>&1 ||
    fail "members add dev@lists.test failed; see $LKLOG"
printf '%s\n' "${CLOSED_MEMBERS[@]/%/@$MEMBER_DOMAIN}" |
    "$BIN" members add --config "$LKCONF" closed@lists.test --file - >>"$LKLOG" 2>&1 ||
    fail "members add --file - closed@lists.test failed; see $LKLOG"
n="$("$BIN" members list --config "$LKCONF" dev@lists.test | grep -c "@$MEMBER_DOMAIN")" || true
[[ "$n" == 5 ]] || fail "members list dev@lists.test shows $n members, expected 5"

start_listkeeper

# post SENDER LIST SUBJECT [--size N]: submit a post, print its submission time.
post() {
    local sender="$1" to="$2" subject="$3"
    shift 3
    mailtool send --port "$SUBMIT_PORT" --sender "$sender" --to "$to" --subject "$subject" "$@"
}
RUN_ID="$(date +%s)-$$"

# ---------------------------------------------------------------------------------------------
STEP="a. post to a 5-member list"
TOKEN="e2e-a-$RUN_ID"
post "poster@$MEMBER_DOMAIN" "dev@$LIST_DOMAIN" "hello $TOKEN" >/dev/null
mailtool wait --base "$MAILBASE" --users "${DEV_MEMBERS[@]}" --token "$TOKEN" --timeout "$TIMEOUT"
wait_for "an empty postfix queue" queue_empty
DEV_CHECKS=(--exact 1 --return-path "dev-bounces@$LIST_DOMAIN" --subject-prefix "[dev]"
    --header-contains "List-Id:<dev.lists.test>"
    --body-contains "Developers list" --body-contains "Post to dev@$LIST_DOMAIN")
mailtool verify --base "$MAILBASE" --users "${DEV_MEMBERS[@]}" --token "$TOKEN" "${DEV_CHECKS[@]}"
log "PASS a: 5 members got the post exactly once, with List-Id, [dev] prefix, footer, Return-Path"

# ---------------------------------------------------------------------------------------------
STEP="b. post while listkeeper is down"
stop_listkeeper
TOKEN="e2e-b-$RUN_ID"
mark="$(maillog_mark)"
post "poster@$MEMBER_DOMAIN" "dev@$LIST_DOMAIN" "while down $TOKEN" >/dev/null
wait_for "postfix to defer the post to dev@$LIST_DOMAIN" \
    maillog_has "$mark" "to=<dev@$LIST_DOMAIN>.*status=deferred"
maillog_show "$mark" "to=<dev@$LIST_DOMAIN>.*status=deferred" | head -n 1
mailtool verify --base "$MAILBASE" --users "${DEV_MEMBERS[@]}" --token "$TOKEN" --exact 0
start_listkeeper
mailtool wait --base "$MAILBASE" --users "${DEV_MEMBERS[@]}" --token "$TOKEN" --timeout "$TIMEOUT"
wait_for "an empty postfix queue" queue_empty
mailtool verify --base "$MAILBASE" --users "${DEV_MEMBERS[@]}" --token "$TOKEN" "${DEV_CHECKS[@]}"
log "PASS b: deferred while listkeeper was down, delivered exactly once after it came back"

# ---------------------------------------------------------------------------------------------
STEP="c. unknown list address"
TOKEN="e2e-c-$RUN_ID"
mark="$(maillog_mark)"
post "poster@$MEMBER_DOMAIN" "nosuch@$LIST_DOMAIN" "nobody home $TOKEN" >/dev/null
wait_for "a 550 5.1.1 bounce of nosuch@$LIST_DOMAIN in the maillog" \
    maillog_has "$mark" "to=<nosuch@$LIST_DOMAIN>.*status=bounced.* 550[ -]5\.1\.1"
maillog_show "$mark" "to=<nosuch@$LIST_DOMAIN>.*status=bounced"
mailtool wait --base "$MAILBASE" --users poster --token "$TOKEN" --timeout "$TIMEOUT"
log "PASS c: nosuch@$LIST_DOMAIN refused with 550 5.1.1, bounce delivered to the sender"

# ---------------------------------------------------------------------------------------------
STEP="d. members-only list"
TOKEN="e2e-d-$RUN_ID"
mark="$(maillog_mark)"
post "outsider@$MEMBER_DOMAIN" "closed@$LIST_DOMAIN" "let me in $TOKEN" >/dev/null
# Whatever form the refusal takes (an LMTP 5xx that Postfix bounces, or a notice from
# listkeeper), the sender gets a message about it and no member gets the post.
mailtool wait --base "$MAILBASE" --users outsider --token "" --timeout "$TIMEOUT"
wait_for "an empty postfix queue" queue_empty
maillog_show "$mark" "to=<closed@$LIST_DOMAIN>" || true
mailtool verify --base "$MAILBASE" --users "${CLOSED_MEMBERS[@]}" --token "$TOKEN" --exact 0
TOKEN="e2e-d2-$RUN_ID"
post "c1@$MEMBER_DOMAIN" "closed@$LIST_DOMAIN" "member post $TOKEN" >/dev/null
mailtool wait --base "$MAILBASE" --users c2 --token "$TOKEN" --timeout "$TIMEOUT"
wait_for "an empty postfix queue" queue_empty
mailtool verify --base "$MAILBASE" --users c2 --token "$TOKEN" --exact 1 \
    --return-path "closed-bounces@$LIST_DOMAIN" --subject-prefix "[closed]" \
    --header-contains "List-Id:<closed.lists.test>"
log "PASS d: non-member post refused with a message to the sender; a member's post goes through"

# ---------------------------------------------------------------------------------------------
STEP="e. cost: 10 KB post to 1000 members"
# Members added while the server is running.
"$BIN" members add --config "$LKCONF" perf@lists.test --file - <"$PERF_USERS" >>"$LKLOG" 2>&1 ||
    fail "members add --file - perf@lists.test (1000 addresses, server running) failed; see $LKLOG"
n="$("$BIN" members list --config "$LKCONF" perf@lists.test | grep -c "@$MEMBER_DOMAIN")" || true
[[ "$n" == 1000 ]] || fail "members list perf@lists.test shows $n members, expected 1000"
TOKEN="e2e-e-$RUN_ID"
t0="$(post "poster@$MEMBER_DOMAIN" "perf@$LIST_DOMAIN" "cost $TOKEN" --size 10240)"
elapsed="$(mailtool wait --base "$MAILBASE" --users-file "$PERF_USERS" --token "$TOKEN" \
    --timeout 120 --since "$t0")"
hwm_kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$LK_PID/status")"
wait_for "an empty postfix queue" queue_empty
mailtool verify --base "$MAILBASE" --users-file "$PERF_USERS" --token "$TOKEN" --exact 1 \
    --return-path "perf-bounces@$LIST_DOMAIN" --subject-prefix "[perf]" \
    --header-contains "List-Id:<perf.lists.test>" --body-contains "Post to perf@$LIST_DOMAIN"
log "PASS e: 1000 members got the 10 KB post exactly once"
printf 'COST: 1000 members, 10 KB: %s s end to end, listkeeper peak RSS %s MB\n' \
    "$elapsed" "$(awk -v kb="$hwm_kb" 'BEGIN {printf "%.1f", kb / 1024}')"

# ---------------------------------------------------------------------------------------------
step_f
step_g
step_h
step_i

# ---------------------------------------------------------------------------------------------
STEP="shutdown"
stop_listkeeper
log "ALL PASSED"
