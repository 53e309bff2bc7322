//! [`Ministack`]: a private ministack (IAM, STS and EKS, through
//! `tests/support/ministack_launcher.py`, which restores EKS's paging) for one test; [`Iam`]
//! reads what IAM holds; `TestDir::idplan` runs idplan against the ministack.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::peer::{Launch, Peer, installed};
use super::{Output, TestDir, repo_root, run};

const INSTALL_HINT: &str = "ministack is not installed: run scripts/install-test-deps.sh";

/// A private ministack serving IAM, STS and EKS on `127.0.0.1:port`.
pub struct Ministack {
    /// `http://127.0.0.1:<port>`: the endpoint for every service.
    pub endpoint: String,
    pub port: u16,
    /// How long it took from spawn to a healthy answer.
    pub startup: Duration,
    peer: Peer,
}

impl Ministack {
    /// Starts ministack through the launcher on a free port and waits for it to be healthy.
    /// Panics, with a way out, when ministack is not installed or does not come up.
    #[track_caller]
    pub fn start() -> Ministack {
        Ministack::start_with(&[])
    }

    /// As [`Ministack::start`], with more launcher arguments (`--throttle-every N`).
    #[track_caller]
    pub fn start_with(launcher_args: &[&str]) -> Ministack {
        let args = launcher_args.iter().map(|a| a.to_string()).collect();
        let health = "/_ministack/health";
        let launcher = Launch::script(
            python(),
            "ministack_launcher.py",
            args,
            health,
            INSTALL_HINT.into(),
        );
        let peer = Peer::start(&Launch {
            name: "ministack".into(),
            healthy: |status, body| status == 200 && body.contains("\"eks\""),
            ..launcher
        });
        Ministack {
            endpoint: peer.endpoint.clone(),
            port: peer.port,
            startup: peer.startup,
            peer,
        }
    }

    /// Freezes (`STOP`) or resumes (`CONT`) this ministack: its clients wait meanwhile.
    pub fn signal(&self, signal: &str) {
        self.peer.signal(signal);
    }

    /// The environment for the idplan binary (and any AWS SDK) to talk to this ministack:
    /// its endpoint, static test credentials and us-east-1. The caller's `AWS_*` variables
    /// must not be inherited besides these (see [`TestDir::ministack_command`]); the shared
    /// config files point nowhere, so no profile on the machine leaks in.
    pub fn env(&self) -> Vec<(String, String)> {
        let missing = self.peer.dir.join("no-such-aws-file");
        let missing = missing.to_string_lossy().into_owned();
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", missing.as_str()),
            ("AWS_SHARED_CREDENTIALS_FILE", missing.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// An SDK config for this ministack: its endpoint, static test credentials, us-east-1,
    /// the latest behavior version.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let credentials =
            aws_sdk_sts::config::Credentials::new("test", "test", None, None, "idplan-tests");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// Creates an EKS cluster named `name` and returns its OIDC issuer URL (ministack's is
    /// `http://127.0.0.1:<port>/oidc/id/<ID>`).
    pub async fn create_cluster(&self, name: &str) -> String {
        let eks = aws_sdk_eks::Client::new(&self.sdk_config().await);
        let vpc = aws_sdk_eks::types::VpcConfigRequest::builder()
            .subnet_ids("subnet-00000000000000001")
            .subnet_ids("subnet-00000000000000002")
            .build();
        let out = eks
            .create_cluster()
            .name(name)
            .role_arn("arn:aws:iam::000000000000:role/eks")
            .resources_vpc_config(vpc)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating EKS cluster {name}: {e:?}"));
        out.cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .unwrap_or_else(|| panic!("cluster {name} has no identity.oidc.issuer: {out:?}"))
            .to_string()
    }
}

/// The Python that has ministack (`IDPLAN_MINISTACK_PYTHON`, else `.venv-ministack`).
#[track_caller]
fn python() -> PathBuf {
    installed(
        "IDPLAN_MINISTACK_PYTHON",
        ".venv-ministack/bin/python",
        INSTALL_HINT,
    )
}

/// What ministack's own IAM evaluator decides for `trust` on the requests EKS Pod Identity
/// makes for pods (`tests/support/trust_eval.py`): `requests` is a list of `{name, account,
/// region, cluster, namespace, service_account}`; the answer is, per name, whether
/// `sts:AssumeRole` and `sts:TagSession` are allowed.
#[track_caller]
pub fn judge_pod_identity_trust(trust: &Value, requests: &Value) -> Value {
    use std::io::Write;
    let helper = repo_root().join("tests/support/trust_eval.py");
    let mut child = Command::new(python())
        .arg(&helper)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", helper.display()));
    let input = serde_json::json!({ "trust": trust, "requests": requests });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        helper.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the helper answers JSON")
}

/// What IAM holds, read through the SDK.
pub struct Iam {
    pub client: aws_sdk_iam::Client,
}

impl Iam {
    pub async fn new(ms: &Ministack) -> Iam {
        Iam {
            client: aws_sdk_iam::Client::new(&ms.sdk_config().await),
        }
    }

    /// The role `name`; `None` when IAM has none.
    pub async fn role(&self, name: &str) -> Option<aws_sdk_iam::types::Role> {
        match self.client.get_role().role_name(name).send().await {
            Ok(out) => out.role().cloned(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                None
            }
            Err(e) => panic!("GetRole {name}: {e:?}"),
        }
    }

    /// The trust policy of role `name`, which must exist.
    pub async fn trust(&self, name: &str) -> Value {
        let role = self
            .role(name)
            .await
            .unwrap_or_else(|| panic!("role {name} exists"));
        idplan::policy::parse_returned(role.assume_role_policy_document().unwrap()).unwrap()
    }

    /// The inline policy `idplan` of role `role`, which must exist.
    pub async fn policy(&self, role: &str) -> Value {
        let out = self
            .client
            .get_role_policy()
            .role_name(role)
            .policy_name("idplan")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetRolePolicy {role}: {e:?}"));
        idplan::policy::parse_returned(out.policy_document()).unwrap()
    }

    /// The ARNs of every OIDC provider.
    pub async fn oidc_providers(&self) -> Vec<String> {
        let out = self
            .client
            .list_open_id_connect_providers()
            .send()
            .await
            .expect("ListOpenIDConnectProviders");
        out.open_id_connect_provider_list()
            .iter()
            .filter_map(|p| p.arn().map(str::to_string))
            .collect()
    }

    /// The names of every role.
    pub async fn role_names(&self) -> std::collections::BTreeSet<String> {
        let out = self.client.list_roles().send().await.unwrap();
        out.roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect()
    }
}

impl TestDir {
    /// Runs the idplan binary in this directory against `ms`.
    pub fn idplan(&self, ms: &Ministack, args: &[&str]) -> Output {
        self.idplan_with_env(ms, args, &[])
    }

    /// As [`TestDir::idplan`], with more environment variables.
    pub fn idplan_with_env(&self, ms: &Ministack, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.ministack_command(ms, args);
        cmd.envs(env.iter().copied());
        run(cmd, args)
    }

    /// The idplan binary with `args` in this directory against `ms`: every inherited `AWS_*`
    /// variable (AWS_PROFILE, AWS_SESSION_TOKEN, ...) cleared and [`Ministack::env`] set.
    pub fn ministack_command(&self, ms: &Ministack, args: &[&str]) -> Command {
        let mut cmd = self.command_without(args, &["AWS_"]);
        cmd.envs(ms.env());
        cmd
    }
}

/// An IAM tag `key=value`, as a team puts its own beside idplan's.
pub fn tag(key: &str, value: &str) -> aws_sdk_iam::types::Tag {
    aws_sdk_iam::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("a tag has a key and a value")
}
