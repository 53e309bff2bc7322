//! The AWS guides run literally with the aws CLI against ministack: IRSA (the billing guide
//! and the overview: an OIDC provider, a role per component with the guide's trust policy,
//! exact or wildcard, and its S3 or Secrets Manager permissions) or EKS pod identity (roles
//! trusted by `pods.eks.amazonaws.com`, one `aws eks create-pod-identity-association` per
//! control plane and component).
//!
//! The aws CLI is the one `scripts/install-test-deps.sh` pins into `.venv-awscli`
//! (`IDPLAN_AWSCLI` names another); it talks to ministack through `--endpoint-url`, with
//! dummy credentials and no configuration file of the machine's.

use std::process::{Command, Stdio};

use serde_json::Value;

use super::super::peer::installed;
use super::super::{FakeKube, Ministack, TestDir, subject};
use super::{
    Component, Ids, Planes, ROLE_ARN, helm_components, later_control_plane, more, space_cluster,
    text,
};

/// The EKS cluster of the manual Space (made before the guides start).
pub const CLUSTER: &str = "spaces-prod";
pub const REGION: &str = "us-east-1";
pub const BACKUP_BUCKET: &str = "acme-spaces-backup";
pub const BILLING_BUCKET: &str = "acme-spaces-billing";
/// The root CA thumbprint eksctl registers for EKS issuers.
pub const THUMBPRINT: &str = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";

const INSTALL_HINT: &str = "the aws CLI is not installed: run scripts/install-test-deps.sh";

/// How the team set up its roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// IRSA, the trust policy listing the exact subject of every control plane.
    IrsaExact,
    /// IRSA, the overview's wildcard trust: `StringLike` `system:serviceaccount:*:<sa>`.
    IrsaWildcard,
    /// EKS pod identity: associations, no annotation.
    PodIdentity,
}

/// One component's role, as the team made it.
#[derive(Debug, Clone)]
pub struct AwsRole {
    pub component: Component,
    pub name: String,
    pub arn: String,
    /// IAM's unique id (`AROA...`): a role deleted and made again gets another.
    pub role_id: String,
    /// Its inline policies (`aws iam put-role-policy`).
    pub inline: Vec<String>,
    /// The ARNs of the managed policies attached to it (`create-policy` + `attach-role-policy`).
    pub attached: Vec<String>,
}

/// One pod identity association made with `aws eks create-pod-identity-association`.
#[derive(Debug, Clone)]
pub struct Association {
    pub component: Component,
    pub namespace: String,
    pub id: String,
    pub role_arn: String,
}

/// What the AWS guides left behind.
#[derive(Debug, Clone)]
pub struct AwsSpace {
    pub mode: Mode,
    pub cluster: String,
    pub region: String,
    pub account: String,
    /// The cluster's OIDC issuer, as `aws eks describe-cluster` gives it.
    pub issuer: String,
    /// IRSA: the OIDC provider made for the issuer.
    pub provider_arn: Option<String>,
    pub namespaces: Vec<String>,
    /// One per component, in [`Component::ALL`] order.
    pub roles: Vec<AwsRole>,
    /// Pod identity: one per control plane and component.
    pub associations: Vec<Association>,
}

/// The role name the team chose for a component (after the overview's `SPACES_BR_IAM_ROLE_ARN`,
/// `SPACES_BILLING_IAM_ROLE_ARN`, `SPACES_ESO_IAM_ROLE_ARN`).
pub fn role_name(c: Component) -> &'static str {
    match c {
        Component::Backup => "acme-spaces-br",
        Component::Billing => "acme-spaces-billing",
        Component::SharedSecrets => "acme-spaces-eso",
    }
}

/// The secrets the External Secrets Operator reads.
pub fn secrets_arn(account: &str) -> String {
    format!("arn:aws:secretsmanager:{REGION}:{account}:secret:spaces/*")
}

/// Runs the aws CLI against `ms` with `args` (the guide's command, without `aws`) in `dir`;
/// its JSON answer (`Null` for a command that prints nothing), or its stderr when it failed.
pub fn aws_in(
    ms: &Ministack,
    dir: Option<&std::path::Path>,
    args: &[&str],
) -> Result<Value, String> {
    let cli = installed("IDPLAN_AWSCLI", ".venv-awscli/bin/aws", INSTALL_HINT);
    let mut cmd = Command::new(&cli);
    cmd.args([
        "--endpoint-url",
        &ms.endpoint,
        "--region",
        REGION,
        "--output",
        "json",
    ])
    .args(args)
    .stdin(Stdio::null());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&key);
        }
    }
    // Dummy credentials; the configuration files point nowhere, so no profile leaks in.
    let nowhere = std::env::temp_dir().join("idplan-no-such-aws-file");
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_CONFIG_FILE", &nowhere)
        .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{INSTALL_HINT} (running {}: {e})", cli.display()));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&stdout).map_err(|e| format!("aws {args:?}: not JSON ({e}): {stdout}"))
}

/// As [`aws_in`] in no particular directory; the command must succeed.
#[track_caller]
pub fn aws(ms: &Ministack, args: &[&str]) -> Value {
    aws_in(ms, None, args).unwrap_or_else(|e| panic!("aws {args:?} failed: {e}"))
}

/// A policy document of one `Allow` statement, laid out as the guides print theirs:
/// `statement` is the statement's lines after `"Effect": "Allow",`.
fn allow(statement: &str) -> String {
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{
      "Effect": "Allow",
{statement}    }}
  ]
}}
"#
    )
}

/// The billing guide's S3 permissions for IRSA (the pod identity one lacks `s3:DeleteObject`:
/// a defect of the guide, copied here as a team would have).
fn s3_policy(bucket: &str, delete: bool) -> String {
    let delete = if delete {
        ",\n        \"s3:DeleteObject\""
    } else {
        ""
    };
    allow(&format!(
        r#"      "Action": [
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket"{delete}
      ],
      "Resource": [
        "arn:aws:s3:::{bucket}",
        "arn:aws:s3:::{bucket}/*"
      ]
"#
    ))
}

/// What the External Secrets Operator needs from Secrets Manager.
fn secrets_policy(arn: &str) -> String {
    allow(&format!(
        r#"      "Action": [
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret"
      ],
      "Resource": "{arn}"
"#
    ))
}

/// The guide's IRSA trust policy: `provider` is the issuer without its scheme; the subjects
/// are one string for one control plane (the billing guide), a list for more (the overview),
/// or the overview's wildcard.
fn irsa_trust(
    account: &str,
    provider: &str,
    subjects: &[String],
    wildcard: Option<&str>,
) -> String {
    let head = format!(
        r#"      "Principal": {{
        "Federated": "arn:aws:iam::{account}:oidc-provider/{provider}"
      }},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {{
"#
    );
    let condition = match (wildcard, subjects) {
        (Some(sa), _) => format!(
            r#"        "StringEquals": {{
          "{provider}:aud": "sts.amazonaws.com"
        }},
        "StringLike": {{
          "{provider}:sub": "system:serviceaccount:*:{sa}"
        }}
"#
        ),
        (None, [one]) => format!(
            r#"        "StringEquals": {{
          "{provider}:aud": "sts.amazonaws.com",
          "{provider}:sub": "{one}"
        }}
"#
        ),
        (None, many) => {
            let list: Vec<String> = many.iter().map(|s| format!("\"{s}\"")).collect();
            format!(
                r#"        "StringEquals": {{
          "{provider}:aud": "sts.amazonaws.com",
          "{provider}:sub": [
{}
]
        }}
"#,
                list.join(",\n")
            )
        }
    };
    allow(&format!("{head}{condition}      }}\n"))
}

/// The trust policy of EKS pod identity roles, as AWS documents it.
fn pod_identity_trust() -> String {
    allow(
        r#"      "Principal": {
        "Service": "pods.eks.amazonaws.com"
      },
      "Action": [
        "sts:AssumeRole",
        "sts:TagSession"
      ]
"#,
    )
}

/// Makes the Space's EKS cluster [`CLUSTER`] (it exists before the guides start) and the
/// Space's `n` control planes on `kube`, then runs the guides' commands for `mode`, and
/// annotates the service accounts as Helm would (IRSA only).
#[track_caller]
pub fn guide(ms: &Ministack, kube: &FakeKube, mode: Mode, n: usize) -> AwsSpace {
    aws(
        ms,
        &[
            "eks",
            "create-cluster",
            "--name",
            CLUSTER,
            "--role-arn",
            "arn:aws:iam::000000000000:role/eks",
            "--resources-vpc-config",
            "subnetIds=subnet-00000000000000001,subnet-00000000000000002",
        ],
    );
    let namespaces = space_cluster(kube, n);
    let files = TestDir::new();
    let run = |args: &[&str]| -> Value {
        aws_in(ms, Some(files.path()), args).unwrap_or_else(|e| panic!("aws {args:?} failed: {e}"))
    };

    let account = run(&["sts", "get-caller-identity", "--query", "Account"])
        .as_str()
        .expect("an account id")
        .to_string();
    let issuer = run(&[
        "eks",
        "describe-cluster",
        "--name",
        CLUSTER,
        "--query",
        "cluster.identity.oidc.issuer",
    ])
    .as_str()
    .expect("an issuer")
    .to_string();
    // `<OIDC provider>` in the guides: the issuer without its scheme.
    let provider = issuer
        .split_once("://")
        .map_or(issuer.as_str(), |(_, p)| p)
        .to_string();

    // eksctl utils associate-iam-oidc-provider --cluster <cluster> --approve
    let provider_arn = (mode != Mode::PodIdentity).then(|| {
        let tag = format!("Key=alpha.eksctl.io/cluster-name,Value={CLUSTER}");
        let out = run(&[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            &issuer,
            "--client-id-list",
            "sts.amazonaws.com",
            "--thumbprint-list",
            THUMBPRINT,
            "--tags",
            &tag,
        ]);
        text(&out, "/OpenIDConnectProviderArn")
    });

    let mut roles = Vec::new();
    for c in Component::ALL {
        let name = role_name(c);
        let sa = c.service_account();
        let trust = match mode {
            Mode::IrsaExact => {
                let subjects: Vec<String> = namespaces.iter().map(|ns| subject(ns, sa)).collect();
                irsa_trust(&account, &provider, &subjects, None)
            }
            Mode::IrsaWildcard => irsa_trust(&account, &provider, &[], Some(sa)),
            Mode::PodIdentity => pod_identity_trust(),
        };
        let permissions = match c {
            Component::Backup => s3_policy(BACKUP_BUCKET, mode != Mode::PodIdentity),
            Component::Billing => s3_policy(BILLING_BUCKET, mode != Mode::PodIdentity),
            Component::SharedSecrets => secrets_policy(&secrets_arn(&account)),
        };
        files.write(&format!("{name}-trust.json"), &trust);
        files.write(&format!("{name}-permissions.json"), &permissions);
        let trust_file = format!("file://{name}-trust.json");
        let permissions_file = format!("file://{name}-permissions.json");

        let created = run(&[
            "iam",
            "create-role",
            "--role-name",
            name,
            "--assume-role-policy-document",
            &trust_file,
        ]);
        let mut role = AwsRole {
            component: c,
            name: name.to_string(),
            arn: text(&created, "/Role/Arn"),
            role_id: text(&created, "/Role/RoleId"),
            inline: Vec::new(),
            attached: Vec::new(),
        };
        if c == Component::Billing {
            // A managed policy of its own, attached.
            let policy = format!("{name}-s3");
            let out = run(&[
                "iam",
                "create-policy",
                "--policy-name",
                &policy,
                "--policy-document",
                &permissions_file,
            ]);
            let arn = text(&out, "/Policy/Arn");
            run(&[
                "iam",
                "attach-role-policy",
                "--role-name",
                name,
                "--policy-arn",
                &arn,
            ]);
            role.attached.push(arn);
        } else {
            let policy = format!("{name}-permissions");
            run(&[
                "iam",
                "put-role-policy",
                "--role-name",
                name,
                "--policy-name",
                &policy,
                "--policy-document",
                &permissions_file,
            ]);
            role.inline.push(policy);
        }
        roles.push(role);
    }

    let mut associations = Vec::new();
    if mode == Mode::PodIdentity {
        for ns in &namespaces {
            for role in &roles {
                let out = run(&[
                    "eks",
                    "create-pod-identity-association",
                    "--cluster-name",
                    CLUSTER,
                    "--namespace",
                    ns,
                    "--service-account",
                    role.component.service_account(),
                    "--role-arn",
                    &role.arn,
                ]);
                associations.push(Association {
                    component: role.component,
                    namespace: ns.clone(),
                    id: text(&out, "/association/associationId"),
                    role_arn: role.arn.clone(),
                });
            }
        }
    }

    let space = AwsSpace {
        mode,
        cluster: CLUSTER.to_string(),
        region: REGION.to_string(),
        account,
        issuer,
        provider_arn,
        namespaces,
        roles,
        associations,
    };
    helm_components(kube, &space.namespaces, &|c| space.annotation(c), None);
    space
}

impl AwsSpace {
    /// The annotation Helm gives component `c`'s service account: the role ARN with IRSA,
    /// none with pod identity.
    pub fn annotation(&self, c: Component) -> Option<(&'static str, String)> {
        (self.mode != Mode::PodIdentity).then(|| (ROLE_ARN, self.role(c).arn.clone()))
    }

    /// A control plane created after the manual setup (index `i`): its host namespace and
    /// components, annotated Space-wide as Helm does, and nothing on the cloud side (no trust
    /// subject, no association). Returns its host namespace.
    #[track_caller]
    pub fn add_control_plane(&self, kube: &FakeKube, i: usize) -> String {
        later_control_plane(kube, i, &|c| self.annotation(c), None)
    }

    /// The role of component `c`.
    pub fn role(&self, c: Component) -> &AwsRole {
        self.roles
            .iter()
            .find(|r| r.component == c)
            .expect("every component has a role")
    }

    /// The ids these roles and associations have in `ms` now: `<component>.arn`,
    /// `<component>.roleId`, `<component>.association.<namespace>` (every association of the
    /// cluster for a component's service account), and `oidcProvider` when there is one for
    /// the issuer. A role that is gone has no entry.
    #[track_caller]
    pub fn read_ids(&self, ms: &Ministack) -> Ids {
        let mut ids = Ids::new();
        let roles = aws(ms, &["iam", "list-roles"]);
        for held in roles["Roles"].as_array().into_iter().flatten() {
            let name = text(held, "/RoleName");
            if let Some(role) = self.roles.iter().find(|r| r.name == name) {
                let key = role.component.key();
                ids.insert(format!("{key}.arn"), text(held, "/Arn"));
                ids.insert(format!("{key}.roleId"), text(held, "/RoleId"));
            }
        }
        let listed = aws(
            ms,
            &[
                "eks",
                "list-pod-identity-associations",
                "--cluster-name",
                &self.cluster,
            ],
        );
        for a in listed["associations"].as_array().into_iter().flatten() {
            let sa = text(a, "/serviceAccount");
            if let Some(c) = Component::of_service_account(&sa) {
                let ns = text(a, "/namespace");
                ids.insert(
                    format!("{}.association.{ns}", c.key()),
                    text(a, "/associationId"),
                );
            }
        }
        let providers = aws(ms, &["iam", "list-open-id-connect-providers"]);
        let provider = self
            .issuer
            .split_once("://")
            .map_or(self.issuer.as_str(), |(_, p)| p);
        for p in providers["OpenIDConnectProviderList"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let arn = text(p, "/Arn");
            if arn.ends_with(&format!(":oidc-provider/{provider}")) {
                ids.insert("oidcProvider".to_string(), arn);
            }
        }
        ids
    }

    /// An idplan spec for this Space whose components name the team's roles; `extra` goes
    /// into each component's mapping (`adopt: true`).
    pub fn spec(&self, planes: Planes, extra: &str) -> String {
        let mode = match self.mode {
            Mode::IrsaExact => "      mode: irsa\n",
            Mode::IrsaWildcard => "      mode: irsa\n      subjects: wildcard\n",
            Mode::PodIdentity => "      mode: pod-identity\n",
        };
        let extra = more(extra);
        format!(
            "version: 1\nspaces:\n  - name: prod\n{}    aws:\n      region: {}\n      \
             cluster: {}\n{mode}    components:\n      backup: {{ bucket: {BACKUP_BUCKET}, name: \
             {}{extra} }}\n      billing: {{ bucket: {BILLING_BUCKET}, name: {}{extra} }}\n      \
             sharedSecrets: {{ secrets: [\"{}\"], name: {}{extra} }}\n",
            planes.block(&self.namespaces),
            self.region,
            self.cluster,
            role_name(Component::Backup),
            role_name(Component::Billing),
            secrets_arn(&self.account),
            role_name(Component::SharedSecrets),
        )
    }
}
