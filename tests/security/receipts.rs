//! A poster cannot harvest the members' addresses through read receipts: the fields that ask a
//! reader's mail program to report back never reach the members, and every other field of the
//! post arrives with its bytes unchanged.

use crate::common::World;

#[tokio::test]
async fn read_receipt_requests_never_reach_the_members() {
    let w = World::new("", &[]).await;
    let kept_before = "From: <poster@people.test>\r\nTo: <dev@example.org>\r\nX-Odd:   spaced  value\r\n\tfolded on";
    let headers = format!(
        "{kept_before}\r\n\
         Disposition-Notification-To: <poster@people.test>\r\n\
         return-receipt-to: poster@people.test\r\n\
         X-CONFIRM-READING-TO:\r\n <poster@people.test>\r\n\
         Errors-To : poster@people.test\r\n\
         Subject: please confirm\r\n\
         Message-ID: <receipt@people.test>"
    );
    let out = w
        .mail(
            "poster@people.test",
            "dev@example.org",
            &headers,
            "Did you read this?",
        )
        .await;
    assert!(out.starts_with("250 2.0.0 distributed to 3"), "{out}");
    for member in ["a@members.test", "b@members.test", "c@members.test"] {
        let copy = w.last_to(member);
        let (head, body) = copy.split_once("\r\n\r\n").expect("header and body");
        for line in head.split("\r\n") {
            let name = line.split(':').next().unwrap_or_default().trim();
            let name = name.to_ascii_lowercase();
            assert!(
                !matches!(
                    name.as_str(),
                    "disposition-notification-to"
                        | "return-receipt-to"
                        | "x-confirm-reading-to"
                        | "errors-to"
                ),
                "{line:?} reached {member}:\n{copy}"
            );
        }
        // Continuation lines went with their fields: the poster's address is in From only.
        assert_eq!(head.matches("poster@people.test").count(), 1, "{copy}");
        assert!(
            head.starts_with(&format!(
                "{kept_before}\r\nSubject: [dev] please confirm\r\nMessage-ID: <receipt@people.test>\r\nX-BeenThere: dev@example.org\r\nList-Id: "
            )),
            "{copy}"
        );
        assert!(body.starts_with("Did you read this?"), "{copy}");
    }
}
