//! The fake Kubernetes API server (`tests/support/fake_kube.py`) against kube-rs's own
//! watcher and typed API, so that `idplan watch` is tested against a server that behaves as a
//! real one where a watcher depends on it: resource versions, a watch that resumes from a
//! version, bookmarks, `timeoutSeconds`, 410 and a fresh list (after a compacted history, after
//! a restart that kept the objects), paged lists as one snapshot, Leases with optimistic
//! concurrency.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectMeta,
    PostParams, ResourceExt,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::FakeKube;
use crate::support::fake_kube::{CONTROL_PLANES, KUBE_TOKEN};

const LIST: &str = "GET /apis/spaces.upbound.io/v1beta1/controlplanes";
const WATCH: &str = "GET /apis/spaces.upbound.io/v1beta1/controlplanes?watch";
/// How long a test waits for the watcher to report something.
const PATIENCE: Duration = Duration::from_secs(30);

async fn client(kube: &FakeKube) -> kube::Client {
    // Two rustls providers are linked in (as in idplan's binary): choose one, as idplan does.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&kube.kubeconfig("fake")).expect("the kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a client config");
    kube::Client::try_from(config).expect("a client")
}

fn control_planes(client: kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("spaces.upbound.io", "v1beta1", "ControlPlane");
    Api::all_with(
        client,
        &ApiResource::from_gvk_with_plural(&gvk, "controlplanes"),
    )
}

/// A control plane's resourceVersion and ID, as a store compares them.
type Entry = (String, Option<String>);

fn entry_of(cp: &Value) -> Entry {
    (
        cp["metadata"]["resourceVersion"]
            .as_str()
            .expect("a resourceVersion")
            .to_string(),
        cp["status"]["controlPlaneID"].as_str().map(str::to_string),
    )
}

fn rv(cp: &Value) -> u64 {
    entry_of(cp).0.parse().expect("a numeric resourceVersion")
}

/// The control planes the fake holds, as [`Seen::store`] holds them.
fn server_view(kube: &FakeKube) -> BTreeMap<String, Entry> {
    kube.objects("controlplanes")
        .iter()
        .map(|(k, cp)| (k.clone(), entry_of(cp)))
        .collect()
}

/// The version a client holds at the end of watch `w` (an entry of `FakeKube::watches`): the
/// last one the stream sent, else the one it started from.
fn held_at(w: &Value) -> &Value {
    match &w["lastResourceVersion"] {
        Value::Null => &w["resourceVersion"],
        sent => sent,
    }
}

/// A kube-rs watcher of every control plane (with its default backoff) running in a task of
/// its own, what it reported, and the store it makes of it, as a reflector does.
struct Seen {
    rx: mpsc::UnboundedReceiver<Result<watcher::Event<DynamicObject>, watcher::Error>>,
    /// One line per report: "init", "init-apply ns/name rv id", "init-done",
    /// "apply ns/name rv id", "delete ns/name rv id", "error ..." (id "-" when none).
    log: Vec<String>,
    store: BTreeMap<String, Entry>,
    listing: BTreeMap<String, Entry>,
    synced: bool,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Seen {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Seen {
    async fn start(kube: &FakeKube, config: watcher::Config) -> Seen {
        let api = control_planes(client(kube).await);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, config).default_backoff().boxed();
            while let Some(report) = stream.next().await {
                if tx.send(report).is_err() {
                    break;
                }
            }
        });
        Seen {
            rx,
            log: Vec::new(),
            store: BTreeMap::new(),
            listing: BTreeMap::new(),
            synced: false,
            task,
        }
    }

    /// Takes the watcher's reports until `done` holds; panics with them after [`PATIENCE`].
    async fn until(&mut self, what: &str, done: impl Fn(&Seen) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(report)) => self.record(report),
                Ok(None) => panic!(
                    "the watcher stopped before {what}:\n{}",
                    self.log.join("\n")
                ),
                Err(_) => panic!(
                    "waited {PATIENCE:?} for {what}; the watcher reported:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    fn record(&mut self, report: Result<watcher::Event<DynamicObject>, watcher::Error>) {
        let line = |what: &str, cp: &DynamicObject| {
            let (key, (rv, id)) = Self::entry(cp);
            format!("{what} {key} {rv} {}", id.as_deref().unwrap_or("-"))
        };
        match report {
            Ok(watcher::Event::Init) => {
                self.log.push("init".into());
                self.listing.clear();
            }
            Ok(watcher::Event::InitApply(cp)) => {
                self.log.push(line("init-apply", &cp));
                let (key, entry) = Self::entry(&cp);
                self.listing.insert(key, entry);
            }
            Ok(watcher::Event::InitDone) => {
                self.log.push("init-done".into());
                self.store = std::mem::take(&mut self.listing);
                self.synced = true;
            }
            Ok(watcher::Event::Apply(cp)) => {
                self.log.push(line("apply", &cp));
                let (key, entry) = Self::entry(&cp);
                self.store.insert(key, entry);
            }
            Ok(watcher::Event::Delete(cp)) => {
                self.log.push(line("delete", &cp));
                self.store.remove(&Self::entry(&cp).0);
            }
            Err(watcher::Error::WatchError(status)) => self.log.push(format!(
                "error {} {}: {}",
                status.code, status.reason, status.message
            )),
            Err(e) => self.log.push(format!("error {e}")),
        }
    }

    fn entry(cp: &DynamicObject) -> (String, Entry) {
        let key = format!("{}/{}", cp.namespace().unwrap_or_default(), cp.name_any());
        let id = cp.data["status"]["controlPlaneID"]
            .as_str()
            .map(str::to_string);
        (key, (cp.resource_version().unwrap_or_default(), id))
    }

    /// The reports but the errors of failed connections (a restart's), in order.
    fn events(&self) -> Vec<&str> {
        self.log
            .iter()
            .map(String::as_str)
            .filter(|l| !l.starts_with("error failed to start watching"))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_lists_then_follows_every_change_and_resumes_from_its_bookmarks() {
    let kube = FakeKube::start_with(&["--bookmark-interval", "0.2"]);
    kube.put(
        "controlplanes",
        json!({"metadata": {"name": "alpha", "namespace": "team"}, "spec": {},
               "status": {"controlPlaneID": "aaaa"}}),
    );
    let listed_at = kube.version();
    let mut seen = Seen::start(&kube, watcher::Config::default().timeout(2)).await;
    seen.until("the first list", |s| s.synced).await;

    let beta = kube.create_control_plane("team", "beta", None);
    let beta_id = kube.set_control_plane_id("team", "beta", Some("bbbb"));
    let alpha = kube.update_control_plane("team", "alpha", |cp| {
        cp["spec"]["mode"] = json!("dedicated");
        cp["status"]["controlPlaneID"] = json!("ignored: status is a subresource");
    });
    kube.delete_control_plane("team", "beta");
    let deleted_at = kube.version();
    seen.until("beta's deletion", |s| {
        s.log.last().is_some_and(|l| l.starts_with("delete "))
    })
    .await;

    assert_eq!(
        seen.events(),
        [
            "init".to_string(),
            format!("init-apply team/alpha {listed_at} aaaa"),
            "init-done".to_string(),
            format!("apply team/beta {} -", rv(&beta)),
            format!("apply team/beta {} bbbb", rv(&beta_id)),
            format!("apply team/alpha {} aaaa", rv(&alpha)),
            format!("delete team/beta {deleted_at} bbbb"),
        ]
    );
    // A status written through the status subresource does not move the generation; a spec
    // change does; the main resource's PUT keeps the status it had.
    assert_eq!(beta_id["metadata"]["generation"], 1);
    assert_eq!(alpha["metadata"]["generation"], 2);
    assert_eq!(alpha["status"]["controlPlaneID"], "aaaa");
    assert_eq!(seen.store, server_view(&kube));

    // Each watch ends after its timeoutSeconds; the next one starts from the last version the
    // previous one sent (a bookmark, 2 s before the end), and the watcher never lists again.
    kube.wait("watches=3");
    let watches = kube.watches();
    assert_eq!(watches[0]["resourceVersion"], listed_at.to_string());
    for w in &watches {
        assert_eq!(w["query"]["timeoutSeconds"], "2", "{w}");
        assert_eq!(w["query"]["allowWatchBookmarks"], "true", "{w}");
    }
    for pair in watches.windows(2) {
        assert_eq!(pair[0]["end"], "timeout", "{pair:?}");
        assert!(pair[0]["bookmarks"].as_u64().unwrap() >= 1, "{pair:?}");
        assert_eq!(&pair[1]["resourceVersion"], held_at(&pair[0]), "{pair:?}");
    }

    // A stream the server closes early: the watcher watches again from where it was.
    let asked = kube.requests().iter().filter(|r| *r == WATCH).count();
    kube.close_watches();
    kube.wait_requests(WATCH, asked + 1);
    let watches = kube.watches();
    let (closed, next) = (&watches[asked - 1], &watches[asked]);
    assert_eq!(closed["end"], "closed", "{watches:?}");
    assert_eq!(&next["resourceVersion"], held_at(closed));
    assert_eq!(kube.requests().iter().filter(|r| *r == LIST).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_compaction_the_watcher_lists_again_and_misses_nothing() {
    let kube = FakeKube::start();
    kube.create_control_plane("team", "alpha", Some("aaaa"));
    kube.create_control_plane("team", "beta", Some("bbbb"));
    let mut seen = Seen::start(&kube, watcher::Config::default()).await;
    seen.until("the first list", |s| s.synced && s.store.len() == 2)
        .await;
    kube.wait("open=1");

    // The watcher is cut off; what changes meanwhile leaves the history before it is back.
    kube.hold_watches();
    kube.wait("held=1&open=0");
    kube.create_control_plane("team", "gamma", None);
    kube.set_control_plane_id("team", "alpha", Some("a2"));
    kube.delete_control_plane("team", "beta");
    kube.compact();
    let expected = server_view(&kube);
    kube.release_watches();
    seen.until("the second list", |s| s.synced && s.store == expected)
        .await;

    let version = kube.version();
    let gone = seen
        .log
        .iter()
        .find(|l| l.starts_with("error 410"))
        .unwrap_or_else(|| panic!("no 410:\n{}", seen.log.join("\n")));
    assert!(
        gone.starts_with("error 410 Expired: too old resource version: ")
            && gone.ends_with(&format!(" ({version})")),
        "{gone}"
    );
    assert_eq!(seen.log.iter().filter(|l| *l == "init").count(), 2);
    let watches = kube.watches();
    let held = &watches[1];
    assert_eq!(held["end"], "expired", "{watches:?}");
    assert_eq!(&held["resourceVersion"], held_at(&watches[0]));
    assert_eq!(kube.requests().iter().filter(|r| *r == LIST).count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_objects_are_kept_and_the_watcher_lists_again_and_misses_nothing() {
    let mut kube = FakeKube::start();
    let alpha = kube.create_control_plane("team", "alpha", Some("aaaa"));
    kube.create_control_plane("team", "beta", Some("bbbb"));
    let mut seen = Seen::start(&kube, watcher::Config::default()).await;
    seen.until("the first list", |s| s.synced && s.store.len() == 2)
        .await;
    kube.wait("open=1");
    let before = kube.version();
    let objects = kube.objects("controlplanes");

    kube.restart();
    assert_eq!(kube.objects("controlplanes"), objects, "objects kept");
    assert_eq!(kube.version(), before + 1, "the counter goes on");
    let delta = kube.create_control_plane("team", "delta", Some("dddd"));
    assert!(rv(&delta) > before + 1);
    kube.delete_control_plane("team", "beta");
    let expected = server_view(&kube);
    seen.until("the list after the restart", |s| {
        s.synced && s.store == expected
    })
    .await;

    assert_eq!(
        kube.control_plane("team", "alpha")["metadata"]["uid"],
        alpha["metadata"]["uid"]
    );
    assert_eq!(seen.log.iter().filter(|l| *l == "init").count(), 2);
    assert!(
        seen.log.iter().any(|l| l
            == &format!(
                "error 410 Expired: too old resource version: {before} ({})",
                before + 1
            )),
        "{}",
        seen.log.join("\n")
    );
    // The restarted server's first watch request came from the version the watcher had.
    let watches = kube.watches();
    assert_eq!(watches[0]["resourceVersion"], before.to_string());
    assert_eq!(watches[0]["end"], "expired");
    assert!(kube.requests().iter().any(|r| r == LIST));

    // A crash (SIGKILL: the streams break off mid-response) loses nothing written either.
    let before = kube.version();
    let objects = kube.objects("controlplanes");
    kube.0.kill();
    kube.restart();
    assert_eq!(kube.objects("controlplanes"), objects, "objects kept");
    assert_eq!(kube.version(), before + 1, "the counter goes on");
    kube.create_control_plane("team", "epsilon", None);
    let expected = server_view(&kube);
    seen.until("the list after the crash", |s| {
        s.synced && s.store == expected
    })
    .await;
    assert_eq!(seen.log.iter().filter(|l| *l == "init").count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_watcher_gets_its_initial_events_from_the_watch() {
    let kube = FakeKube::start();
    let alpha = kube.create_control_plane("team", "alpha", Some("aaaa"));
    let mut seen = Seen::start(&kube, watcher::Config::default().streaming_lists()).await;
    seen.until("the initial events", |s| s.synced).await;
    let beta = kube.create_control_plane("team", "beta", None);
    seen.until("beta", |s| s.store.contains_key("team/beta"))
        .await;
    // kube-rs reports no Init for a streaming list: its initial events come from the watch.
    assert_eq!(
        seen.events(),
        [
            format!("init-apply team/alpha {} aaaa", rv(&alpha)),
            "init-done".to_string(),
            format!("apply team/beta {} -", rv(&beta)),
        ]
    );
    let watches = kube.watches();
    assert_eq!(watches[0]["query"]["sendInitialEvents"], "true");
    assert_eq!(watches[0]["query"]["resourceVersionMatch"], "NotOlderThan");
    assert!(!kube.requests().iter().any(|r| r == LIST), "no list");
}

#[test]
fn a_watch_is_a_chunked_stream_replayed_from_a_version() {
    let kube = FakeKube::start();
    kube.set_bookmark_interval(0.3);
    kube.create_control_plane("team", "alpha", Some("aaaa"));
    let after_alpha = kube.version();
    let beta = kube.create_control_plane("other", "beta", None);
    kube.delete_control_plane("other", "beta");
    let deleted_at = kube.version();
    let summary = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let o = &e["object"];
                format!(
                    "{} {} {}",
                    e["type"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap_or("-"),
                    o["metadata"]["resourceVersion"].as_str().unwrap_or("-"),
                )
            })
            .collect()
    };

    // From "0": one ADDED per object as it is now, then bookmarks (kind, apiVersion and the
    // version only) until the stream ends by itself after timeoutSeconds.
    let events = kube.watch_events(&format!(
        "{CONTROL_PLANES}/controlplanes?watch=1&resourceVersion=0&allowWatchBookmarks=true&timeoutSeconds=1"
    ));
    let alpha = kube.control_plane("team", "alpha");
    assert_eq!(
        summary(&events[..1]),
        [format!("ADDED alpha {}", rv(&alpha))]
    );
    assert_eq!(events[0]["object"], alpha);
    assert!(events.len() >= 2, "{events:?}");
    for b in &events[1..] {
        assert_eq!(
            b,
            &json!({"type": "BOOKMARK", "object": {"kind": "ControlPlane",
                    "apiVersion": "spaces.upbound.io/v1beta1",
                    "metadata": {"resourceVersion": deleted_at.to_string(), "creationTimestamp": null}}})
        );
    }

    // From a version, in one namespace: what happened there after it; the deletion carries
    // the last object at the deletion's version.
    let events = kube.watch_events(&format!(
        "{CONTROL_PLANES}/namespaces/other/controlplanes?watch=true&resourceVersion={after_alpha}&timeoutSeconds=1"
    ));
    assert_eq!(
        summary(&events),
        [
            format!("ADDED beta {}", rv(&beta)),
            format!("DELETED beta {deleted_at}")
        ]
    );
    assert_eq!(
        events[1]["object"]["metadata"]["uid"],
        beta["metadata"]["uid"]
    );

    // An object that stops matching a watch's label selector is DELETED to that watch.
    let labeled = kube.update_control_plane("team", "alpha", |cp| {
        cp["metadata"]["labels"] = json!({"tier": "gold"});
    });
    let unlabeled = kube.update_control_plane("team", "alpha", |cp| {
        cp["metadata"]["labels"] = json!({"tier": "silver"});
    });
    let events = kube.watch_events(&format!(
        "{CONTROL_PLANES}/controlplanes?watch=true&resourceVersion={deleted_at}&labelSelector=tier%3Dgold&timeoutSeconds=1"
    ));
    assert_eq!(
        summary(&events),
        [
            format!("ADDED alpha {}", rv(&labeled)),
            format!("DELETED alpha {}", rv(&unlabeled))
        ]
    );

    // Writes through the test-only endpoints are events too; a field selector on a watch.
    let from = kube.version();
    let seeded =
        |spec: Value| json!({"metadata": {"name": "seeded", "namespace": "team"}, "spec": spec});
    kube.put("controlplanes", seeded(json!({})));
    kube.put("controlplanes", seeded(json!({"x": 1})));
    kube.delete("controlplanes", "team", "seeded");
    let events = kube.watch_events(&format!(
        "{CONTROL_PLANES}/controlplanes?watch=true&resourceVersion={from}&fieldSelector=metadata.name%3Dseeded&timeoutSeconds=1"
    ));
    assert_eq!(
        summary(&events),
        [
            format!("ADDED seeded {}", from + 1),
            format!("MODIFIED seeded {}", from + 2),
            format!("DELETED seeded {}", from + 3)
        ]
    );

    // Once the history is compacted, a watch from an older version is answered 200 and one
    // ERROR event, the watch cache's 410.
    kube.compact();
    let version = kube.version();
    let events = kube.watch_events(&format!(
        "{CONTROL_PLANES}/controlplanes?watch=true&resourceVersion={after_alpha}&timeoutSeconds=1"
    ));
    assert_eq!(
        events,
        [
            json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "reason": "Expired", "code": 410,
                "message": format!("too old resource version: {after_alpha} ({version})")}})
        ]
    );
    // From the current version: nothing but the end.
    let events = kube.watch_events(&format!(
        "{CONTROL_PLANES}/controlplanes?watch=true&resourceVersion={version}&timeoutSeconds=1"
    ));
    assert_eq!(events, Vec::<Value>::new());

    let watches = kube.watches();
    let ends: Vec<&str> = watches.iter().map(|w| w["end"].as_str().unwrap()).collect();
    assert_eq!(
        ends,
        [
            "timeout", "timeout", "timeout", "timeout", "expired", "timeout"
        ]
    );
    assert_eq!(
        watches[1]["query"]["resourceVersion"],
        after_alpha.to_string()
    );
}

#[test]
fn a_paged_list_is_one_snapshot_until_its_version_is_compacted() {
    let kube = FakeKube::start();
    for i in 1..=5 {
        kube.put(
            "controlplanes",
            json!({"metadata": {"name": format!("cp-{i}"), "namespace": "a"}, "spec": {}}),
        );
    }
    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let list = format!("{CONTROL_PLANES}/controlplanes");
    let (status, first) = kube.api("GET", &format!("{list}?limit=2"), None);
    assert_eq!(status, 200, "{first}");
    assert_eq!(names(&first), ["cp-1", "cp-2"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let listed_at = first["metadata"]["resourceVersion"].clone();
    assert_eq!(listed_at, kube.version().to_string());
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();

    // Changes after the first page do not show in the next ones.
    kube.delete("controlplanes", "a", "cp-3");
    kube.put(
        "controlplanes",
        json!({"metadata": {"name": "cp-6", "namespace": "a"}, "spec": {}}),
    );
    let (_, second) = kube.api("GET", &format!("{list}?limit=2&continue={token}"), None);
    assert_eq!(names(&second), ["cp-3", "cp-4"]);
    assert_eq!(second["metadata"]["resourceVersion"], listed_at);
    let next = second["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, third) = kube.api("GET", &format!("{list}?limit=2&continue={next}"), None);
    assert_eq!(names(&third), ["cp-5"]);
    assert!(third["metadata"].get("continue").is_none(), "{third}");

    // A fresh list has them; a continued one after compaction is 410 Expired.
    let (_, now) = kube.api("GET", &list, None);
    assert_eq!(names(&now), ["cp-1", "cp-2", "cp-4", "cp-5", "cp-6"]);
    kube.compact();
    let (status, expired) = kube.api("GET", &format!("{list}?limit=2&continue={next}"), None);
    assert_eq!(
        (status, &expired["reason"]),
        (410, &json!("Expired")),
        "{expired}"
    );
}

/// Deletion as the registry makes it: preconditions, finalizers, the events a watch sees.
#[test]
fn a_control_plane_with_finalizers_is_marked_then_goes_with_its_last_finalizer() {
    let kube = FakeKube::start();
    kube.put(
        "controlplanes",
        json!({"metadata": {"name": "alpha", "namespace": "team",
                            "finalizers": ["spaces.upbound.io/controlplane"]}, "spec": {}}),
    );
    let from = kube.version();
    let path = format!("{CONTROL_PLANES}/namespaces/team/controlplanes/alpha");

    // A DELETE or a PATCH from a stale version is refused.
    let stale = json!({"preconditions": {"resourceVersion": (from - 1).to_string()}});
    let (status, out) = kube.api("DELETE", &path, Some(&stale));
    assert_eq!(status, 409, "{out}");
    assert_eq!(
        out["message"],
        format!(
            "Operation cannot be fulfilled on controlplanes.spaces.upbound.io \"alpha\": \
             Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in \
             object meta: {from}",
            from - 1
        )
    );
    let patch = json!({"metadata": {"resourceVersion": "1", "labels": {"a": "b"}}});
    let (status, out) = kube.0.request_with_token(
        "PATCH",
        &path,
        Some(&patch),
        KUBE_TOKEN,
        "application/merge-patch+json",
    );
    assert_eq!((status, &out["reason"]), (409, &json!("Conflict")), "{out}");

    // With a finalizer, DELETE only marks it; it goes when the finalizer is removed.
    let (status, marked) = kube.api("DELETE", &path, None);
    assert_eq!(status, 200, "{marked}");
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked}"
    );
    assert_eq!(kube.objects("controlplanes").len(), 1);
    kube.update_control_plane("team", "alpha", |cp| {
        cp["metadata"]["finalizers"] = json!([]);
    });
    assert!(kube.objects("controlplanes").is_empty());
    let events = kube.watch_events(&format!(
        "{CONTROL_PLANES}/controlplanes?watch=true&resourceVersion={from}&timeoutSeconds=1"
    ));
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["MODIFIED", "DELETED"]);
    assert_eq!(
        events[1]["object"]["metadata"]["resourceVersion"],
        kube.version().to_string()
    );
}

fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_created_once_and_updated_only_from_their_current_version() {
    let kube = FakeKube::start();
    kube.ensure_namespace("idplan-system");
    let client = client(&kube).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "idplan-system");
    let pp = PostParams::default();
    let lease = |holder: &str| Lease {
        metadata: ObjectMeta {
            name: Some("idplan-watch".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };

    let created = leases.create(&pp, &lease("pod-a")).await.expect("create");
    let first_version: u64 = created.resource_version().unwrap().parse().unwrap();
    let err = api_error(leases.create(&pp, &lease("pod-b")).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(
        err.message,
        r#"leases.coordination.k8s.io "idplan-watch" already exists"#
    );

    // The holder renews from the version it read; the other candidate, from the same (now
    // stale) version, is refused with the real server's words.
    let mut renew = created.clone();
    renew.spec.as_mut().unwrap().lease_transitions = Some(1);
    let renewed = leases
        .replace("idplan-watch", &pp, &renew)
        .await
        .expect("an update from the current version");
    let renewed_version: u64 = renewed.resource_version().unwrap().parse().unwrap();
    assert!(renewed_version > first_version);
    let mut stale = created.clone();
    stale.spec.as_mut().unwrap().holder_identity = Some("pod-b".into());
    let err = api_error(leases.replace("idplan-watch", &pp, &stale).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"idplan-watch\": the object \
         has been modified; please apply your changes to the latest version and try again"
    );
    let held = kube.lease("idplan-system", "idplan-watch").unwrap();
    assert_eq!(held["spec"]["holderIdentity"], "pod-a");
    assert_eq!(held["spec"]["leaseTransitions"], 1);
    assert_eq!(
        held["metadata"]["resourceVersion"],
        renewed_version.to_string()
    );

    // An update must name a version.
    let mut unversioned = renewed.clone();
    unversioned.metadata.resource_version = None;
    let err = api_error(leases.replace("idplan-watch", &pp, &unversioned).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        "leases.coordination.k8s.io \"idplan-watch\" is invalid: metadata.resourceVersion: \
         Invalid value: 0x0: must be specified for an update"
    );

    let got = leases.get("idplan-watch").await.expect("get");
    assert_eq!(got.resource_version(), renewed.resource_version());
    let list = leases.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
    assert_eq!(
        list.metadata.resource_version,
        Some(kube.version().to_string())
    );
    let everywhere: Api<Lease> = Api::all(client.clone());
    assert_eq!(
        everywhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // DELETE answers a Status; a PUT of a missing lease creates it, as the real server
    // allows for leases; a duration must be positive; a namespace must exist.
    let deleted = leases
        .delete("idplan-watch", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(deleted.is_right(), "{deleted:?}");
    assert!(kube.lease("idplan-system", "idplan-watch").is_none());
    let recreated = leases
        .replace("idplan-watch", &pp, &lease("pod-b"))
        .await
        .expect("a PUT that creates");
    assert_eq!(
        recreated.spec.unwrap().holder_identity.as_deref(),
        Some("pod-b")
    );
    let mut forever = lease("pod-c");
    forever.metadata.name = Some("other".into());
    forever.spec.as_mut().unwrap().lease_duration_seconds = Some(0);
    let err = api_error(leases.create(&pp, &forever).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"), "{err:?}");
    let nowhere: Api<Lease> = Api::namespaced(client, "missing");
    let err = api_error(nowhere.create(&pp, &lease("pod-a")).await);
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, r#"namespaces "missing" not found"#)
    );
    let requests = kube.requests();
    for request in [
        "POST /apis/coordination.k8s.io/v1/namespaces/idplan-system/leases",
        "PUT /apis/coordination.k8s.io/v1/namespaces/idplan-system/leases/idplan-watch",
        "GET /apis/coordination.k8s.io/v1/namespaces/idplan-system/leases/idplan-watch",
        "DELETE /apis/coordination.k8s.io/v1/namespaces/idplan-system/leases/idplan-watch",
    ] {
        assert!(
            requests.iter().any(|r| r == request),
            "{request}: {requests:?}"
        );
    }

    // Another candidate takes the lease over (reading, then writing from what it read,
    // again on a conflict); the test waits on the fake's writes, not on time.
    let candidate = leases.clone();
    let takeover = tokio::spawn(async move {
        loop {
            let mut current = candidate.get("idplan-watch").await.expect("get");
            current.spec.as_mut().unwrap().holder_identity = Some("pod-c".into());
            match candidate
                .replace("idplan-watch", &PostParams::default(), &current)
                .await
            {
                Ok(_) => return,
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => panic!("takeover: {e}"),
            }
        }
    });
    kube.wait_until("pod-c holds the lease", |kube| {
        kube.lease("idplan-system", "idplan-watch").unwrap()["spec"]["holderIdentity"] == "pod-c"
    });
    takeover.await.expect("the takeover task");
}
