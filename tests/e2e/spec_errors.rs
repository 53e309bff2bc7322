//! The malformed spec corpus (`tests/spec_corpus/*.yaml`, one case per file): every file
//! fails to load with its first error at an exact line:column, naming an exact field.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use idplan::spec::{self, SpecErrors};

use crate::support::{Rng, repo_path};

/// file, `line:column` of the first error, its field (empty: the whole file), a piece of its
/// message, and how many errors in all.
#[rustfmt::skip]
const CASES: &[(&str, &str, &str, &str, usize)] = &[
    ("wrong_type_version.yaml", "2:10", "version", "expected a non-negative integer, found `one`", 1),
    ("wrong_type_control_planes.yaml", "5:20", "spaces[0].controlPlanes", "expected a list of namespaces or a mapping with `discover` and `list`, found `5`", 1),
    ("unknown_key_top.yaml", "12:1", "spacez", "unknown key `spacez`: expected one of `version`, `spaces`", 1),
    ("unknown_key_nested.yaml", "10:7", "spaces[0].aws.zone", "unknown key `zone`: expected one of `region`", 1),
    ("unknown_cloud_oci.yaml", "7:5", "spaces[0].oci", "unknown key `oci`: expected one of `name`, `controlPlanes`, `aws`, `azure`, `gcp`", 1),
    ("azure_missing_storage_account.yaml", "12:16", "spaces[0].components.billing", "missing required key `storageAccount`", 1),
    ("azure_bucket_on_azure.yaml", "12:53", "spaces[0].components.backup.bucket", "`bucket` does not apply to this space's cloud: an Azure space takes `storageAccount`", 1),
    ("azure_bad_subscription.yaml", "7:21", "spaces[0].azure.subscription", "invalid subscription `acme-prod`: expected a subscription id", 1),
    ("aws_and_azure.yaml", "4:5", "spaces[0]", "expected exactly one of `aws`, `azure`, `gcp`, found `aws` and `azure`", 1),
    ("azure_bad_key_vault.yaml", "12:34", "spaces[0].components.sharedSecrets.keyVault", "invalid key vault", 1),
    ("bad_namespace_uppercase.yaml", "6:9", "spaces[0].controlPlanes[0]", "expected a DNS-1123 label", 1),
    ("bad_namespace_too_long.yaml", "7:9", "spaces[0].controlPlanes[1]", "64 characters: a DNS-1123 label has at most 63", 1),
    ("bad_namespace_underscore.yaml", "6:9", "spaces[0].controlPlanes[0]", "invalid namespace `mxp_706c49fa_system`", 1),
    ("duplicate_key.yaml", "10:7", "spaces[0].aws.region", "duplicate key `region`", 1),
    ("empty.yaml", "1:1", "", "spec is empty: expected a mapping with `version` and `spaces`", 1),
    ("comment_only.yaml", "1:1", "", "spec is empty: expected a mapping with `version` and `spaces`", 1),
    ("mode_yes.yaml", "10:13", "spaces[0].aws.mode", "unknown value `yes`: expected one of `irsa`, `pod-identity`", 1),
    ("tab_indent.yaml", "7:1", "spaces[0].controlPlanes", "a tab in indentation", 1),
    ("bad_indent.yaml", "7:6", "spaces[0]", "invalid YAML: ", 1),
    ("missing_bucket.yaml", "12:16", "spaces[0].components.billing", "missing required key `bucket`", 1),
    ("missing_cluster.yaml", "8:7", "spaces[0].aws", "missing required key `cluster`", 1),
    ("wildcard_pod_identity.yaml", "11:17", "spaces[0].aws.subjects", "pod identity has no wildcards: remove `subjects` or use mode irsa", 1),
    ("duplicate_control_plane.yaml", "7:9", "spaces[0].controlPlanes[1]", "duplicate control plane", 1),
    ("role_name_too_long.yaml", "13:15", "spaces[0].components.backup.name", "IAM role name is 65 characters: expected at most 64", 1),
    ("invalid_region.yaml", "8:15", "spaces[0].aws.region", "invalid region `us-east`: expected an AWS region", 1),
    ("no_cloud.yaml", "4:5", "spaces[0]", "expected exactly one of `aws`, `azure`", 1),
    ("no_components.yaml", "10:17", "spaces[0].components", "expected at least one of `backup`, `billing`, `sharedSecrets`", 1),
    ("duplicate_space.yaml", "12:11", "spaces[1].name", "duplicate space name `prod` (first at line 4)", 1),
    ("secrets_on_backup.yaml", "11:45", "spaces[0].components.backup.secrets", "unknown key `secrets`: expected one of `bucket`, `name`", 1),
    ("multiple_documents.yaml", "12:1", "", "expected a single YAML document", 1),
    ("null_name.yaml", "4:9", "spaces[0].name", "expected a string, found nothing", 1),
    ("bad_bucket_and_more.yaml", "8:15", "spaces[0].aws.region", "invalid region `mars-1`", 3),
    ("two_clouds.yaml", "4:5", "spaces[0]", "expected exactly one of `aws`, `azure`, `gcp`, found `aws` and `gcp`", 1),
    ("gcp_default_name_too_long.yaml", "11:22", "spaces[0].components.sharedSecrets", "the default service account id `spaces-production-eu-shared-secrets` is 35 characters, but Google allows 6 to 30: set an explicit `name`", 1),
    ("gcp_name_in_principal_mode.yaml", "10:44", "spaces[0].components.backup.name", "only `mode: service-account` creates", 1),
    ("gcp_bad_project.yaml", "7:16", "spaces[0].gcp.project", "invalid project id `123456789012`", 1),
    ("gcp_unknown_mode.yaml", "9:13", "spaces[0].gcp.mode", "unknown value `workload-identity`: expected one of `principal`, `service-account`", 1),
    ("gcp_empty_secrets.yaml", "10:33", "spaces[0].components.sharedSecrets.secrets", "leave `secrets` out to allow every secret of the project", 1),
    ("gcp_secret_arn.yaml", "10:45", "spaces[0].components.sharedSecrets.secrets[1]", "invalid Secret Manager secret id", 1),
    ("discover_unknown_key.yaml", "8:9", "spaces[0].controlPlanes.discover.namespace", "unknown key `namespace`: expected one of `context`, `kubeconfig`", 1),
    ("discover_bad_listed_namespace.yaml", "9:11", "spaces[0].controlPlanes.list[1]", "invalid namespace `MXP-Upper-system`", 1),
    ("discover_empty_context.yaml", "6:28", "spaces[0].controlPlanes.discover.context", "`context` is empty", 1),
    ("adopt_not_a_boolean.yaml", "8:69", "spaces[0].components.backup.adopt", "expected `true` or `false`, found `yes`", 1),
    ("gcp_bad_cluster_location.yaml", "8:28", "spaces[0].gcp.cluster.location", "invalid cluster location `us-central`", 1),
];

fn corpus() -> PathBuf {
    repo_path("tests/spec_corpus")
}

#[test]
fn every_corpus_file_has_an_expectation() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && n != "valid.yaml")
        .collect();
    let listed: BTreeSet<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn malformed_specs_fail_at_the_expected_place() {
    let mut failures = Vec::new();
    for &(file, at, field, message, count) in CASES {
        let path = corpus().join(file);
        let errors: SpecErrors = match spec::load(&path) {
            Ok(_) => {
                failures.push(format!("{file}: loaded, expected an error"));
                continue;
            }
            Err(e) => e,
        };
        let first = &errors.0[0];
        let shown = first.to_string();
        let prefix = match field {
            "" => format!("{}:{at}: ", path.display()),
            _ => format!("{}:{at}: {field}: ", path.display()),
        };
        if !shown.starts_with(&prefix) || first.field != field {
            failures.push(format!("{file}: expected `{prefix}…`, got `{shown}`"));
        }
        if !first.message.contains(message) {
            failures.push(format!(
                "{file}: expected a message with `{message}`, got `{shown}`"
            ));
        }
        if first.message.contains('\n') {
            failures.push(format!("{file}: message is not one line: `{shown}`"));
        }
        if errors.0.len() != count {
            failures.push(format!("{file}: expected {count} errors, got:\n{errors}"));
        }
        for e in &errors.0 {
            if e.location.is_none_or(|l| l.line == 0 || l.column == 0) {
                failures.push(format!("{file}: error without a location: `{e}`"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_valid_spec_loads() {
    let path = corpus().join("valid.yaml");
    let spec = spec::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.path, path);
    assert_eq!(spec.spaces.len(), 5);
    assert_eq!(spec.spaces[0].component_kinds().len(), 3);
    let azure = &spec.spaces[2];
    let spec::Cloud::Azure(cloud) = &azure.cloud else {
        panic!("the third space is Azure");
    };
    assert_eq!(cloud.subscription, "00000000-0000-0000-0000-000000000000");
    assert_eq!(cloud.resource_group, "spaces");
    assert_eq!(cloud.region, "eastus");
    assert_eq!(cloud.cluster, "spaces-prod");
    let backup = cloud.components.backup.as_ref().unwrap();
    let spec::AzureAccess::Storage { account, .. } = &backup.access else {
        panic!("backup writes to a storage account");
    };
    assert_eq!(account, "acmebackup");
    assert_eq!(backup.name.as_deref(), Some("azure-prod-backup"));
    let billing = cloud.components.billing.as_ref().unwrap();
    let spec::AzureAccess::Storage { account, container } = &billing.access else {
        panic!("billing writes to a storage account");
    };
    assert_eq!(container.as_deref(), Some("billing"));
    assert!(account.starts_with("/subscriptions/"));
    let shared = cloud.components.shared_secrets.as_ref().unwrap();
    assert_eq!(
        shared.access,
        spec::AzureAccess::KeyVault("acme-vault".into())
    );
    assert_eq!(spec.hash.len(), 64);
}

#[test]
fn a_missing_file_is_one_unlocated_error() {
    let path = corpus().join("no-such-file.yaml");
    let errors = spec::load(&path).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].location, None);
    assert_eq!(
        errors.to_string(),
        format!("{}: {}", path.display(), errors.0[0].message)
    );
    assert!(errors.0[0].message.starts_with("cannot read spec: "));
}

/// Truncations and mutations of the valid spec never panic, and every error is located.
#[test]
fn mutations_never_panic() {
    let valid = std::fs::read_to_string(corpus().join("valid.yaml")).unwrap();
    let chars: Vec<char> = valid.chars().collect();
    let lines: Vec<&str> = valid.lines().collect();
    const INSERTS: &[&str] = &[
        "\t", ":", ": ", "-", "- ", "[", "]", "{", "}", "\"", "'", "&a ", "*a", "*b", "\n", "  ",
        "#", "!", "!!int ", "?", "|", ">", "%", "@", "`", ",", "<<: *a\n", "---\n", "~", "yes",
        "0x1", "1e999", ".nan", "\u{feff}", "é", "\r",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let path = Path::new("mutant.yaml");
    for case in 0..240 {
        let text: String = match case % 6 {
            // Truncated at a random character.
            0 => chars[..rng.below(chars.len())].iter().collect(),
            // A character deleted.
            1 => {
                let i = rng.below(chars.len());
                chars[..i].iter().chain(&chars[i + 1..]).collect()
            }
            // Something inserted.
            2 | 3 => {
                let i = rng.below(chars.len());
                let ins = INSERTS[rng.below(INSERTS.len())];
                let head: String = chars[..i].iter().collect();
                let tail: String = chars[i..].iter().collect();
                format!("{head}{ins}{tail}")
            }
            // A line duplicated or dropped.
            4 => {
                let i = rng.below(lines.len());
                let mut ls = lines.clone();
                if rng.below(2) == 0 {
                    ls.insert(i, lines[i]);
                } else {
                    ls.remove(i);
                }
                ls.join("\n")
            }
            // Two lines swapped, then truncated.
            _ => {
                let mut ls = lines.clone();
                let (a, b) = (rng.below(ls.len()), rng.below(ls.len()));
                ls.swap(a, b);
                let joined = ls.join("\n");
                let cut: Vec<char> = joined.chars().collect();
                cut[..cut.len() - rng.below(cut.len() / 4)].iter().collect()
            }
        };
        if let Err(errors) = spec::parse(path, &text) {
            assert!(!errors.0.is_empty(), "no errors for:\n{text}");
            for e in &errors.0 {
                let at = e
                    .location
                    .unwrap_or_else(|| panic!("unlocated `{e}` for:\n{text}"));
                assert!(at.line >= 1 && at.column >= 1, "`{e}` for:\n{text}");
                assert!(e.to_string().starts_with("mutant.yaml:"), "`{e}`");
            }
        }
    }
}
