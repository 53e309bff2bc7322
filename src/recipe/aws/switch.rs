//! Switching an AWS space between `irsa` and `pod-identity` in two applies, so that pods still
//! running with the old mode (an IRSA annotation, or an association) keep valid credentials
//! until a Helm upgrade moves them:
//!
//! 1. the first apply after the spec's mode changed makes every role trust both modes,
//!    creates what the new mode needs (associations, or the OIDC provider) and keeps what the
//!    old one needs; the state records the switch as half done;
//! 2. the next apply, with the spec unchanged, drops the old mode's trust and resources.
//!
//! The state records the mode only after an apply finished without a failure, so a switch
//! whose first apply failed part way starts again rather than finishing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::graph::Kind;
use crate::note::Note;
use crate::provider::aws::AwsKind;
use crate::spec::{AwsMode, Cloud, Spec};
use crate::state::{AwsModes, State};

/// What a plan carries for AWS beyond its changes (flattened into the plan, as `aws_modes`):
/// per AWS space, its mode and whether a switch of mode is half done, as apply records them
/// once it finished without a failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsPlan {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aws_modes: BTreeMap<String, AwsModes>,
}

impl AwsPlan {
    /// What apply records of each space's step.
    pub fn of(switches: &Switches) -> AwsPlan {
        AwsPlan {
            aws_modes: switches
                .iter()
                .map(|(space, switch)| (space.clone(), switch.record()))
                .collect(),
        }
    }

    /// Records the mode of each AWS space, and where it stands in a switch of mode; whether
    /// the state changed.
    pub fn record(&self, state: &mut State) -> bool {
        let mut changed = false;
        for (name, modes) in &self.aws_modes {
            if let Some(record) = state.spaces.get_mut(name)
                && record.aws != Some(*modes)
            {
                record.aws = Some(*modes);
                changed = true;
            }
        }
        changed
    }

    /// For a plan that leaves part of the spec unapplied: a step of a switch is not recorded
    /// (each step is a whole, reviewed apply).
    pub fn keep_recorded(&mut self, state: &State) {
        self.aws_modes.retain(|space, modes| {
            let recorded = state.spaces.get(space).and_then(|r| r.aws);
            recorded.is_none_or(|recorded| recorded == *modes)
        });
    }
}

/// Per AWS space (by name): where it stands in a switch of mode. A space left out has the
/// spec's mode alone (`validate`, which reads no state).
pub type Switches = BTreeMap<String, Switch>;

/// Where each AWS space stands in a switch of mode, from the spec and what `state` recorded.
pub fn switches(spec: &Spec, state: &State) -> Switches {
    spec.spaces
        .iter()
        .filter_map(|space| {
            let Cloud::Aws(a) = &space.cloud else {
                return None;
            };
            let recorded = recorded(state, &space.name, a.mode);
            Some((space.name.clone(), Switch::decide(a.mode, recorded)))
        })
        .collect()
}

/// Where a space stands in a switch of mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// The roles trust the spec's mode only.
    None(AwsMode),
    /// The first apply: the roles trust both modes; what `to` needs is created, what `from`
    /// needs is kept.
    Start { from: AwsMode, to: AwsMode },
    /// The second apply: the roles trust `to` only; what only `from` needed is deleted.
    Finish { from: AwsMode, to: AwsMode },
}

impl Switch {
    /// The step of a space whose spec says `mode`, after what the state `recorded`.
    pub fn decide(mode: AwsMode, recorded: Option<AwsModes>) -> Switch {
        let Some(recorded) = recorded else {
            // A space new to the state: nothing runs with another mode.
            return Switch::None(mode);
        };
        match recorded.switching_from {
            None if recorded.mode == mode => Switch::None(mode),
            None => Switch::Start {
                from: recorded.mode,
                to: mode,
            },
            Some(from) if recorded.mode == mode => Switch::Finish { from, to: mode },
            // The spec went back mid-switch: the roles trust both already, and pods may have
            // moved to the mode now left; going back is a switch of its own, in two steps.
            Some(_) => Switch::Start {
                from: recorded.mode,
                to: mode,
            },
        }
    }

    /// Whether this plan wants what mode `m` needs (its trust statements, the OIDC provider or
    /// the associations).
    pub fn keeps(self, m: AwsMode) -> bool {
        match self {
            Switch::None(mode) | Switch::Finish { to: mode, .. } => m == mode,
            Switch::Start { .. } => true,
        }
    }

    /// What apply records once it finishes without a failure.
    pub fn record(self) -> AwsModes {
        match self {
            Switch::None(mode) | Switch::Finish { to: mode, .. } => AwsModes {
                mode,
                switching_from: None,
            },
            Switch::Start { from, to } => AwsModes {
                mode: to,
                switching_from: Some(from),
            },
        }
    }

    /// What the reviewer must know of the switch, and do between its two applies.
    pub fn note(self, space: &str) -> Option<Note> {
        match self {
            Switch::None(_) => None,
            Switch::Start { from, to } => Some(Note::remark(format!(
                "space {space}: step 1 of 2 of switching from {from} to {to}. The roles keep \
                 their ARNs and trust both {from} and {to}, and what {to} needs is created \
                 beside what {from} needs, so running pods keep their credentials. Run \
                 `idplan helm-values` and the Helm upgrade so the components' pods move to \
                 {to}, then apply again: that removes the {from} trust"
            ))),
            Switch::Finish { from, to } => Some(Note::warning(format!(
                "space {space}: step 2 of 2 of switching from {from} to {to}: the roles trust \
                 {to} only, and what only {from} needed is deleted. Pods not yet restarted by \
                 the Helm upgrade lose their {from} credentials"
            ))),
        }
    }
}

/// What the state recorded of `space`'s mode. A state written before idplan recorded it (or
/// whose every apply since had a failure) is read off the trust policies of the space's
/// roles: one that admits a mode other than the spec's `mode` means pods may run with that
/// one, so the change is a switch; a space without roles is new.
pub fn recorded(state: &State, space: &str, mode: AwsMode) -> Option<AwsModes> {
    if let Some(recorded) = state.spaces.get(space).and_then(|r| r.aws) {
        return Some(recorded);
    }
    let other = match mode {
        AwsMode::Irsa => AwsMode::PodIdentity,
        AwsMode::PodIdentity => AwsMode::Irsa,
    };
    let mut roles = state
        .resources
        .iter()
        .filter(|r| {
            r.node.kind() == Kind::Aws(AwsKind::IamRole) && r.node.address.space() == Some(space)
        })
        .peekable();
    roles.peek()?;
    let switching = roles.any(|r| admits(&r.attributes["assume_role_policy"], other));
    Some(AwsModes {
        mode: if switching { other } else { mode },
        switching_from: None,
    })
}

/// Whether a role's trust policy admits `mode`: EKS's service principal for pod identity,
/// web identity for IRSA.
fn admits(policy: &serde_json::Value, mode: AwsMode) -> bool {
    let text = policy.to_string();
    match mode {
        AwsMode::PodIdentity => text.contains(POD_IDENTITY_PRINCIPAL),
        AwsMode::Irsa => text.contains("sts:AssumeRoleWithWebIdentity"),
    }
}

/// The service principal of EKS Pod Identity.
const POD_IDENTITY_PRINCIPAL: &str = "pods.eks.amazonaws.com";

#[cfg(test)]
mod tests {
    use super::*;
    use AwsMode::{Irsa, PodIdentity};

    fn modes(mode: AwsMode, switching_from: Option<AwsMode>) -> Option<AwsModes> {
        Some(AwsModes {
            mode,
            switching_from,
        })
    }

    /// A state written before idplan recorded the mode: a space whose roles still trust the
    /// other mode is switching; one whose roles trust the spec's mode, or that has none, is not.
    #[test]
    fn an_older_state_is_read_off_the_recorded_trust_policies() {
        use crate::graph::{Address, Location, Node};
        use crate::spec::ComponentKind;
        use crate::state::{Ownership, Record};
        let role = |principal: serde_json::Value| Record {
            node: Node {
                address: Address::component(
                    Kind::Aws(AwsKind::IamRole),
                    "prod",
                    ComponentKind::Backup,
                ),
                location: Location::Aws {
                    region: "us-east-1".into(),
                },
                depends_on: vec![],
            },
            ownership: Ownership::Created,
            attributes: serde_json::json!({"assume_role_policy": {"Statement": [principal]}}),
            added: None,
            deposed: None,
        };
        // Older still: no record of the space at all.
        let mut state = State::new();
        assert_eq!(recorded(&state, "prod", PodIdentity), None, "no role: new");
        state.put(role(serde_json::json!({
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/x"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        })));
        assert_eq!(recorded(&state, "prod", PodIdentity), modes(Irsa, None));
        assert_eq!(recorded(&state, "prod", Irsa), modes(Irsa, None));
        assert_eq!(recorded(&state, "other", Irsa), None);
    }

    #[test]
    fn a_switch_takes_two_applies_and_going_back_mid_switch_takes_two_more() {
        // New space: no switch.
        assert_eq!(Switch::decide(PodIdentity, None), Switch::None(PodIdentity));
        assert_eq!(Switch::decide(Irsa, modes(Irsa, None)), Switch::None(Irsa));
        let start = Switch::decide(PodIdentity, modes(Irsa, None));
        assert_eq!(
            start,
            Switch::Start {
                from: Irsa,
                to: PodIdentity
            }
        );
        assert!(start.keeps(Irsa) && start.keeps(PodIdentity));
        let finish = Switch::decide(PodIdentity, Some(start.record()));
        assert_eq!(
            finish,
            Switch::Finish {
                from: Irsa,
                to: PodIdentity
            }
        );
        assert!(!finish.keeps(Irsa) && finish.keeps(PodIdentity));
        assert_eq!(finish.record(), modes(PodIdentity, None).unwrap());
        // Back to IRSA after step 1: step 1 of the way back, both kept.
        let back = Switch::decide(Irsa, Some(start.record()));
        assert_eq!(
            back,
            Switch::Start {
                from: PodIdentity,
                to: Irsa
            }
        );
        assert_eq!(back.record(), modes(Irsa, Some(PodIdentity)).unwrap());
    }
}
