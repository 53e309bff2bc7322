//! One Kubernetes watch per space on the `ControlPlane` objects of its cluster, through
//! kube-rs's watcher: a list, then a watch from the list's `resourceVersion` with bookmarks; a
//! fresh list when the server answers 410 Gone; the watch resumed when its stream ends, and
//! retried with backoff when the server cannot be reached.

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;

use crate::cluster::{self, FoundControlPlane};

/// What a space's watch saw.
#[derive(Debug)]
pub enum Seen {
    /// A list, at start and after the watch lost its place: every control plane of the space.
    Listed {
        space: String,
        planes: Vec<FoundControlPlane>,
    },
    /// A control plane created or changed.
    Applied {
        space: String,
        plane: FoundControlPlane,
    },
    /// A control plane deleted.
    Deleted {
        space: String,
        plane: FoundControlPlane,
    },
    /// The watch failed; it is retried with backoff.
    Failed { space: String, message: String },
}

/// Watches the control planes of `space`'s cluster until the receiver is gone.
pub async fn watch(space: String, client: Client, seen: mpsc::Sender<Seen>) {
    let api: Api<DynamicObject> = Api::all_with(client, &cluster::control_plane_resource());
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    // The objects of a list, until it is complete: its end replaces what the loop knows.
    let mut listing = Vec::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(Event::Init) => {
                listing.clear();
                continue;
            }
            Ok(Event::InitApply(object)) => {
                listing.push(FoundControlPlane::of(&object));
                continue;
            }
            Ok(Event::InitDone) => Seen::Listed {
                space: space.clone(),
                planes: std::mem::take(&mut listing),
            },
            Ok(Event::Apply(object)) => Seen::Applied {
                space: space.clone(),
                plane: FoundControlPlane::of(&object),
            },
            Ok(Event::Delete(object)) => Seen::Deleted {
                space: space.clone(),
                plane: FoundControlPlane::of(&object),
            },
            Err(e) => Seen::Failed {
                space: space.clone(),
                message: e.to_string(),
            },
        };
        if seen.send(event).await.is_err() {
            return;
        }
    }
}
