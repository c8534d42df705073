//! The whole node on every database backend: a flagged mail in over SMTP, the carrier and the
//! credentials mail out at a real SMTP sink, the message opened in the portal. PostgreSQL and
//! MariaDB run when SEALPOST_TEST_POSTGRES_URL / SEALPOST_TEST_MYSQL_URL are set.

mod common;

use common::*;
use sealpost_smtp::outbound::RcptResult;
use sealpost_store::testing::{fresh_database, server_url_or_skip};

async fn end_to_end_on(label: &str) {
    let Some(server) = server_url_or_skip(label) else {
        return;
    };
    let (url, guard) = fresh_database(&server).await.expect("fresh database");
    let node = TestNode::start_with(|c| c.database.url = Some(url.clone())).await;
    let mail = crlf(&format!(
        "From: advisor@bank.example\nTo: kunde@example.com\nSubject: [secure] on {label}\n\nBody on {label}\n"
    ));
    let results = node
        .send("advisor@bank.example", &["kunde@example.com"], &mail)
        .await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = node.wait_for_mails(2).await;
    let carrier = mails
        .iter()
        .find(|m| kind_of(m) == "carrier")
        .expect("carrier");
    let credentials = mails
        .iter()
        .find(|m| kind_of(m) == "credentials")
        .expect("credentials");
    let client = node.client();
    let password = credentials_password(credentials);
    assert_eq!(
        node.login(&client, "kunde@example.com", &password)
            .await
            .status(),
        303
    );
    complete_first_login(&node, &client, &password).await;
    let r = node.post_open(&client, &carrier_payload(carrier)).await;
    let page = client
        .get(node.url(&location(&r)))
        .send()
        .await
        .expect("open request");
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .expect("page text")
            .contains(&format!("Body on {label}"))
    );
    node.stop().await;
    guard.drop_database().await.expect("drop test database");
}

#[tokio::test]
async fn whole_node_on_sqlite() {
    end_to_end_on("sqlite").await;
}

#[tokio::test]
async fn whole_node_on_postgres() {
    end_to_end_on("postgres").await;
}

#[tokio::test]
async fn whole_node_on_mysql() {
    end_to_end_on("mysql").await;
}
