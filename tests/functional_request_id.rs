//! `X-OpenStack-Request-ID` across services: an incoming `req-<uuid>` is
//! kept as the global request id (both ids on the request's log line),
//! anything else is ignored, and aetos' own request id goes to Keystone
//! (the real one, seen through a recording TCP relay) and to the backend.
#![cfg(feature = "functional")]

mod common;

use std::time::Duration;

use common::relay::Relay;
use common::{client, free_port, fresh_token, keystone_section, stack, Aetos, Recorder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_goes_to_keystone_and_the_backend_and_a_valid_global_one_is_logged() {
    let to_keystone = Relay::start(&stack().keystone_url(), |_| Duration::ZERO).await;
    let relay = to_keystone.port;
    let backend = Recorder::start();
    let port = free_port();
    let ks = stack().keystone_url();
    let conf = format!(
        "[DEFAULT]\nauth_mode = keystone\ndebug = true\n[api]\nhost = 127.0.0.1\nport = {port}\n\
         workers = 1\n{}\n[prometheus]\nhost = 127.0.0.1\nport = {}\n",
        keystone_section().replace(
            &format!("auth_url = {ks}"),
            &format!("auth_url = http://127.0.0.1:{relay}/v3")
        ),
        backend.port
    );
    let aetos = Aetos::start_with_config(port, &conf, None);
    // A token nobody validated yet (no cache, memcached included, has it).
    let token = fresh_token("demo-reader").await;
    let global = "req-0f4c8a1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b";
    let r = client()
        .get(format!("{}/prometheus/api/v1/query?query=up", aetos.url))
        .header("X-Auth-Token", &token)
        .header("X-OpenStack-Request-ID", global)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let local = r.headers()["x-openstack-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(local.starts_with("req-") && local != global, "{local}");
    // The backend got the local id.
    let seen = backend.take();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].header("x-openstack-request-id"),
        Some(local.as_str())
    );
    // So did Keystone, on the validation of the caller's token.
    let wire = to_keystone.connections().concat().to_ascii_lowercase();
    let validation = wire
        .split("\r\n\r\n")
        .find(|head| {
            head.contains("get /v3/auth/tokens") && head.contains(&token.to_ascii_lowercase())
        })
        .unwrap_or_else(|| panic!("no validation of the token went to Keystone:\n{wire}"));
    assert!(
        validation.contains(&format!("x-openstack-request-id: {local}")),
        "{validation}"
    );
    // Both ids on the access-log line.
    let logs = aetos.logs();
    let line = logs
        .lines()
        .find(|l| l.contains(&local) && l.contains(" status="))
        .unwrap_or_else(|| panic!("no access line for {local}:\n{logs}"));
    // oslo.log's default context format: `[<global> <local> <identity>]`.
    assert!(
        line.contains(&format!(" [{global} {local} - - - - - -] request ")),
        "{line}"
    );

    // Not req-<uuid>: ignored (debug line), a fresh id all the same.
    let bogus = "req-not-a-uuid\"injected=1";
    let r = client()
        .get(format!("{}/prometheus/api/v1/query?query=up", aetos.url))
        .header("X-Auth-Token", &token)
        .header("X-OpenStack-Request-ID", bogus)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let local = r.headers()["x-openstack-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let seen = backend.take();
    assert_eq!(
        seen[0].header("x-openstack-request-id"),
        Some(local.as_str())
    );
    let logs = aetos.logs();
    let ignored = logs
        .lines()
        .find(|l| l.contains(&local) && l.contains("X-OpenStack-Request-ID ignored"));
    assert!(ignored.is_some(), "{logs}");
    let line = logs
        .lines()
        .find(|l| l.contains(&local) && l.contains(" status="))
        .unwrap();
    assert!(
        line.contains(&format!(" [None {local} - - - - - -] ")),
        "{line}"
    );
    assert!(
        !logs.contains("req-not-a-uuid\"injected"),
        "the bogus id is only quoted escaped"
    );
}
