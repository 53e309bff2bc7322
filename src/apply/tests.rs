use super::journal::persist_interval;
use super::*;
use crate::graph::Kind;
use crate::plan::{Clash, Order, Prior};
use crate::provider::aws::AwsKind;
use crate::spec::ComponentKind::{self, Backup, Billing};

fn change(kind: Kind, component: ComponentKind, action: Action, on: &[&Address]) -> ResourceChange {
    let address = match kind {
        Kind::Aws(AwsKind::IamOpenidConnectProvider) => Address::cluster(kind, "us-east-1", "c"),
        _ => Address::component(kind, "prod", component),
    };
    let mut change = ResourceChange::bare(address, action);
    change.node.depends_on = on.iter().map(|a| (*a).clone()).collect();
    change
}

/// A replacement whose old and new object have one cloud identity: the old one goes first.
const IN_PLACE: Action = Action::Replace(Order::DeleteThenCreate(Clash::OneIdentity));

/// `change` as the replacement of a role named `old` by one named `new`, created first.
fn renamed(change: ResourceChange) -> ResourceChange {
    ResourceChange {
        action: Action::Replace(Order::CreateThenDelete),
        prior: Some(Prior {
            ownership: Ownership::Created,
            attributes: serde_json::json!({"name": "old"}),
            added: None,
        }),
        after: Some(serde_json::json!({"name": "new"})),
        ..change
    }
}

/// `change` with a deposed object (named `older`) left by an earlier replacement.
fn with_deposed(change: ResourceChange) -> ResourceChange {
    ResourceChange {
        deposed: Some(crate::plan::DeposedChange {
            prior: Prior {
                ownership: Ownership::Created,
                attributes: serde_json::json!({"name": "older"}),
                added: None,
            },
            before: Some(serde_json::json!({"name": "older"})),
        }),
        ..change
    }
}

/// (case, changes, the waves in order)
type Case = (&'static str, Vec<ResourceChange>, Vec<Vec<&'static str>>);

/// The addresses of each wave, destroy waves marked with `-`.
fn schedule(changes: Vec<ResourceChange>) -> Vec<Vec<String>> {
    let plan = Plan::new("l".into(), 0, "h".into(), changes);
    let deposed: Vec<ResourceChange> = plan
        .resource_changes
        .iter()
        .filter_map(ResourceChange::deposed_delete)
        .collect();
    order(&plan, &deposed)
        .unwrap()
        .phases
        .into_iter()
        .flat_map(|(waves, phase)| {
            waves.into_iter().map(move |wave| {
                let sign = if phase == Phase::Build { "+" } else { "-" };
                wave.iter()
                    .map(|c| {
                        let mark = if phase.deletes_deposed() {
                            " (deposed)"
                        } else {
                            ""
                        };
                        format!("{sign}{}{mark}", c.node.address)
                    })
                    .collect()
            })
        })
        .collect()
}

#[test]
fn orders_writes_by_dependency_and_phase() {
    use Action::*;
    let (oidc_kind, role_kind, policy_kind) = (
        Kind::Aws(AwsKind::IamOpenidConnectProvider),
        Kind::Aws(AwsKind::IamRole),
        Kind::Aws(AwsKind::IamRolePolicy),
    );
    let oidc = Address::cluster(oidc_kind, "us-east-1", "c");
    let role = Address::component(role_kind, "prod", Backup);
    let billing_role = Address::component(role_kind, "prod", Billing);
    let cases: Vec<Case> = vec![
        (
            "create: provider, then role, then policy",
            vec![
                change(policy_kind, Backup, Create, &[&role]),
                change(role_kind, Backup, Create, &[&oidc]),
                change(oidc_kind, Backup, Create, &[]),
            ],
            vec![
                vec!["+aws_iam_openid_connect_provider.us-east-1.c"],
                vec!["+aws_iam_role.prod.backup"],
                vec!["+aws_iam_role_policy.prod.backup"],
            ],
        ),
        (
            "destroy: policy, then role, then provider",
            vec![
                change(policy_kind, Backup, Delete, &[&role]),
                change(role_kind, Backup, Delete, &[&oidc]),
                change(oidc_kind, Backup, Delete, &[]),
            ],
            vec![
                vec!["-aws_iam_role_policy.prod.backup"],
                vec!["-aws_iam_role.prod.backup"],
                vec!["-aws_iam_openid_connect_provider.us-east-1.c"],
            ],
        ),
        (
            "independent writes share a wave; what exists already is not waited for",
            vec![
                change(role_kind, Backup, Update, &[&oidc]),
                change(role_kind, Billing, Create, &[&oidc]),
                change(policy_kind, Billing, Create, &[&billing_role]),
            ],
            vec![
                vec!["+aws_iam_role.prod.backup", "+aws_iam_role.prod.billing"],
                vec!["+aws_iam_role_policy.prod.billing"],
            ],
        ),
        (
            "replace: the old object goes in the destroy phase, the new one after",
            vec![
                change(role_kind, Backup, IN_PLACE, &[]),
                change(policy_kind, Backup, Update, &[&role]),
                change(role_kind, Billing, NoOp, &[]),
            ],
            vec![
                vec!["-aws_iam_role.prod.backup"],
                vec!["+aws_iam_role.prod.backup"],
                vec!["+aws_iam_role_policy.prod.backup"],
            ],
        ),
        (
            "replace under a new name: create the new role first, delete the old one last",
            vec![
                renamed(change(role_kind, Backup, IN_PLACE, &[])),
                change(policy_kind, Backup, Update, &[&role]),
            ],
            vec![
                vec!["+aws_iam_role.prod.backup"],
                vec!["+aws_iam_role_policy.prod.backup"],
                vec!["-aws_iam_role.prod.backup (deposed)"],
            ],
        ),
        (
            "a deposed object is deleted after the creates",
            vec![
                with_deposed(change(role_kind, Backup, NoOp, &[])),
                change(role_kind, Billing, Create, &[]),
            ],
            vec![
                vec!["+aws_iam_role.prod.billing"],
                vec!["-aws_iam_role.prod.backup (deposed)"],
            ],
        ),
        (
            "an address that leaves the spec: its deposed object goes before its current one",
            vec![
                with_deposed(change(role_kind, Backup, Delete, &[])),
                change(policy_kind, Backup, Delete, &[&role]),
            ],
            vec![
                vec!["-aws_iam_role.prod.backup (deposed)"],
                vec!["-aws_iam_role_policy.prod.backup"],
                vec!["-aws_iam_role.prod.backup"],
            ],
        ),
        (
            "replaced again: the older deposed object goes first, the last one is deposed last",
            vec![with_deposed(renamed(change(
                role_kind,
                Backup,
                IN_PLACE,
                &[],
            )))],
            vec![
                vec!["-aws_iam_role.prod.backup (deposed)"],
                vec!["+aws_iam_role.prod.backup"],
                vec!["-aws_iam_role.prod.backup (deposed)"],
            ],
        ),
        (
            "replaced again in place: the deposed object goes before the old one",
            vec![with_deposed(change(role_kind, Backup, IN_PLACE, &[]))],
            vec![
                vec!["-aws_iam_role.prod.backup (deposed)"],
                vec!["-aws_iam_role.prod.backup"],
                vec!["+aws_iam_role.prod.backup"],
            ],
        ),
    ];
    for (case, changes, expected) in cases {
        assert_eq!(schedule(changes), expected, "{case}");
    }
}

#[test]
fn only_what_idplans_tags_find_again_waits_for_the_next_persist() {
    let (association, role) = (
        Kind::Aws(AwsKind::EksPodIdentityAssociation),
        Kind::Aws(AwsKind::IamRole),
    );
    let adopted = |c: ResourceChange| ResourceChange {
        ownership: Ownership::Adopted,
        ..c
    };
    let cases = [
        (
            "a create",
            change(association, Backup, Action::Create, &[]),
            Phase::Build,
            Persist::Later,
        ),
        (
            "an update",
            change(role, Backup, Action::Update, &[]),
            Phase::Build,
            Persist::Later,
        ),
        (
            "a delete",
            change(role, Backup, Action::Delete, &[]),
            Phase::DestroyFirst,
            Persist::Later,
        ),
        (
            "an adoption",
            adopted(change(role, Backup, Action::Update, &[])),
            Phase::Build,
            Persist::Now,
        ),
        (
            "a release",
            adopted(change(role, Backup, Action::Delete, &[])),
            Phase::DestroyFirst,
            Persist::Now,
        ),
        (
            "a replacement",
            renamed(change(role, Backup, IN_PLACE, &[])),
            Phase::Build,
            Persist::Now,
        ),
        (
            "a deposed object kept",
            with_deposed(change(role, Backup, Action::Update, &[])),
            Phase::Build,
            Persist::Now,
        ),
        (
            "a deposed object deleted",
            change(role, Backup, Action::Delete, &[]),
            Phase::DestroyLast,
            Persist::Now,
        ),
    ];
    let none = HashSet::new();
    for (case, change, phase, persist) in cases {
        assert_eq!(Persist::of(&change, phase, &none), persist, "{case}");
    }
    // Beside an adopted identity, what idplan creates may carry no tag of its own.
    let adopted = HashSet::from([("prod", Backup)]);
    let beside = change(association, Backup, Action::Create, &[]);
    assert_eq!(Persist::of(&beside, Phase::Build, &adopted), Persist::Now);
    let elsewhere = change(association, Billing, Action::Create, &[]);
    assert_eq!(
        Persist::of(&elsewhere, Phase::Build, &adopted),
        Persist::Later
    );
}

#[test]
fn the_persist_interval_is_five_seconds_unless_set() {
    assert_eq!(PERSIST_INTERVAL, Duration::from_secs(5));
    assert_eq!(persist_interval(Some("1m")), Duration::from_secs(60));
    assert_eq!(persist_interval(Some(" 250ms")), Duration::from_millis(250));
    for default in [Some("0"), Some("soon"), None] {
        assert_eq!(persist_interval(default), PERSIST_INTERVAL, "{default:?}");
    }
}
