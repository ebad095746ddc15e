# shellcheck shell=bash
# Part of tests/e2e/postfix.sh and exim.sh, sourced by them (it uses their helpers and
# variables, and their held_re, the MTA's log line of a post listkeeper held): the mail
# dialogues that go through the real MTA in both directions.
#   f. subscription by email: join, confirmation, a real reply, welcome, membership, a post
#      reaching the new member; leave the same way; a join of a member; a forged join
#   g. moderation: a stranger's post to a members-only list is held (LMTP 250 "held for
#      moderation"), the moderator's reply to the notice distributes it exactly once, a second
#      approval does not send it again; a rejection reaches the poster with its reason

# Maildir users of these steps (added to Postfix's virtual mailbox map by postfix.sh).
FLOW_USERS=(newbie victim attacker moderator stranger t1 t2 t3)
TEAM_MEMBERS=(t1 t2 t3)

# flows_lists: the list files and members these steps need (before listkeeper starts).
flows_lists() {
    cat >"$LK/lists.d/team.toml" <<'EOF'
address = "team@lists.test"
display_name = "Team"
description = "Members-only list, strangers are held for the moderator"
owners = ["owner@members.test"]
moderators = ["moderator@members.test"]
[posting]
policy = "members"
[decoration]
subject_prefix = "[team]"
footer = "Team list\nPost to {list_address}."
EOF
    "$BIN" members add --config "$LKCONF" team@lists.test "${TEAM_MEMBERS[@]/%/@$MEMBER_DOMAIN}" \
        >>"$LKLOG" 2>&1 || fail "members add team@lists.test failed; see $LKLOG"
}

# find_mail USER [--match NAME:TEXT] [--body-contains TEXT] [--count N]: wait until USER's
# Maildir holds exactly N (1) matching messages; print their paths.
find_mail() { mailtool find --base "$MAILBASE" --timeout "$TIMEOUT" --user "$@"; }
# count_mail USER [...] --count N: exactly N matching messages now (0 allowed).
count_mail() { mailtool find --base "$MAILBASE" --now --user "$@" >/dev/null; }
maildir_size() { mailtool count --base "$MAILBASE" --user "$1"; }
is_member() {
    local out
    out="$("$BIN" members list --config "$LKCONF" "$1")" || fail "members list $1 failed"
    # one member a line: the address, then a tab and its settings when any is on
    cut -f1 <<<"$out" | grep -qixF -- "$2"
}
# send_mail ENVELOPE_SENDER TO SUBJECT BODY MESSAGE_ID [send options]
send_mail() {
    local sender="$1" to="$2" subject="$3" body="$4" id="$5"
    shift 5
    mailtool send --port "$SUBMIT_PORT" --sender "$sender" --to "$to" --subject "$subject" \
        --body "$body" --message-id "$id" "$@" >/dev/null
}
reply_to_mail() { mailtool reply "$1" --port "$SUBMIT_PORT" --from "$2" --text "$3"; }
# confirm_token FILE LISTNAME: the TOKEN of FILE's Reply-To LISTNAME-confirm+TOKEN@lists.test.
confirm_token() {
    local rt
    rt="$(mailtool header "$1" Reply-To)" || fail "no single Reply-To in $1"
    [[ "$rt" =~ (^|<)$2-confirm\+([0-9A-Za-z_-]{27,128})@lists\.test(\>|$) ]] ||
        fail "Reply-To of $1 is '$rt', expected $2-confirm+TOKEN@$LIST_DOMAIN"
    printf '%s\n' "${BASH_REMATCH[2]}"
}
msgid() { printf '<%s@e2e.members.test>' "$1"; }

# ---------------------------------------------------------------------------------------------
step_f() {
    STEP="f. subscription by email"
    local newbie="newbie@$MEMBER_DOMAIN" id path tok reply_id before after token

    # Join by mail to dev-join@: a confirmation comes back to the sender.
    id="$(msgid "f-join-$RUN_ID")"
    send_mail "$newbie" "dev-join@$LIST_DOMAIN" "join" "Please add me." "$id"
    path="$(find_mail newbie --match "Reply-To:dev-confirm+" --match "Subject:join")"
    tok="$(confirm_token "$path" dev)"
    mailtool check "$path" --match "Subject:confirm $tok" --match "From:dev-request@$LIST_DOMAIN" \
        --match "To:$newbie" --regex "Auto-Submitted:auto-.*" --match "In-Reply-To:$id" \
        --body-contains "$tok"
    ! is_member dev@lists.test "$newbie" || fail "$newbie is a member before confirming"
    log "f: confirmation for $newbie arrived (Reply-To dev-confirm+$tok@$LIST_DOMAIN)"

    # A real reply to the confirmation subscribes; the welcome follows.
    reply_id="$(reply_to_mail "$path" "$newbie" "Yes, that was me. Please subscribe me.")"
    path="$(find_mail newbie --match "Subject:Welcome" --match "In-Reply-To:$reply_id")"
    mailtool check "$path" --match "From:dev-request@$LIST_DOMAIN" --regex "Auto-Submitted:auto-.*"
    is_member dev@lists.test "$newbie" || fail "members list dev@lists.test lacks $newbie after the welcome"
    log "f: replied to the confirmation; welcome arrived; members list shows $newbie"

    # A join of a member is answered once, with no new confirmation.
    wait_for "an empty MTA queue" queue_empty
    before="$(maildir_size newbie)"
    id="$(msgid "f-join-again-$RUN_ID")"
    send_mail "$newbie" "dev-request@$LIST_DOMAIN" "subscribe" "" "$id"
    path="$(find_mail newbie --match "In-Reply-To:$id")"
    mailtool check "$path" --body-contains "already subscribed" --regex "Auto-Submitted:auto-.*"
    wait_for "an empty MTA queue" queue_empty
    after="$(maildir_size newbie)"
    ((after == before + 1)) || fail "a join of a member brought $((after - before)) mails, expected 1 reply"
    count_mail newbie --match "Reply-To:dev-confirm+" --count 1
    log "f: a join of the subscribed $newbie got one reply saying so, no confirmation"

    # A post now reaches the new member, exactly once.
    token="e2e-f1-$RUN_ID"
    post "poster@$MEMBER_DOMAIN" "dev@$LIST_DOMAIN" "for the newcomer $token" >/dev/null
    mailtool wait --base "$MAILBASE" --users newbie "${DEV_MEMBERS[@]}" --token "$token" --timeout "$TIMEOUT"
    wait_for "an empty MTA queue" queue_empty
    mailtool verify --base "$MAILBASE" --users newbie "${DEV_MEMBERS[@]}" --token "$token" "${DEV_CHECKS[@]}"
    log "f: a post reached $newbie and the 5 other members exactly once"

    # Leave by a `leave` line to dev-request@: the command results and a confirmation.
    id="$(msgid "f-leave-$RUN_ID")"
    send_mail "$newbie" "dev-request@$LIST_DOMAIN" "Leaving the list" "leave" "$id"
    path="$(find_mail newbie --match "Reply-To:dev-confirm+" --match "Subject:leave")"
    tok="$(confirm_token "$path" dev)"
    mailtool check "$path" --match "Subject:confirm $tok" --match "In-Reply-To:$id" \
        --regex "Auto-Submitted:auto-.*"
    find_mail newbie --match "In-Reply-To:$id" --count 2 >/dev/null # the confirmation, the results
    is_member dev@lists.test "$newbie" || fail "$newbie left before confirming"
    reply_id="$(reply_to_mail "$path" "$newbie" "Yes, please unsubscribe me.")"
    path="$(find_mail newbie --match "In-Reply-To:$reply_id")"
    mailtool check "$path" --match "Subject:left" --body-contains "no longer subscribed"
    ! is_member dev@lists.test "$newbie" || fail "members list dev@lists.test still shows $newbie after the goodbye"
    token="e2e-f2-$RUN_ID"
    post "poster@$MEMBER_DOMAIN" "dev@$LIST_DOMAIN" "after the goodbye $token" >/dev/null
    mailtool wait --base "$MAILBASE" --users "${DEV_MEMBERS[@]}" --token "$token" --timeout "$TIMEOUT"
    wait_for "an empty MTA queue" queue_empty
    mailtool verify --base "$MAILBASE" --users newbie --token "$token" --exact 0
    log "f: left by confirming a leave; goodbye arrived; no longer a member, gets no posts"

    # A forged join (From: victim, envelope attacker) asks the victim and subscribes nobody.
    id="$(msgid "f-forged-$RUN_ID")"
    send_mail "attacker@$MEMBER_DOMAIN" "dev-join@$LIST_DOMAIN" "join" "Subscribe me." "$id" \
        --from "victim@$MEMBER_DOMAIN"
    path="$(find_mail victim --match "Reply-To:dev-confirm+" --match "In-Reply-To:$id")"
    wait_for "an empty MTA queue" queue_empty
    count_mail victim --count 1
    count_mail attacker --count 0
    ! is_member dev@lists.test "victim@$MEMBER_DOMAIN" || fail "a forged join subscribed victim@$MEMBER_DOMAIN"
    log "f: a forged join only mailed a confirmation to the victim; nobody subscribed"
    log "PASS f: join, confirm by reply, welcome, post, leave, goodbye, join of a member, forged join"
}

# ---------------------------------------------------------------------------------------------
step_g() {
    STEP="g. moderation"
    local mod="moderator@$MEMBER_DOMAIN" stranger="stranger@$MEMBER_DOMAIN"
    local mark token id notice tok reply_id path reason
    local team_checks=(--return-path "team-bounces@$LIST_DOMAIN" --subject-prefix "[team]"
        --header-contains "List-Id:<team.lists.test>" --body-contains "Post to team@$LIST_DOMAIN")

    # A stranger's post is held: delivered to LMTP with 250, a notice, an acknowledgement.
    token="e2e-g1-$RUN_ID"
    id="$(msgid "$token")"
    mark="$(maillog_mark)"
    send_mail "$stranger" "team@$LIST_DOMAIN" "question $token" "May I ask something? $token" "$id"
    wait_for "the MTA to deliver the stranger's post to listkeeper as held" \
        maillog_has "$mark" "$(held_re "team@$LIST_DOMAIN")"
    maillog_show "$mark" "$(held_re "team@$LIST_DOMAIN")"
    notice="$(find_mail moderator --match "Subject:$token")"
    tok="$(confirm_token "$notice" team)"
    mailtool check "$notice" --match "Subject:$tok" --match "From:team-request@$LIST_DOMAIN" \
        --regex "Auto-Submitted:auto-.*" --body-contains "$stranger"
    path="$(find_mail stranger --match "In-Reply-To:$id")"
    mailtool check "$path" --match "Subject:moderation" --body-contains "$token" \
        --regex "Auto-Submitted:auto-.*"
    wait_for "an empty MTA queue" queue_empty
    mailtool verify --base "$MAILBASE" --users "${TEAM_MEMBERS[@]}" --token "$token" --exact 0
    log "g: post held (LMTP 250), notice to the moderator (Reply-To team-confirm+$tok@), ack to the poster, no member got it"

    # The moderator replies to the notice: every member gets the post exactly once.
    reply_id="$(reply_to_mail "$notice" "$mod" "Fine with me.")"
    mailtool wait --base "$MAILBASE" --users "${TEAM_MEMBERS[@]}" --token "$token" --timeout "$TIMEOUT"
    path="$(find_mail moderator --match "In-Reply-To:$reply_id")"
    mailtool check "$path" --body-contains "Approved"
    wait_for "an empty MTA queue" queue_empty
    mailtool verify --base "$MAILBASE" --users "${TEAM_MEMBERS[@]}" --token "$token" --exact 1 "${team_checks[@]}"
    log "g: the moderator's reply approved it; 3 members got it exactly once"

    # A second approval by command does not send it again.
    id="$(msgid "g-approve-again-$RUN_ID")"
    send_mail "$mod" "team-request@$LIST_DOMAIN" "Moderation" "approve $tok" "$id"
    path="$(find_mail moderator --match "In-Reply-To:$id")"
    mailtool check "$path" --body-contains "already distributed"
    wait_for "an empty MTA queue" queue_empty
    mailtool verify --base "$MAILBASE" --users "${TEAM_MEMBERS[@]}" --token "$token" --exact 1
    log "g: a second approval was answered 'already distributed' and sent nothing"

    # A rejection with a reason reaches the poster; no member gets the post.
    token="e2e-g2-$RUN_ID"
    id="$(msgid "$token")"
    mark="$(maillog_mark)"
    send_mail "$stranger" "team@$LIST_DOMAIN" "offer $token" "Buy my stuff. $token" "$id"
    wait_for "the MTA to deliver the second post to listkeeper as held" \
        maillog_has "$mark" "$(held_re "team@$LIST_DOMAIN")"
    notice="$(find_mail moderator --match "Subject:$token")"
    tok="$(confirm_token "$notice" team)"
    find_mail stranger --match "In-Reply-To:$id" >/dev/null # the acknowledgement
    reason="off-topic here, reason-$RUN_ID"
    id="$(msgid "g-reject-$RUN_ID")"
    send_mail "$mod" "team-request@$LIST_DOMAIN" "Moderation" "reject $tok $reason" "$id"
    path="$(find_mail stranger --body-contains "reason-$RUN_ID")"
    mailtool check "$path" --match "Subject:rejected" --body-contains "$reason" --body-contains "$token" \
        --match "From:team-request@$LIST_DOMAIN"
    path="$(find_mail moderator --match "In-Reply-To:$id")"
    mailtool check "$path" --body-contains "Rejected"
    wait_for "an empty MTA queue" queue_empty
    mailtool verify --base "$MAILBASE" --users "${TEAM_MEMBERS[@]}" --token "$token" --exact 0
    log "g: a rejection reached the poster with its reason; no member got the post"
    log "PASS g: held post approved by a reply exactly once, second approval refused, rejection with reason"
}
