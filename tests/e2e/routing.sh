# shellcheck shell=bash
# Part of tests/e2e/postfix.sh, sourced by it (it uses its helpers and variables): routing
# from the list files, through listkeeper's socketmap (postfix/socketmap.cf.snippet).
#   i. with the snippet applied (postconf -e, postfix reload): every list and role address is
#      accepted at RCPT, an unknown address at the list domain is refused at RCPT (550 5.1.1,
#      nothing queued, no bounce); a list file dropped while Postfix runs is accepted at once
#      and its post delivered; with listkeeper stopped, list addresses get 4xx at RCPT (the
#      sender keeps the mail) and are accepted again when it is back. `listkeeper mta check
#      postfix` names the missing map before the snippet and passes after it.

MAPSOCK="$LK/run/map.sock"
ROUTING_USERS=(r1 r2)

# routing_conf: the [routing] section of the test's listkeeper.toml.
routing_conf() {
    cat <<EOF2

[routing]
socketmap_socket = "$MAPSOCK"
socketmap_socket_mode = "0666"
EOF2
}

# rcpt_is CODE ADDRESS: the public smtpd answers RCPT TO:<ADDRESS> with a code starting CODE.
rcpt_is() {
    mailtool rcpt --port "$SUBMIT_PORT" --sender "poster@$MEMBER_DOMAIN" --rcpt "$2" \
        --expect "$1" >/dev/null 2>&1
}
rcpt_show() {
    mailtool rcpt --port "$SUBMIT_PORT" --sender "poster@$MEMBER_DOMAIN" --rcpt "$2" --expect "$1" ||
        fail "RCPT TO:<$2> not answered $1"
}

step_i() {
    STEP="i. routing from the list files (socketmap)"
    local line mark token addr
    # Before the snippet: listkeeper mta check names the missing recipient map (exit 1).
    if "$BIN" mta check postfix --config "$LKCONF" --mta-config "$PFC" >"$T/mta-check.out" 2>&1; then
        fail "listkeeper mta check postfix passes without relay_recipient_maps"
    fi
    grep -q '^WRONG relay_recipient_maps does not use socketmap' "$T/mta-check.out" ||
        { cat "$T/mta-check.out" >&2; fail "mta check did not name relay_recipient_maps"; }
    while IFS= read -r line; do
        [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
        postconf -c "$PFC" -e "$line"
    done < <(render "$SNIPPETS/socketmap.cf.snippet")
    postfix -c "$PFC" check || fail "postfix check failed with socketmap.cf.snippet"
    postfix -c "$PFC" reload >/dev/null 2>&1 || fail "postfix reload failed"
    wait_for "postfix to refuse an unknown list address at RCPT" rcpt_is 550 "nosuch-$RUN_ID@$LIST_DOMAIN"
    "$BIN" mta check postfix --config "$LKCONF" --mta-config "$PFC" >"$T/mta-check.out" 2>&1 ||
        { sed 's/^/    /' "$T/mta-check.out" >&2; fail "listkeeper mta check postfix finds the tested set-up wrong"; }
    log "PASS i: listkeeper mta check postfix: missing relay_recipient_maps named (exit 1), then right (exit 0)"

    mark="$(maillog_mark)"
    token="e2e-i-$RUN_ID"
    log "i: $(rcpt_show 550 "nosuch@$LIST_DOMAIN")"
    for addr in dev dev-request dev-join dev-leave dev-owner dev-bounces \
        "dev-bounces+a1=members.test" "dev-confirm+0123456789abcdefghijklmnopq" \
        "dev-leave+abc.a1=members.test" dev-subscribe dev-unsubscribe; do
        rcpt_show 250 "$addr@$LIST_DOMAIN" >/dev/null
    done
    for addr in dev-confirm dev-helper "nosuch+x" "dev@other.$LIST_DOMAIN"; do
        rcpt_show 5 "$addr@$LIST_DOMAIN" >/dev/null
    done
    # A post with an unknown recipient beside a list: the list gets it, the unknown one is
    # refused at RCPT, and no bounce is generated for it.
    if mailtool send --port "$SUBMIT_PORT" --sender "poster@$MEMBER_DOMAIN" \
        --to "nosuch@$LIST_DOMAIN" --subject "refused $token" >/dev/null 2>&1; then
        fail "a post to nosuch@$LIST_DOMAIN was accepted"
    fi
    wait_for "an empty postfix queue" queue_empty
    ! maillog_has "$mark" "to=<nosuch@$LIST_DOMAIN>,.*status=" || fail "Postfix queued mail for nosuch@$LIST_DOMAIN"
    maillog_has "$mark" "reject: RCPT from .*<nosuch@$LIST_DOMAIN>: Recipient address rejected" ||
        fail "no RCPT reject of nosuch@$LIST_DOMAIN in the maillog"
    mailtool find --base "$MAILBASE" --now --user poster --match "Subject:$token" --count 0 >/dev/null ||
        fail "poster got mail about the refused post"
    log "PASS i: role addresses accepted, unknown ones refused at RCPT (nothing queued, no bounce)"

    # A list file dropped while Postfix and listkeeper run: routable as soon as it is loaded.
    rcpt_show 550 "news-$RUN_ID@$LIST_DOMAIN" >/dev/null
    cat >"$LK/lists.d/news-$RUN_ID.toml" <<EOF2
address = "news-$RUN_ID@$LIST_DOMAIN"
owners = ["owner@$MEMBER_DOMAIN"]
[posting]
policy = "open"
[decoration]
subject_prefix = "[news]"
EOF2
    wait_for "news-$RUN_ID@$LIST_DOMAIN to be accepted at RCPT" rcpt_is 250 "news-$RUN_ID@$LIST_DOMAIN"
    "$BIN" members add --config "$LKCONF" "news-$RUN_ID@$LIST_DOMAIN" \
        "${ROUTING_USERS[@]/%/@$MEMBER_DOMAIN}" >>"$LKLOG" 2>&1 || fail "members add news failed"
    post "poster@$MEMBER_DOMAIN" "news-$RUN_ID@$LIST_DOMAIN" "fresh $token" >/dev/null
    mailtool wait --base "$MAILBASE" --users "${ROUTING_USERS[@]}" --token "fresh $token" --timeout "$TIMEOUT"
    wait_for "an empty postfix queue" queue_empty
    mailtool verify --base "$MAILBASE" --users "${ROUTING_USERS[@]}" --token "fresh $token" --exact 1 \
        --subject-prefix "[news]"
    log "PASS i: a list file dropped while Postfix ran was accepted at once and delivered"

    # listkeeper stopped: list mail is refused with 4xx at RCPT, so its sender keeps it.
    stop_listkeeper
    log "i: listkeeper down: $(rcpt_show 4 "dev@$LIST_DOMAIN")"
    start_listkeeper
    wait_for "dev@$LIST_DOMAIN to be accepted again" rcpt_is 250 "dev@$LIST_DOMAIN"
    log "PASS i: with listkeeper down, list addresses get 4xx at RCPT; accepted again after restart"
}
