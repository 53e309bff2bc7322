//! The helpers that read what a fake holds refuse to answer for a dead fake: an "it is gone"
//! assertion can only pass on a live fake that says 404, never on one that does not answer.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::support::fake_arm::identity_id;
use crate::support::{FakeArm, FakeGoogle, FakeKube};

/// Runs `read` and returns its panic message; fails the test when it returns instead.
fn panic_of<T: std::fmt::Debug>(what: &str, read: impl FnOnce() -> T) -> String {
    match catch_unwind(AssertUnwindSafe(read)) {
        Ok(value) => panic!("{what} answered {value:?} for a dead fake"),
        Err(e) => e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    }
}

#[test]
fn fake_arm_readers_panic_when_the_fake_is_down() {
    let mut arm = FakeArm::start();
    // Alive, the readers say "absent" for what the fake does not hold.
    assert_eq!(arm.identity("id-gone"), None);
    let path = format!("{}?api-version=2023-01-31", identity_id("id-gone"));
    assert_eq!(arm.request("GET", &path, None).0, 404);

    arm.kill();
    let message = panic_of("identity", || arm.identity("id-gone"));
    assert!(message.contains("does not answer"), "{message}");
    let message = panic_of("request", || arm.request("GET", &path, None));
    assert!(message.contains("does not answer"), "{message}");
    let message = panic_of("subjects", || arm.subjects("id-gone"));
    assert!(message.contains("does not answer"), "{message}");
}

#[test]
fn fake_google_readers_panic_when_the_fake_is_down() {
    let mut fake = FakeGoogle::start();
    assert_eq!(fake.object("state", "gone.json"), None);

    fake.kill();
    let message = panic_of("object", || fake.object("state", "gone.json"));
    assert!(message.contains("cannot be reached"), "{message}");
    let message = panic_of("calls", || fake.calls());
    assert!(message.contains("None"), "{message}");
}

#[test]
fn fake_kube_readers_panic_when_the_fake_is_down() {
    let mut kube = FakeKube::start();
    assert_eq!(
        kube.state()["objects"]["serviceaccounts"].get("x/gone"),
        None
    );

    kube.0.kill();
    let message = panic_of("state", || kube.state());
    assert!(message.contains("does not answer"), "{message}");
}
