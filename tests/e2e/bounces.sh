# shellcheck shell=bash
# Part of tests/e2e/postfix.sh, sourced by it (it uses its helpers and variables, and those of
# flows.sh): personalized delivery and bounce processing through the real Postfix.
#   h. a list with delivery.mode = "personalized", verp = true, a footer naming the member and
#      its own unsubscribe address, and bounces.threshold = 1.0 (one hard bounce reaches the
#      threshold) with the default bounces.probe = true:
#      - each real member gets its own copy: VERP Return-Path, its own footer and
#        List-Unsubscribe;
#      - a member address Postfix does not know (not in virtual_mailbox_maps, so virtual(8)
#        bounces it with 5.1.1) makes Postfix send a real DSN from MAILER-DAEMON to that
#        member's VERP address; it is delivered over LMTP to listkeeper, which counts it and
#        sends a probe to the member with envelope sender news-bounces+probe.TOKEN@; Postfix
#        bounces the probe too, and that DSN, to the probe's address, disables the member;
#        the owner is told; the next post is not sent to the address;
#      - DSNs forged by a stranger (null sender, through the public port) about a live member,
#        to its VERP address and to a made-up probe address, only get a probe into the
#        member's own mailbox: the member stays enabled and gets the next post;
#      - a member mails its own List-Unsubscribe address through Postfix and is gone at once;
#      - `members enable` clears the bounce record and delivery to the address resumes.

# Maildir users of this step (added to Postfix's virtual mailbox map by postfix.sh); the dead
# member's local part is deliberately NOT among them.
NEWS_USERS=(n1 n2)
NEWS_DEAD=ghost

# bounces_lists: the list file and members this step needs (before listkeeper starts).
bounces_lists() {
    cat >"$LK/lists.d/news.toml" <<'EOF'
address = "news@lists.test"
display_name = "News"
description = "Personalized delivery with VERP; one hard bounce sends a probe, whose bounce disables"
owners = ["owner@members.test"]
[posting]
policy = "open"
[delivery]
mode = "personalized"
verp = true
[bounces]
threshold = 1.0
[decoration]
subject_prefix = "[news]"
footer = "News list\nYou are subscribed as {member_address}.\nTo leave at once, write to {unsubscribe_address}"
EOF
    "$BIN" members add --config "$LKCONF" news@lists.test \
        "${NEWS_USERS[@]/%/@$MEMBER_DOMAIN}" "$NEWS_DEAD@$MEMBER_DOMAIN" \
        >>"$LKLOG" 2>&1 || fail "members add news@lists.test failed; see $LKLOG"
}

# maillog_line MARK REGEX: the first maillog line after line MARK matching REGEX (or fail).
# Not `tail | grep -m 1`: grep's early exit can kill tail with SIGPIPE, and under pipefail a
# line that is there reads as missing (seen on a maillog of 1 300 lines).
maillog_line() {
    local line
    line="$(grep -E -m 1 -- "$2" < <(tail -n "+$(($1 + 1))" "$MAILLOG"))" ||
        fail "no maillog line after line $1 matches: $2"
    printf '%s\n' "$line"
}
# queue_id LINE: the Postfix queue id of a maillog line ("... postfix/x[pid]: QUEUEID: ...").
queue_id() {
    [[ "$1" =~ \]:\ ([0-9A-Za-z]+):\  ]] || fail "no queue id in maillog line: $1"
    printf '%s\n' "${BASH_REMATCH[1]}"
}
# bounced_ndr MARK QID: the queue id of the non-delivery notification Postfix wrote for QID,
# checked to come from the null sender (MAILER-DAEMON).
bounced_ndr() {
    local line ndr
    wait_for "postfix to write a non-delivery notification for $2" \
        maillog_has "$1" "postfix/bounce\[[0-9]+\]: $2: sender non-delivery notification: "
    line="$(maillog_line "$1" "postfix/bounce\[[0-9]+\]: $2: sender non-delivery notification: ")"
    ndr="${line##*: }"
    wait_for "the non-delivery notification $ndr to leave the queue" \
        maillog_has "$1" "\]: $ndr: to=<.*status=(sent|bounced|deferred)"
    maillog_has "$1" "\]: $ndr: from=<>," || fail "the DSN $ndr does not come from the null sender (MAILER-DAEMON)"
    printf '%s\n' "$ndr"
}
# lmtp_reply MARK QID RCPT_REGEX REPLY_REGEX: QID was delivered to RCPT over LMTP and
# listkeeper answered 250 2.0.0 REPLY.
lmtp_reply() {
    maillog_show "$1" "\]: $2: (from|to)="
    maillog_has "$1" "postfix/listkeeper/lmtp\[[0-9]+\]: $2: to=<$3>, relay=[^,]*lmtp\.sock\],.* status=sent \(250 2\.0\.0 .*$4\)" ||
        fail "$2 to $3 was not answered '$4' by listkeeper"
}
# forged_reply MARK RCPT REPLY_REGEX: the forged DSN to RCPT submitted after MARK was
# delivered to listkeeper over LMTP and answered 250 2.0.0 REPLY.
forged_reply() {
    local rcpt_re line
    rcpt_re="$(re_escape "$2")"
    wait_for "the forged DSN to $2 to reach listkeeper" \
        maillog_has "$1" "postfix/listkeeper/lmtp\[[0-9]+\]: [0-9A-Za-z]+: to=<$rcpt_re>, .*status=(sent|bounced|deferred)"
    line="$(maillog_line "$1" "postfix/listkeeper/lmtp\[[0-9]+\]: [0-9A-Za-z]+: to=<$rcpt_re>, ")"
    lmtp_reply "$1" "$(queue_id "$line")" "$rcpt_re" "$3"
}
bounces_list() {
    "$BIN" bounces list --config "$LKCONF" news@lists.test 2>>"$LKLOG" ||
        fail "listkeeper bounces list news@lists.test failed; see $LKLOG"
}
# re_escape TEXT: TEXT with the extended-regex metacharacters escaped.
re_escape() { sed -e 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$1"; }

# ---------------------------------------------------------------------------------------------
step_h() {
    STEP="h. personalized delivery and bounces"
    local dead="$NEWS_DEAD@$MEMBER_DOMAIN" dead_re verp_dead verp_dead_re
    local token mark u other path lu unsub line qid ndr out id pqid probe_from victim
    local verp_victim guessed
    local -a others
    local -A unsub_of=()
    dead_re="$(re_escape "$dead")"
    verp_dead="news-bounces+$NEWS_DEAD=$MEMBER_DOMAIN@$LIST_DOMAIN"
    verp_dead_re="$(re_escape "$verp_dead")"

    # A post: every real member gets its own copy, with VERP and its own footer and
    # List-Unsubscribe.
    token="e2e-h1-$RUN_ID"
    mark="$(maillog_mark)"
    post "poster@$MEMBER_DOMAIN" "news@$LIST_DOMAIN" "personal $token" >/dev/null
    mailtool wait --base "$MAILBASE" --users "${NEWS_USERS[@]}" --token "$token" --timeout "$TIMEOUT"
    for u in "${NEWS_USERS[@]}"; do
        path="$(find_mail "$u" --match "Subject:$token")" # exactly one copy
        lu="$(mailtool header "$path" List-Unsubscribe)" || fail "no single List-Unsubscribe in $path"
        [[ "$lu" =~ \<mailto:(news-leave\+[^\>?]+)\> ]] ||
            fail "$u's List-Unsubscribe is '$lu', expected <mailto:news-leave+...>"
        unsub="${BASH_REMATCH[1]//%3D/=}"
        unsub="${unsub//%3d/=}"
        [[ "$unsub" =~ ^news-leave\+[a-z2-7]{26}\.$u=members\.test@lists\.test$ ]] ||
            fail "$u's List-Unsubscribe names '$unsub', expected news-leave+MAC.$u=$MEMBER_DOMAIN@$LIST_DOMAIN"
        others=()
        for other in "${NEWS_USERS[@]}" "$NEWS_DEAD"; do
            [[ "$other" == "$u" ]] || others+=(--lacks "$other=$MEMBER_DOMAIN" --lacks "$other@$MEMBER_DOMAIN")
        done
        mailtool check "$path" \
            --regex "Return-Path:<$(re_escape "news-bounces+$u=$MEMBER_DOMAIN@$LIST_DOMAIN")>" \
            --regex "Subject:\[news\] personal $token" --match "List-Id:<news.lists.test>" \
            --body-contains "You are subscribed as $u@$MEMBER_DOMAIN." \
            --body-contains "To leave at once, write to $unsub" "${others[@]}"
        unsub_of[$u]="$unsub"
    done
    log "h: ${NEWS_USERS[*]} each got their own copy: VERP Return-Path news-bounces+USER=$MEMBER_DOMAIN@, footer and List-Unsubscribe naming only them"

    # The dead address bounces in Postfix; Postfix's DSN goes to its VERP address and over LMTP
    # to listkeeper, which counts it: the score reaches the threshold, so a probe goes out.
    # virtual(8) says 'unknown user: "ADDRESS"' (smtpd would say "User unknown in virtual
    # mailbox table", but the re-injection listener has no_unknown_recipient_checks).
    wait_for "postfix to bounce $dead with 5.1.1" maillog_has "$mark" \
        "to=<$dead_re>, relay=virtual,.* dsn=5\.1\.1, status=bounced \((unknown user: \"$dead_re\"|User unknown in virtual mailbox table)"
    line="$(maillog_line "$mark" "to=<$dead_re>.*status=bounced")"
    printf '    maillog: %s\n' "$line"
    qid="$(queue_id "$line")"
    ndr="$(bounced_ndr "$mark" "$qid")"
    lmtp_reply "$mark" "$ndr" "$verp_dead_re" "bounce counted for 1 member\(s\)"
    log "h: Postfix bounced $dead (5.1.1); its DSN (from <>) to $verp_dead reached listkeeper over LMTP: 'bounce counted for 1 member(s)'"

    # The probe: listkeeper re-injects it with a fresh token in its envelope sender, to the
    # dead member only; Postfix bounces it as well, and that DSN, to the probe's address,
    # is the one that disables.
    wait_for "a probe from news-bounces+probe.TOKEN@$LIST_DOMAIN in the maillog" \
        maillog_has "$mark" "postfix/qmgr\[[0-9]+\]: [0-9A-Za-z]+: from=<news-bounces\+probe\.[0-9a-f]{40}@lists\.test>"
    line="$(maillog_line "$mark" "postfix/qmgr\[[0-9]+\]: [0-9A-Za-z]+: from=<news-bounces\+probe\.[0-9a-f]{40}@lists\.test>")"
    printf '    maillog: %s\n' "$line"
    pqid="$(queue_id "$line")"
    [[ "$line" =~ from=\<(news-bounces\+probe\.[0-9a-f]{40}@lists\.test)\> ]] || fail "no probe address in: $line"
    probe_from="${BASH_REMATCH[1]}"
    [[ "$line" =~ nrcpt=1\  ]] || fail "the probe $pqid has more than one recipient: $line"
    wait_for "postfix to bounce the probe $pqid to $dead" maillog_has "$mark" \
        "\]: $pqid: to=<$dead_re>, relay=virtual,.* dsn=5\.1\.1, status=bounced"
    maillog_show "$mark" "\]: $pqid: to="
    ndr="$(bounced_ndr "$mark" "$pqid")"
    lmtp_reply "$mark" "$ndr" "$(re_escape "$probe_from")" "probe bounced; the member is disabled"
    out="$(bounces_list)"
    sed 's/^/    bounces list: /' <<<"$out"
    grep -Eq "^$dead_re +[0-9.]+ +.* disabled\$" <<<"$out" ||
        fail "listkeeper bounces list news@lists.test does not show $dead disabled"
    for u in "${NEWS_USERS[@]}"; do
        ! grep -Eq "^$u@members\.test .*disabled\$" <<<"$out" || fail "$u@$MEMBER_DOMAIN shown disabled"
    done
    path="$(find_mail owner --match "Subject:$dead disabled on news@$LIST_DOMAIN because of bounces")"
    mailtool check "$path" --match "From:news-request@$LIST_DOMAIN" --regex "Auto-Submitted:auto-.*" \
        --body-contains "members enable news@$LIST_DOMAIN $dead"
    is_member news@lists.test "$dead" || fail "$dead was removed; a disabled member stays subscribed"
    log "h: listkeeper probed $dead from $probe_from; Postfix bounced the probe, its DSN reached listkeeper: 'probe bounced; the member is disabled'; owner told"

    # A stranger forges DSNs about a live member (null sender, through the public port): to
    # its VERP address the score reaches the threshold and the member gets a probe, which its
    # mailbox accepts; to a made-up probe address nothing happens. The member stays enabled.
    victim="${NEWS_USERS[1]}"
    verp_victim="news-bounces+$victim=$MEMBER_DOMAIN@$LIST_DOMAIN"
    guessed="news-bounces+probe.0000000000000000000000000000000000000000@$LIST_DOMAIN"
    wait_for "an empty postfix queue" queue_empty
    mark="$(maillog_mark)"
    mailtool forge-dsn --port "$SUBMIT_PORT" --to "$verp_victim" --failed "$victim@$MEMBER_DOMAIN"
    forged_reply "$mark" "$verp_victim" "bounce counted for 1 member\(s\)"
    path="$(find_mail "$victim" --match "Subject:Checking your address for news@$LIST_DOMAIN")"
    mailtool check "$path" --regex "Return-Path:<news-bounces\+probe\.[0-9a-f]{40}@lists\.test>" \
        --match "From:news-request@$LIST_DOMAIN" --match "To:$victim@$MEMBER_DOMAIN" \
        --regex "Auto-Submitted:auto-.*"
    mailtool forge-dsn --port "$SUBMIT_PORT" --to "$guessed" --failed "$victim@$MEMBER_DOMAIN"
    forged_reply "$mark" "$guessed" "probe reply ignored"
    wait_for "an empty postfix queue" queue_empty
    out="$(bounces_list)"
    sed 's/^/    bounces list: /' <<<"$out"
    grep -Eq "^$victim@members\.test +[0-9.]+ +.* probing\$" <<<"$out" ||
        fail "listkeeper bounces list news@lists.test does not show $victim@$MEMBER_DOMAIN probing"
    log "h: forged DSNs about $victim@$MEMBER_DOMAIN: to $verp_victim a probe reached $victim's own mailbox; to a made-up probe address 'probe reply ignored'; $victim not disabled"

    # The next post reaches the real members and is not even attempted to the dead address.
    wait_for "an empty postfix queue" queue_empty
    token="e2e-h2-$RUN_ID"
    mark="$(maillog_mark)"
    post "poster@$MEMBER_DOMAIN" "news@$LIST_DOMAIN" "after the bounce $token" >/dev/null
    mailtool wait --base "$MAILBASE" --users "${NEWS_USERS[@]}" --token "$token" --timeout "$TIMEOUT"
    wait_for "an empty postfix queue" queue_empty
    for u in "${NEWS_USERS[@]}"; do
        mailtool verify --base "$MAILBASE" --users "$u" --token "$token" --exact 1 \
            --return-path "news-bounces+$u=$MEMBER_DOMAIN@$LIST_DOMAIN" \
            --body-contains "You are subscribed as $u@$MEMBER_DOMAIN."
    done
    if maillog_has "$mark" "to=<$dead_re>"; then
        maillog_show "$mark" "to=<$dead_re>"
        fail "the post after disabling was sent to $dead"
    fi
    log "h: the next post reached ${NEWS_USERS[*]}; no delivery attempt to $dead in the maillog"

    # A member writes to the unsubscribe address of its copy's List-Unsubscribe: gone at once.
    u="${NEWS_USERS[0]}"
    id="$(msgid "h-unsub-$RUN_ID")"
    send_mail "$u@$MEMBER_DOMAIN" "${unsub_of[$u]}" "unsubscribe" "" "$id"
    path="$(find_mail "$u" --match "Subject:You have left news@$LIST_DOMAIN")"
    mailtool check "$path" --match "From:news-request@$LIST_DOMAIN" --body-contains "no longer subscribed" \
        --regex "Auto-Submitted:auto-.*"
    ! is_member news@lists.test "$u@$MEMBER_DOMAIN" ||
        fail "members list news@lists.test still shows $u@$MEMBER_DOMAIN after the goodbye"
    is_member news@lists.test "${NEWS_USERS[1]}@$MEMBER_DOMAIN" ||
        fail "${NEWS_USERS[1]}@$MEMBER_DOMAIN left too"
    log "h: $u wrote to ${unsub_of[$u]}; goodbye arrived; no longer a member"

    # members enable: the bounce record is gone and delivery to the address resumes.
    "$BIN" members enable --config "$LKCONF" news@lists.test "$dead" >>"$LKLOG" 2>&1 ||
        fail "listkeeper members enable news@lists.test $dead failed; see $LKLOG"
    out="$(bounces_list)"
    if grep -Eq "^$dead_re " <<<"$out"; then
        sed 's/^/    bounces list: /' <<<"$out"
        fail "bounces list news@lists.test still shows $dead after members enable"
    fi
    wait_for "an empty postfix queue" queue_empty
    token="e2e-h3-$RUN_ID"
    mark="$(maillog_mark)"
    post "poster@$MEMBER_DOMAIN" "news@$LIST_DOMAIN" "after enable $token" >/dev/null
    mailtool wait --base "$MAILBASE" --users "${NEWS_USERS[1]}" --token "$token" --timeout "$TIMEOUT"
    wait_for "a delivery attempt to the re-enabled $dead" maillog_has "$mark" "to=<$dead_re>.*status=bounced"
    wait_for "an empty postfix queue" queue_empty
    maillog_show "$mark" "to=<$dead_re>|to=<$verp_dead_re>"
    mailtool verify --base "$MAILBASE" --users "$u" --token "$token" --exact 0
    log "h: members enable cleared $dead's bounce record; the next post was attempted to it again"
    log "PASS h: personalized copies with VERP, a real Postfix DSN probed the dead member and the probe's DSN disabled it, forged DSNs disabled nobody, unsubscribe by List-Unsubscribe, enable"
}
