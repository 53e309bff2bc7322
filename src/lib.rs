//! idplan: plan and apply the cloud workload identities of Upbound Spaces components.
//!
//! Data flows one way: spec → recipe → desired graph; drivers read the actual resources;
//! diff → plan → render, or → apply (graph order, each cloud write recorded in the state,
//! persisted every few seconds).

pub mod address;
pub mod apply;
pub mod cli;
pub mod cluster;
pub mod diff;
pub mod error;
pub mod graph;
pub mod helm;
pub mod kind;
pub mod note;
pub mod ops;
pub mod pace;
pub mod plan;
pub mod policy;
pub mod provider;
pub mod recipe;
pub mod spec;
pub mod state;
pub mod stats;
pub mod transport;
pub mod watch;
