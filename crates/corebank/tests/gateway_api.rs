//! The gateway as real processes on loopback (registry, one branch screening online
//! payments, `corebank gateway`), driven over HTTP like an app would: every endpoint,
//! and the denials: wrong role, another customer's account, expired token, reused
//! refresh token, missing second factor, lockout, rate limit; streams that resume.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::bank::{Bank, GatewayProcess, base32_decode, eventually};
use support::http::{Api, EventStream};

fn login(api: &Api, username: &str, password: &str) -> Value {
    let response = api.post(
        "/api/v1/auth/login",
        &json!({"username": username, "password": password}),
    );
    assert_eq!(
        response.status,
        200,
        "login {username}: {}",
        response.text()
    );
    response.json()
}

fn signed_in(api: &Api, username: &str, password: &str) -> Api {
    let answer = login(api, username, password);
    assert_eq!(answer["status"], "ok", "{answer}");
    api.with_token(answer["access_token"].as_str().unwrap())
}

fn create_user(admin: &Api, username: &str, role: &str) -> u64 {
    let response = admin.post(
        "/api/v1/users",
        &json!({"username": username, "password": format!("{username}-password-1"), "display_name": username, "role": role}),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()["id"].as_u64().unwrap()
}

fn key(name: &str) -> [(&'static str, String); 1] {
    [("Idempotency-Key", name.to_owned())]
}

fn post_key(api: &Api, path: &str, body: &Value, idempotency: &str) -> support::http::Response {
    let header = key(idempotency);
    let headers: Vec<(&str, &str)> = header.iter().map(|(n, v)| (*n, v.as_str())).collect();
    api.post_with(path, body, &headers)
}

fn totp_now(secret_base32: &str) -> String {
    let secret = base32_decode(secret_base32);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    corebank_identity::totp::code_at(&secret, now)
}

type Socket = tungstenite::WebSocket<std::net::TcpStream>;

/// A WebSocket to `/api/v1/streams/ws` that has sent its subscription.
fn ws_open(addr: std::net::SocketAddr, subscribe: &Value) -> Socket {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (mut socket, response) =
        tungstenite::client(format!("ws://{addr}/api/v1/streams/ws"), stream).unwrap();
    assert_eq!(response.status(), 101);
    socket
        .send(tungstenite::Message::Text(subscribe.to_string().into()))
        .unwrap();
    socket
}

/// The next message that `wanted` accepts (others skipped); fails after 20 s quiet.
fn ws_next(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    loop {
        match socket.read().expect("a message within 20 s") {
            tungstenite::Message::Text(text) => {
                let message: Value = serde_json::from_str(text.as_str()).unwrap();
                if wanted(&message) {
                    return message;
                }
            }
            tungstenite::Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

/// The error message and the close frame (code, reason) of a refused subscription.
fn ws_refusal(socket: &mut Socket) -> (Value, (u16, String)) {
    let error = ws_next(socket, |_| true);
    assert_eq!(error["event"], "error", "{error}");
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Close(Some(frame))) => {
                return (error, (u16::from(frame.code), frame.reason.to_string()));
            }
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

#[test]
fn the_gateway_serves_customers_staff_and_services_and_refuses_what_it_must() {
    let root = tempfile::tempdir().unwrap();
    let bank = Bank::start(root.path());
    // Sign-in attempts per address are limited too (the second test checks that);
    // this one signs in dozens of times from one address.
    let gateway = GatewayProcess::start(
        bank.registry_addr(),
        &root.path().join("gateway"),
        &["--rate-limit-logins", "1000"],
    );
    let api = Api::new(gateway.addr);

    // Health, document, console.
    assert_eq!(api.get("/health").status, 200);
    let document = api.get("/openapi.json").json();
    assert_eq!(
        document["openapi"].as_str().unwrap().chars().next(),
        Some('3')
    );
    assert_eq!(api.get("/console/").status, 200);

    // The bootstrap admin signs in; wrong passwords and unknown users are the same refusal.
    assert_eq!(
        api.post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": "nope-nope-nope"})
        )
        .problem(401),
        "invalid_credentials"
    );
    assert_eq!(
        api.post(
            "/api/v1/auth/login",
            &json!({"username": "ghost", "password": "nope-nope-nope"})
        )
        .problem(401),
        "invalid_credentials"
    );
    let admin = signed_in(&api, "admin", "admin-password-1");
    assert_eq!(admin.get("/api/v1/me").json()["role"], "admin");

    // Staff and customers.
    create_user(&admin, "teller", "teller");
    create_user(&admin, "analyst", "analyst");
    create_user(&admin, "auditor", "auditor");
    let alice_id = create_user(&admin, "alice", "customer");
    create_user(&admin, "bob", "customer");
    assert_eq!(admin.post("/api/v1/users", &json!({"username": "alice", "password": "another-password", "display_name": "A", "role": "customer"})).problem(409), "username_taken");
    assert_eq!(admin.post("/api/v1/users", &json!({"username": "x", "password": "short", "display_name": "X", "role": "customer"})).status, 400);
    let teller = signed_in(&api, "teller", "teller-password-1");
    let analyst = signed_in(&api, "analyst", "analyst-password-1");
    let auditor = signed_in(&api, "auditor", "auditor-password-1");
    // A teller makes customers, not staff.
    assert_eq!(teller.post("/api/v1/users", &json!({"username": "carol", "password": "carol-password-1", "display_name": "Carol", "role": "customer"})).status, 201);
    assert_eq!(teller.post("/api/v1/users", &json!({"username": "mallory", "password": "mallory-password", "display_name": "M", "role": "admin"})).problem(403), "forbidden");
    assert_eq!(
        teller.get("/api/v1/users?role=analyst").problem(403),
        "forbidden"
    );
    assert!(
        teller.get("/api/v1/users").json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["role"] == "customer")
    );
    assert_eq!(
        admin.get(&format!("/api/v1/users/{alice_id}")).json()["username"],
        "alice"
    );

    let alice = signed_in(&api, "alice", "alice-password-1");
    let bob = signed_in(&api, "bob", "bob-password-1");
    let carol = signed_in(&api, "carol", "carol-password-1");
    // Customers cannot manage people.
    assert_eq!(alice.get("/api/v1/users").problem(403), "forbidden");
    assert_eq!(alice.post("/api/v1/users", &json!({"username": "eve", "password": "eve-password-1", "display_name": "E", "role": "customer"})).problem(403), "forbidden");

    // Accounts: customers open their own; a teller for a customer.
    let opened = alice.post("/api/v1/accounts", &json!({"currency": "EUR"}));
    assert_eq!(opened.status, 201, "{}", opened.text());
    let alice_account = opened.json()["number"].as_str().unwrap().to_owned();
    let bob_account = teller
        .post(
            "/api/v1/accounts",
            &json!({"currency": "EUR", "customer_id": bob.get("/api/v1/me").json()["id"]}),
        )
        .json()["number"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        alice
            .post(
                "/api/v1/accounts",
                &json!({"currency": "EUR", "customer_id": 1})
            )
            .problem(403),
        "forbidden"
    );
    assert_eq!(
        alice
            .post("/api/v1/accounts", &json!({"currency": "XXX"}))
            .status,
        400
    );

    // An open whose link step never happened (the gateway died between the branch's
    // OpenAccount and the registry's LinkAccount) heals: the branch tags the account
    // with its customer, and the next account listing links it.
    let carol_id = carol.get("/api/v1/me").json()["id"].as_u64().unwrap();
    let orphan = support::client_ok(
        &bank.branch,
        &[
            "open-account",
            "--customer",
            &carol_id.to_string(),
            "--currency",
            "USD",
        ],
    )["account"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        carol
            .get(&format!("/api/v1/accounts/{orphan}"))
            .problem(404),
        "account_not_found"
    );
    let listed = carol.get("/api/v1/accounts").json();
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["number"] == orphan.as_str()),
        "{listed}"
    );
    assert_eq!(carol.get(&format!("/api/v1/accounts/{orphan}")).status, 200);
    // Another customer's tagged account is never adopted by the wrong user.
    assert!(
        !alice.get("/api/v1/accounts").json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["number"] == orphan.as_str())
    );

    // Deposits are the teller's; replays answer the first outcome.
    let deposit = post_key(
        &teller,
        "/api/v1/deposits",
        &json!({"account": alice_account, "amount": "1000.00"}),
        "dep-1",
    );
    assert_eq!(deposit.status, 201, "{}", deposit.text());
    let again = post_key(
        &teller,
        "/api/v1/deposits",
        &json!({"account": alice_account, "amount": "1000.00"}),
        "dep-1",
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["replayed"], true);
    assert_eq!(
        post_key(
            &alice,
            "/api/v1/deposits",
            &json!({"account": alice_account, "amount": "5.00"}),
            "dep-2"
        )
        .problem(403),
        "forbidden"
    );
    assert_eq!(
        teller
            .post(
                "/api/v1/deposits",
                &json!({"account": alice_account, "amount": "5.00"})
            )
            .problem(400),
        "idempotency_key_required"
    );
    assert_eq!(
        post_key(
            &teller,
            "/api/v1/deposits",
            &json!({"account": alice_account, "amount": "5.001"}),
            "dep-3"
        )
        .problem(400),
        "invalid_amount"
    );
    let balance = alice
        .get(&format!("/api/v1/accounts/{alice_account}"))
        .json();
    assert_eq!(balance["balance"]["available"], "1000.00");
    assert_eq!(balance["owner_id"], alice_id);

    // A live stream of alice's money, opened before she pays.
    let mut stream = EventStream::open(
        gateway.addr,
        "/api/v1/streams/accounts",
        alice.token.as_deref().unwrap(),
        None,
    );
    assert_eq!(stream.status, 200);
    assert!(stream.headers["content-type"].starts_with("text/event-stream"));
    assert!(
        stream
            .until("balance", Duration::from_secs(10), |b| b["account"]
                == alice_account)
            .is_some()
    );

    // Alice pays bob; others' accounts are invisible to her.
    let paid = post_key(
        &alice,
        "/api/v1/transfers",
        &json!({"from_account": alice_account, "to_account": bob_account, "amount": "25.00", "reference": "lunch"}),
        "pay-1",
    );
    assert_eq!(paid.status, 201, "{}", paid.text());
    let receipt = paid.json();
    assert_eq!(receipt["status"], "posted");
    let transfer_id = receipt["transfer_id"].as_str().unwrap().to_owned();
    let live = stream
        .until("transfer", Duration::from_secs(15), |t| {
            t["transfer_id"] == transfer_id.as_str()
        })
        .expect("the payment shows up on the stream");
    let resume_id = live.id.clone().expect("transfer events carry an id");
    assert!(
        stream
            .until("balance", Duration::from_secs(10), |b| b["available"]
                == "975.00")
            .is_some()
    );
    assert_eq!(
        post_key(
            &alice,
            "/api/v1/transfers",
            &json!({"from_account": bob_account, "to_account": alice_account, "amount": "1.00"}),
            "steal"
        )
        .problem(404),
        "account_not_found"
    );
    assert_eq!(
        alice
            .get(&format!("/api/v1/accounts/{bob_account}"))
            .problem(404),
        "account_not_found"
    );
    assert_eq!(
        alice
            .get(&format!("/api/v1/accounts/{bob_account}/transactions"))
            .problem(404),
        "account_not_found"
    );
    assert_eq!(
        alice
            .get(&format!("/api/v1/transfers/{transfer_id}"))
            .json()["amount"],
        "25.00"
    );
    assert_eq!(
        bob.get(&format!("/api/v1/transfers/{transfer_id}")).json()["credit_account"],
        bob_account
    );
    assert_eq!(
        carol
            .get(&format!("/api/v1/transfers/{transfer_id}"))
            .problem(404),
        "transfer_not_found"
    );
    assert_eq!(
        post_key(
            &alice,
            "/api/v1/transfers",
            &json!({"from_account": alice_account, "to_account": bob_account, "amount": "5000.00"}),
            "too-much"
        )
        .problem(422),
        "insufficient_funds"
    );
    assert_eq!(
        post_key(
            &alice,
            "/api/v1/transfers",
            &json!({"from_account": alice_account, "to_account": "XC00NOPE", "amount": "1.00"}),
            "bad-to"
        )
        .problem(400),
        "invalid_account_number"
    );

    // A second payment, then resuming the stream after the first sees only the second.
    let second = post_key(
        &alice,
        "/api/v1/transfers",
        &json!({"from_account": alice_account, "to_account": bob_account, "amount": "5.00"}),
        "pay-2",
    )
    .json();
    drop(stream);
    let mut resumed = EventStream::open(
        gateway.addr,
        "/api/v1/streams/accounts",
        alice.token.as_deref().unwrap(),
        Some(&resume_id),
    );
    let next = resumed
        .until("transfer", Duration::from_secs(15), |_| true)
        .expect("the resumed stream replays what came after");
    let next: Value = serde_json::from_str(&next.data).unwrap();
    assert_eq!(
        next["transfer_id"], second["transfer_id"],
        "nothing repeated, nothing lost"
    );
    drop(resumed);

    // The same stream over a WebSocket: the token in the first message (browsers
    // cannot set headers on one), resuming after the first payment.
    let mut socket = ws_open(
        gateway.addr,
        &json!({"stream": "accounts", "access_token": alice.token.as_deref().unwrap(), "last_event_id": resume_id}),
    );
    assert_eq!(
        ws_next(&mut socket, |m| m["event"] != "balance")["event"],
        "ready"
    );
    let replayed = ws_next(&mut socket, |m| m["event"] == "transfer");
    assert_eq!(replayed["data"]["transfer_id"], second["transfer_id"]);
    assert!(replayed["id"].as_str().is_some_and(|id| !id.is_empty()));
    let third = post_key(
        &alice,
        "/api/v1/transfers",
        &json!({"from_account": alice_account, "to_account": bob_account, "amount": "2.00"}),
        "pay-ws",
    )
    .json();
    let live = ws_next(&mut socket, |m| m["event"] == "transfer");
    assert_eq!(live["data"]["transfer_id"], third["transfer_id"]);
    assert!(
        ws_next(&mut socket, |m| m["event"] == "balance")["data"]["available"]
            .as_str()
            .is_some()
    );
    drop(socket);
    // Refusals arrive as a problem, then a close frame with 4000 + the status.
    let mut forged = ws_open(
        gateway.addr,
        &json!({"stream": "accounts", "access_token": "not-a-token"}),
    );
    let (error, close) = ws_refusal(&mut forged);
    assert_eq!(error["data"]["code"], "token_invalid", "{error}");
    assert_eq!(close, (4401, "token_invalid".to_owned()));
    let mut not_staff = ws_open(
        gateway.addr,
        &json!({"stream": "events", "access_token": alice.token.as_deref().unwrap()}),
    );
    assert_eq!(ws_refusal(&mut not_staff).1.0, 4403);
    let mut unknown = ws_open(
        gateway.addr,
        &json!({"stream": "everything", "access_token": alice.token.as_deref().unwrap()}),
    );
    assert_eq!(
        ws_refusal(&mut unknown).1,
        (4400, "invalid_argument".to_owned())
    );
    // Without the upgrade the address answers a problem, not a hang.
    assert_eq!(
        alice.get("/api/v1/streams/ws").problem(426),
        "websocket_required"
    );

    // Statement paging, newest first.
    let first_page = alice
        .get(&format!(
            "/api/v1/accounts/{alice_account}/transactions?limit=1"
        ))
        .json();
    assert_eq!(first_page["items"][0]["amount"], "2.00");
    let cursor = first_page["next_cursor"].as_str().unwrap();
    let second_page = alice
        .get(&format!(
            "/api/v1/accounts/{alice_account}/transactions?limit=2&cursor={cursor}"
        ))
        .json();
    assert_eq!(second_page["items"][0]["amount"], "5.00");
    assert_eq!(second_page["items"][1]["amount"], "25.00");
    assert_eq!(
        alice.get("/api/v1/accounts").json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        teller
            .get(&format!("/api/v1/accounts?customer_id={alice_id}"))
            .json()["items"][0]["number"],
        alice_account
    );

    // Holds (tellers).
    let hold = post_key(
        &teller,
        "/api/v1/holds",
        &json!({"account": alice_account, "amount": "10.00", "timeout_seconds": 600}),
        "hold-1",
    );
    assert_eq!(hold.status, 201, "{}", hold.text());
    let hold_id = hold.json()["hold_id"].as_str().unwrap().to_owned();
    assert_eq!(
        alice
            .get(&format!("/api/v1/accounts/{alice_account}"))
            .json()["balance"]["available"],
        "958.00"
    );
    let captured = teller.post(
        &format!("/api/v1/holds/{hold_id}/capture"),
        &json!({"account": alice_account, "amount": "4.00"}),
    );
    assert_eq!(captured.json()["status"], "captured", "{}", captured.text());
    assert_eq!(
        post_key(
            &alice,
            "/api/v1/holds",
            &json!({"account": alice_account, "amount": "1.00"}),
            "hold-2"
        )
        .problem(403),
        "forbidden"
    );
    let hold2 = post_key(
        &teller,
        "/api/v1/holds",
        &json!({"account": alice_account, "amount": "3.00"}),
        "hold-3",
    )
    .json();
    let released = teller.post(
        &format!(
            "/api/v1/holds/{}/release",
            hold2["hold_id"].as_str().unwrap()
        ),
        &json!({"account": alice_account}),
    );
    assert_eq!(released.json()["status"], "released");

    // The fraud screen holds a large online payment; the analyst releases it.
    let held = post_key(
        &alice,
        "/api/v1/transfers",
        &json!({"from_account": alice_account, "to_account": bob_account, "amount": "600.00"}),
        "big-1",
    );
    assert_eq!(held.status, 201, "{}", held.text());
    let held = held.json();
    assert_eq!(held["status"], "held_for_review");
    assert!(
        held["risk"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "hold_large_online")
    );
    let held_id = held["transfer_id"].as_str().unwrap().to_owned();
    assert_eq!(alice.get("/api/v1/risk/held").problem(403), "forbidden");
    assert_eq!(auditor.get("/api/v1/risk/held").problem(403), "forbidden");
    let queue = analyst.get("/api/v1/risk/held").json();
    let entry = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["transfer_id"] == held_id.as_str())
        .expect("in the queue")
        .clone();
    assert_eq!(entry["reasons"][0], "hold_large_online");
    assert_eq!(
        admin
            .post(
                &format!("/api/v1/risk/held/{held_id}/review"),
                &json!({"branch": 1, "decision": "release", "comment": "x"})
            )
            .problem(403),
        "forbidden"
    );
    assert_eq!(
        analyst
            .post(
                &format!("/api/v1/risk/held/{held_id}/review"),
                &json!({"branch": 1, "decision": "maybe"})
            )
            .problem(400),
        "invalid_argument"
    );
    let reviewed = analyst.post(
        &format!("/api/v1/risk/held/{held_id}/review"),
        &json!({"branch": 1, "decision": "release", "comment": "called the customer"}),
    );
    assert_eq!(reviewed.status, 200, "{}", reviewed.text());
    assert!(
        !analyst.get("/api/v1/risk/held").json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["transfer_id"] == held_id.as_str())
    );
    assert_eq!(
        alice
            .get(&format!("/api/v1/accounts/{alice_account}"))
            .json()["balance"]["available"],
        "364.00"
    );
    // The held transfer was a reservation; released, it reads as posted; the
    // released hold as voided.
    assert_eq!(
        alice.get(&format!("/api/v1/transfers/{held_id}")).json()["status"],
        "posted"
    );
    let hold2_id = hold2["hold_id"].as_str().unwrap();
    assert_eq!(
        teller.get(&format!("/api/v1/transfers/{hold2_id}")).json()["status"],
        "voided"
    );
    eventually(Duration::from_secs(10), "the alerts", || {
        let alerts = analyst.get("/api/v1/risk/alerts").json();
        alerts["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "held" && a["transfer_id"] == held_id.as_str())
            .then_some(())
    });

    // Freezing: a frozen account cannot pay.
    assert_eq!(
        alice
            .post(
                &format!("/api/v1/accounts/{alice_account}/freeze"),
                &json!({"reason": "x"})
            )
            .problem(403),
        "forbidden"
    );
    let frozen = analyst.post(
        &format!("/api/v1/accounts/{alice_account}/freeze"),
        &json!({"reason": "suspected takeover"}),
    );
    assert_eq!(frozen.json()["frozen"], true, "{}", frozen.text());
    assert!(
        analyst.get("/api/v1/risk/frozen").json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["account"] == alice_account.as_str())
    );
    assert_eq!(
        post_key(
            &alice,
            "/api/v1/transfers",
            &json!({"from_account": alice_account, "to_account": bob_account, "amount": "1.00"}),
            "frozen-1"
        )
        .problem(422),
        "account_frozen"
    );
    assert_eq!(
        analyst
            .post(
                &format!("/api/v1/accounts/{alice_account}/unfreeze"),
                &json!({"reason": "customer verified"})
            )
            .json()["frozen"],
        false
    );
    assert_eq!(
        post_key(
            &alice,
            "/api/v1/transfers",
            &json!({"from_account": alice_account, "to_account": bob_account, "amount": "1.00"}),
            "frozen-2"
        )
        .status,
        201
    );

    // Operations: staff only.
    let overview = admin.get("/api/v1/ops/overview");
    assert_eq!(overview.status, 200, "{}", overview.text());
    assert_eq!(overview.json()["branches"][0]["code"], 1);
    let chart = analyst.get("/api/v1/ops/charts/throughput.svg");
    assert_eq!(chart.header("content-type"), Some("image/svg+xml"));
    assert!(chart.text().starts_with("<svg"));
    assert_eq!(alice.get("/api/v1/ops/overview").problem(403), "forbidden");
    assert_eq!(
        teller.get("/api/v1/ops/charts/latency.svg").problem(403),
        "forbidden"
    );
    assert!(
        admin
            .get("/metrics")
            .text()
            .contains("corebank_gateway_requests_total")
    );
    assert_eq!(alice.get("/metrics").problem(403), "forbidden");
    let events = EventStream::open(
        gateway.addr,
        "/api/v1/streams/events",
        alice.token.as_deref().unwrap(),
        None,
    );
    assert_eq!(events.status, 403);
    // The bank-wide feed, paced for people: one transfer a second here, the rest
    // counted in a `skipped` event.
    let mut feed = EventStream::open(
        gateway.addr,
        "/api/v1/streams/events?max_per_second=1",
        analyst.token.as_deref().unwrap(),
        None,
    );
    assert_eq!(feed.status, 200);
    for i in 0..4 {
        let paid = post_key(
            &alice,
            "/api/v1/transfers",
            &json!({"from_account": alice_account, "to_account": bob_account, "amount": "0.10"}),
            &format!("feed-{i}"),
        );
        assert_eq!(paid.status, 201, "{}", paid.text());
    }
    assert!(
        feed.until("transfer", Duration::from_secs(10), |t| t["amount"]
            == "0.10")
            .is_some()
    );
    std::thread::sleep(Duration::from_millis(1_100));
    let last = post_key(
        &alice,
        "/api/v1/transfers",
        &json!({"from_account": alice_account, "to_account": bob_account, "amount": "0.20"}),
        "feed-last",
    );
    assert_eq!(last.status, 201);
    let skipped = feed
        .until("skipped", Duration::from_secs(10), |s| {
            s["count"].as_u64().unwrap_or(0) >= 3
        })
        .expect("the feed says what it left out");
    assert!(skipped.id.is_some());
    assert!(
        feed.until("transfer", Duration::from_secs(10), |t| t["amount"]
            == "0.20")
            .is_some()
    );
    drop(feed);

    // API keys with scopes.
    let made = admin.post(
        "/api/v1/api-keys",
        &json!({"name": "statements", "scopes": ["accounts:read"]}),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let made = made.json();
    let service = api.with_token(made["key"].as_str().unwrap());
    assert_eq!(
        service
            .get(&format!("/api/v1/accounts/{alice_account}"))
            .status,
        200
    );
    assert_eq!(
        post_key(
            &service,
            "/api/v1/transfers",
            &json!({"from_account": alice_account, "to_account": bob_account, "amount": "1.00"}),
            "svc-1"
        )
        .problem(403),
        "forbidden"
    );
    assert_eq!(
        admin
            .post(
                "/api/v1/api-keys",
                &json!({"name": "x", "scopes": ["users:manage"]})
            )
            .status,
        400
    );
    assert!(
        admin.get("/api/v1/api-keys").json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none())
    );
    assert_eq!(
        admin
            .delete(&format!(
                "/api/v1/api-keys/{}",
                made["id"].as_str().unwrap()
            ))
            .status,
        204
    );
    assert_eq!(
        service
            .get(&format!("/api/v1/accounts/{alice_account}"))
            .problem(401),
        "api_key_invalid"
    );
    assert_eq!(teller.get("/api/v1/api-keys").problem(403), "forbidden");

    // Refresh tokens rotate; a reused one revokes the whole session.
    let session = login(&api, "carol", "carol-password-1");
    let first_refresh = session["refresh_token"].as_str().unwrap().to_owned();
    let rotated = api.post(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": first_refresh}),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let rotated = rotated.json();
    let carol_live = api.with_token(rotated["access_token"].as_str().unwrap());
    assert_eq!(carol_live.get("/api/v1/me").status, 200);
    assert_eq!(
        api.post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": first_refresh})
        )
        .problem(401),
        "refresh_token_reused"
    );
    assert_eq!(
        api.post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": rotated["refresh_token"]})
        )
        .problem(401),
        "session_revoked"
    );
    assert_eq!(carol_live.get("/api/v1/me").problem(401), "session_revoked");
    assert_eq!(
        api.post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": "cbrt_garbage"})
        )
        .problem(401),
        "refresh_token_invalid"
    );

    // Sign-out ends the session at once.
    assert_eq!(carol.post("/api/v1/auth/logout", &json!({})).status, 204);
    assert_eq!(carol.get("/api/v1/me").problem(401), "session_revoked");

    // Second factor: enrol, confirm, then sign-in needs it; codes and recovery codes work once.
    let enrolment = bob.post("/api/v1/me/totp", &json!({})).json();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    assert!(enrolment["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(
        enrolment["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    assert_eq!(
        bob.post("/api/v1/me/totp/confirm", &json!({"code": "000000"}))
            .problem(401),
        "totp_invalid"
    );
    let confirmed = bob.post(
        "/api/v1/me/totp/confirm",
        &json!({"code": totp_now(&secret)}),
    );
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    let recovery: Vec<String> = confirmed.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    let step = login(&api, "bob", "bob-password-1");
    assert_eq!(step["status"], "mfa_required");
    assert!(step.get("access_token").is_none());
    let mfa_token = step["mfa_token"].as_str().unwrap().to_owned();
    // The half-signed-in token opens nothing.
    assert_eq!(
        api.with_token(&mfa_token).get("/api/v1/me").problem(401),
        "token_wrong_type"
    );
    assert_eq!(
        api.post("/api/v1/auth/mfa", &json!({"mfa_token": mfa_token}))
            .problem(400),
        "invalid_argument"
    );
    assert_eq!(
        api.post(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": mfa_token, "code": "123456"})
        )
        .problem(401),
        "totp_invalid"
    );
    // The code used to confirm cannot be used again (same 30-second step).
    let code_used = totp_now(&secret);
    let reused = api.post(
        "/api/v1/auth/mfa",
        &json!({"mfa_token": mfa_token, "code": code_used}),
    );
    assert_eq!(
        reused.status,
        401,
        "a TOTP code works once: {}",
        reused.text()
    );
    let by_recovery = api.post(
        "/api/v1/auth/mfa",
        &json!({"mfa_token": mfa_token, "recovery_code": recovery[0]}),
    );
    assert_eq!(by_recovery.status, 200, "{}", by_recovery.text());
    assert_eq!(by_recovery.json()["user"]["totp_enabled"], true);
    // The mfa token was spent; the recovery code too.
    assert_eq!(
        api.post(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": mfa_token, "recovery_code": recovery[1]})
        )
        .status,
        401
    );
    let step = login(&api, "bob", "bob-password-1");
    assert_eq!(
        api.post(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": step["mfa_token"], "recovery_code": recovery[0]})
        )
        .problem(401),
        "recovery_code_invalid"
    );

    // Lockout after five failed sign-ins; an admin unlocks.
    for _ in 0..4 {
        assert_eq!(
            api.post(
                "/api/v1/auth/login",
                &json!({"username": "carol", "password": "wrong-password"})
            )
            .problem(401),
            "invalid_credentials"
        );
    }
    let locked = api.post(
        "/api/v1/auth/login",
        &json!({"username": "carol", "password": "wrong-password"}),
    );
    assert_eq!(locked.problem(423), "login_locked");
    assert!(
        locked
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert_eq!(
        api.post(
            "/api/v1/auth/login",
            &json!({"username": "carol", "password": "carol-password-1"})
        )
        .problem(423),
        "login_locked"
    );
    let carol_id = admin.get("/api/v1/users?role=customer").json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "carol")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        teller
            .post(&format!("/api/v1/users/{carol_id}/unlock"), &json!({}))
            .problem(403),
        "forbidden"
    );
    assert_eq!(
        admin
            .post(&format!("/api/v1/users/{carol_id}/unlock"), &json!({}))
            .status,
        200
    );
    signed_in(&api, "carol", "carol-password-1");

    // Password change ends every session.
    let dave_id = create_user(&admin, "dave", "customer");
    let dave = signed_in(&api, "dave", "dave-password-1");
    assert_eq!(
        dave.post(
            "/api/v1/me/password",
            &json!({"current_password": "wrong-one-here", "new_password": "dave-password-2"})
        )
        .problem(401),
        "invalid_credentials"
    );
    assert_eq!(
        dave.post(
            "/api/v1/me/password",
            &json!({"current_password": "dave-password-1", "new_password": "dave-password-2"})
        )
        .status,
        204
    );
    assert_eq!(dave.get("/api/v1/me").problem(401), "session_revoked");
    signed_in(&api, "dave", "dave-password-2");
    // Disabled users cannot sign in.
    assert_eq!(
        admin
            .post(&format!("/api/v1/users/{dave_id}/disable"), &json!({}))
            .json()["disabled"],
        true
    );
    assert_eq!(
        api.post(
            "/api/v1/auth/login",
            &json!({"username": "dave", "password": "dave-password-2"})
        )
        .problem(403),
        "user_disabled"
    );
    assert_eq!(
        admin
            .post(&format!("/api/v1/users/{dave_id}/enable"), &json!({}))
            .json()["disabled"],
        false
    );
    assert_eq!(
        admin
            .post(
                &format!("/api/v1/users/{dave_id}/revoke-sessions"),
                &json!({})
            )
            .status,
        204
    );
    assert_eq!(
        admin
            .post(&format!("/api/v1/users/{dave_id}/reset-totp"), &json!({}))
            .problem(422),
        "totp_not_enrolled"
    );
    let bob_id = bob.get("/api/v1/me").json()["id"].as_u64().unwrap();
    assert_eq!(
        admin
            .post(&format!("/api/v1/users/{bob_id}/reset-totp"), &json!({}))
            .status,
        204
    );
    assert_eq!(
        login(&api, "bob", "bob-password-1")["status"],
        "ok",
        "no second factor after the reset"
    );

    // The audit trail saw all of it, and its chain holds.
    let logins = auditor
        .get("/api/v1/audit?action=auth.login&outcome=denied&limit=50")
        .json();
    assert!(logins["items"].as_array().unwrap().len() >= 5);
    let denials = auditor
        .get(&format!("/api/v1/audit?q={alice_account}&outcome=denied"))
        .json();
    assert!(
        !denials["items"].as_array().unwrap().is_empty(),
        "denials on alice's account are audited"
    );
    let page = auditor.get("/api/v1/audit?limit=5").json();
    let older = auditor
        .get(&format!(
            "/api/v1/audit?limit=5&cursor={}",
            page["next_cursor"].as_str().unwrap()
        ))
        .json();
    assert!(older["items"][0]["seq"].as_u64().unwrap() < page["items"][4]["seq"].as_u64().unwrap());
    let verified = auditor.get("/api/v1/audit/verify").json();
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(verified["records"].as_u64().unwrap() > 50);
    assert_eq!(analyst.get("/api/v1/audit").problem(403), "forbidden");
    assert_eq!(alice.get("/api/v1/audit/verify").problem(403), "forbidden");
}

#[test]
fn tokens_expire_limits_bite_and_two_gateways_share_the_users() {
    let root = tempfile::tempdir().unwrap();
    let bank = Bank::start(root.path());
    let first = GatewayProcess::start(bank.registry_addr(), &root.path().join("gw1"), &[]);
    // A second gateway: short-lived tokens, tight limits, its own signing key.
    let second = GatewayProcess::start(
        bank.registry_addr(),
        &root.path().join("gw2"),
        &[
            "--access-token-ttl",
            "1",
            "--rate-limit-client",
            "2",
            "--rate-limit-logins",
            "3",
        ],
    );
    let admin = signed_in(&Api::new(first.addr), "admin", "admin-password-1");
    create_user(&admin, "erin", "customer");
    // Users live in the registry: the other gateway knows erin at once.
    let erin = signed_in(&Api::new(second.addr), "erin", "erin-password-1");
    std::thread::sleep(Duration::from_millis(2_200));
    assert_eq!(erin.get("/api/v1/me").problem(401), "token_expired");
    // Tokens of one gateway are not valid at another with a different key.
    let erin_first = signed_in(&Api::new(first.addr), "erin", "erin-password-1");
    assert_eq!(
        Api::new(second.addr)
            .with_token(erin_first.token.as_deref().unwrap())
            .get("/api/v1/me")
            .problem(401),
        "token_invalid"
    );
    // Per debited account: 10 payments a second, burst 20.
    create_user(&admin, "tina", "teller");
    create_user(&admin, "frank", "customer");
    let tina = signed_in(&Api::new(first.addr), "tina", "tina-password-1");
    let frank = signed_in(&Api::new(first.addr), "frank", "frank-password-1");
    let frank_account = frank
        .post("/api/v1/accounts", &json!({"currency": "EUR"}))
        .json()["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = frank
        .post("/api/v1/accounts", &json!({"currency": "EUR"}))
        .json()["number"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        post_key(
            &tina,
            "/api/v1/deposits",
            &json!({"account": frank_account, "amount": "100.00"}),
            "seed"
        )
        .status,
        201
    );
    let mut account_limited = None;
    for i in 0..60 {
        let response = post_key(
            &frank,
            "/api/v1/transfers",
            &json!({"from_account": frank_account, "to_account": other, "amount": "0.01"}),
            &format!("burst-{i}"),
        );
        if response.status == 429 {
            account_limited = Some(response);
            break;
        }
        assert_eq!(response.status, 201, "{}", response.text());
    }
    let account_limited = account_limited.expect("payments from one account are rate-limited");
    assert_eq!(account_limited.problem(429), "rate_limited");
    assert!(
        account_limited.json()["detail"]
            .as_str()
            .unwrap()
            .contains("account")
    );

    // Sign-in attempts per address: 3 a minute at the second gateway.
    let fresh = signed_in(&Api::new(first.addr), "erin", "erin-password-1");
    let limited = Api::new(second.addr);
    let mut refused = None;
    for _ in 0..10 {
        let response = limited.post(
            "/api/v1/auth/login",
            &json!({"username": "erin", "password": "erin-password-1"}),
        );
        if response.status == 429 {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("sign-in attempts are rate-limited");
    assert_eq!(refused.problem(429), "rate_limited");
    assert!(
        refused
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // Per-client limit (50/s, burst 100 by default): a client firing as fast as it
    // can is told to come back.
    let mut limited_client = None;
    for _ in 0..400 {
        let response = fresh.get("/api/v1/me");
        if response.status == 429 {
            limited_client = Some(response);
            break;
        }
        assert_eq!(response.status, 200);
    }
    let limited_client = limited_client.expect("a client over its limit gets 429");
    assert_eq!(limited_client.problem(429), "rate_limited");
    assert!(limited_client.header("retry-after").is_some());
}

/// `corebank gateway --agent`: the risk agent's cross-branch finding (a mule account:
/// three payers in, most of it out again at once) reaches the analysts' alert feed
/// of a standalone gateway, which reads it from the agent's HTTP API.
#[test]
fn the_agents_mule_rings_reach_the_analysts_feed() {
    let root = tempfile::tempdir().unwrap();
    let bank = Bank::start(root.path());
    let branch = format!("0001={}", bank.branch.grpc);
    let agent = support::agent::start_agent(
        &root.path().join("agent"),
        &["--branch", &branch, "--insecure", "--poll-ms", "100"],
    );
    let agent_url = format!("http://{}", agent.http);
    let gateway = GatewayProcess::start(
        bank.registry_addr(),
        &root.path().join("gateway"),
        &["--agent", &agent_url],
    );
    let admin = signed_in(&Api::new(gateway.addr), "admin", "admin-password-1");
    create_user(&admin, "analyst", "analyst");
    let analyst = signed_in(&Api::new(gateway.addr), "analyst", "analyst-password-1");

    let open = |customer: &str| {
        support::client_ok(
            &bank.branch,
            &["open-account", "--customer", customer, "--currency", "EUR"],
        )["account"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mule = open("mule");
    let onward = open("onward");
    for payer in ["p1", "p2", "p3"] {
        let account = open(payer);
        support::client_ok(&bank.branch, &["deposit", &account, "200.00"]);
        support::client_ok(&bank.branch, &["transfer", &account, &mule, "100.00"]);
    }
    support::client_ok(&bank.branch, &["transfer", &mule, &onward, "280.00"]);

    let ring = eventually(Duration::from_secs(30), "a mule ring in the feed", || {
        analyst.get("/api/v1/risk/alerts").json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|alert| alert["kind"] == "mule_ring")
            .cloned()
    });
    assert!(ring["id"].as_str().unwrap().starts_with("agent-"), "{ring}");
    assert_eq!(ring["account"], mule.as_str(), "{ring}");
    assert!(!ring["detail"].as_str().unwrap().is_empty(), "{ring}");

    // A gateway refuses an agent address it cannot use.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_corebank"))
        .args([
            "gateway",
            "--insecure",
            "--agent",
            "127.0.0.1:7070",
            "--registry",
        ])
        .arg(bank.registry_addr().to_string())
        .arg("--data-dir")
        .arg(root.path().join("gw-bad"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("http://host:port"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
