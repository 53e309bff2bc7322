//! AWS: the `aws:` block (an EKS cluster, IRSA or pod identity) and its components: S3
//! buckets, Secrets Manager ARNs and IAM role names.

use super::{BucketRule, Build, Check, Checked, Named, Rules, Written, show};
use crate::spec::names::{is_bucket_name, is_cluster_name, is_region, is_role_name};
use crate::spec::schema::{
    At, ROLE_NAME_MAX, RawAws, RawAwsMode, RawBucketComponent, RawSecretsComponent, RawSubjects,
    TRUST_POLICY_QUOTA_MAX,
};
use crate::spec::{
    AwsAccess, AwsMode, AwsSpace, Cloud, ComponentKind, DEFAULT_TRUST_POLICY_QUOTA, Subjects,
};

/// The `aws:` block; `None` when it has errors.
pub(super) fn block(check: &mut Check, space: &str, raw: At<RawAws>) -> Option<Build<AwsAccess>> {
    let field = &format!("{space}.aws");
    let location = raw.location();
    let raw = raw.into_value();
    let errors_before = check.errors.len();

    let region = raw.region.value();
    let region_shown = show(region);
    if !is_region(region) {
        check.error(
            raw.region.location(),
            format!("{field}.region"),
            format!("invalid region `{region_shown}`: expected an AWS region such as `us-east-1`"),
        );
    }
    let cluster = raw.cluster.value();
    let cluster_shown = show(cluster);
    if !is_cluster_name(cluster) {
        check.error(
            raw.cluster.location(),
            format!("{field}.cluster"),
            format!(
                "invalid EKS cluster name `{cluster_shown}`: expected 1 to 100 letters, \
                 digits, `-` and `_`, starting with a letter or digit"
            ),
        );
    }
    let mode = match check.keyword(field, "mode", raw.mode.as_ref(), &RawAwsMode::KEYWORDS) {
        None | Some(RawAwsMode::Irsa) => AwsMode::Irsa,
        Some(RawAwsMode::PodIdentity) => AwsMode::PodIdentity,
    };
    let subjects = match check.keyword(
        field,
        "subjects",
        raw.subjects.as_ref(),
        &RawSubjects::KEYWORDS,
    ) {
        None | Some(RawSubjects::Exact) => Subjects::Exact,
        Some(RawSubjects::Wildcard) => Subjects::Wildcard,
    };
    if let (AwsMode::PodIdentity, Subjects::Wildcard, Some(at)) =
        (mode, subjects, raw.subjects.as_ref())
    {
        check.error(
            at.location(),
            format!("{field}.subjects"),
            "pod identity has no wildcards: remove `subjects` or use mode irsa",
        );
    }
    let trust_policy_quota = match &raw.trust_policy_quota {
        None => DEFAULT_TRUST_POLICY_QUOTA,
        Some(q) => match usize::try_from(*q.value()) {
            Ok(n) if (1..=TRUST_POLICY_QUOTA_MAX).contains(&n) => n,
            _ => {
                check.error(
                    q.location(),
                    format!("{field}.trustPolicyQuota"),
                    format!(
                        "expected a number of characters from 1 to {TRUST_POLICY_QUOTA_MAX} \
                         (IAM's largest trust policy quota), found {}",
                        q.value()
                    ),
                );
                DEFAULT_TRUST_POLICY_QUOTA
            }
        },
    };
    (check.errors.len() == errors_before).then(|| -> Build<_> {
        Box::new(move |components| {
            Cloud::Aws(AwsSpace {
                region: raw.region.into_value(),
                cluster: raw.cluster.into_value(),
                mode,
                subjects,
                trust_policy_quota,
                location,
                components,
            })
        })
    })
}

const S3: BucketRule = BucketRule {
    what: "S3",
    valid: is_bucket_name,
    expected: "expected 3 to 63 lower-case letters, digits, `.` and `-`, starting and ending \
               with a letter or digit",
};

/// AWS's rules; also those of the components of a space without exactly one cloud.
pub(super) struct AwsRules;

impl Rules for AwsRules {
    type Access = AwsAccess;

    fn secrets(&self, check: &mut Check, c: Written<RawSecretsComponent>) -> Checked<AwsAccess> {
        check.no_key_vault(&c);
        let field = &c.field;
        let secrets = match c.raw.secrets {
            None => {
                check.error(
                    c.location,
                    field,
                    "missing required key `secrets` (the ARNs of the secrets it may read)",
                );
                None
            }
            Some(list) => {
                let empty = "expected at least one secret ARN";
                let secrets = check.secret_list(field, list, empty, |check, f, _, at, arn| {
                    if !arn.starts_with("arn:") {
                        let shown = show(arn);
                        let message =
                            format!("expected a secret ARN starting with `arn:`, found `{shown}`");
                        check.error(at, f, message);
                    }
                });
                Some(secrets)
            }
        };
        let access = secrets.map(AwsAccess::Secrets);
        let name = self.name(check, field, c.raw.name);
        Checked::new(c.kind, c.location, name, access)
    }

    fn bucket(&self, check: &mut Check, c: Written<RawBucketComponent>) -> Checked<AwsAccess> {
        check.bucket_component(self, c, &S3, AwsAccess::Bucket)
    }

    /// An IAM role name.
    fn name(&self, check: &mut Check, component: &str, raw: Option<At<String>>) -> Named {
        let raw = raw?;
        let at = raw.location();
        let name = raw.into_value();
        let len = name.chars().count();
        let name_shown = show(&name);
        if !is_role_name(&name, usize::MAX) {
            check.error(
                at,
                format!("{component}.name"),
                format!(
                    "invalid IAM role name `{name_shown}`: expected letters, digits and `+=,.@_-`"
                ),
            );
        } else if len > ROLE_NAME_MAX {
            check.error(
                at,
                format!("{component}.name"),
                format!("IAM role name is {len} characters: expected at most {ROLE_NAME_MAX}"),
            );
        }
        Some((name, at))
    }

    fn default_name_error(&self, name: &str) -> Option<String> {
        let len = name.chars().count();
        (len > ROLE_NAME_MAX).then(|| {
            format!(
                "the default role name `{}` is {len} characters, more than IAM's \
                 {ROLE_NAME_MAX}: set an explicit `name`",
                show(name)
            )
        })
    }

    fn taken(&self, name: &str, other: ComponentKind) -> String {
        format!("role name `{name}` is already the role of `{other}`: set a different `name`")
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::fixtures::{VALID, ok, one, with_line};
    use crate::spec::{AwsMode, Cloud, Subjects};

    #[test]
    fn aws_fields() {
        for bad in [
            "us-east",
            "US-EAST-1",
            "useast-1",
            "u-east-1",
            "us--1",
            "us-east-1a",
            "us-east-",
        ] {
            let (at, msg) = one(&with_line(8, &format!("      region: {bad}")));
            assert_eq!(at, "8:15 spaces[0].aws.region", "{bad}");
            assert!(msg.starts_with(&format!("invalid region `{bad}`")), "{msg}");
        }
        for good in ["us-east-1", "us-gov-west-1", "ap-southeast-22"] {
            ok(&with_line(8, &format!("      region: {good}")));
        }
        for bad in ["-x", "_x", "a b", &"a".repeat(101)] {
            let (at, _) = one(&with_line(9, &format!("      cluster: \"{bad}\"")));
            assert_eq!(at, "9:16 spaces[0].aws.cluster", "{bad}");
        }
        ok(&with_line(
            9,
            &format!("      cluster: A{}", "_-9".repeat(33)),
        ));
        for bad in ["0", "-1", "8193"] {
            let (at, msg) = one(&with_line(12, &format!("      trustPolicyQuota: {bad}")));
            assert_eq!(at, "12:25 spaces[0].aws.trustPolicyQuota");
            assert!(msg.ends_with(&format!("found {bad}")), "{msg}");
        }
        let spec = ok(&with_line(12, "      trustPolicyQuota: 8192"));
        let Cloud::Aws(aws) = &spec.spaces[0].cloud else {
            panic!("an AWS space")
        };
        assert_eq!(aws.trust_policy_quota, 8192);
    }

    #[test]
    fn pod_identity_has_no_wildcards() {
        let (at, msg) = one(&with_line(10, "      mode: pod-identity"));
        assert_eq!(at, "11:17 spaces[0].aws.subjects");
        assert_eq!(
            msg,
            "pod identity has no wildcards: remove `subjects` or use mode irsa"
        );
        let spec =
            ok(&with_line(11, "      subjects: exact").replace("mode: irsa", "mode: pod-identity"));
        let Cloud::Aws(aws) = &spec.spaces[0].cloud else {
            panic!("an AWS space")
        };
        assert_eq!(
            (aws.mode, aws.subjects),
            (AwsMode::PodIdentity, Subjects::Exact)
        );
    }

    #[test]
    fn keywords_are_strict() {
        let (at, msg) = one(&with_line(10, "      mode: yes"));
        assert_eq!(at, "10:13 spaces[0].aws.mode");
        assert_eq!(
            msg,
            "unknown value `yes`: expected one of `irsa`, `pod-identity`"
        );
        let (at, _) = one(&with_line(10, "      mode: Irsa"));
        assert_eq!(at, "10:13 spaces[0].aws.mode");
        // The externally tagged enum spelling is not a keyword.
        let (at, msg) = one(&with_line(10, "      mode: {irsa: }"));
        assert_eq!(at, "10:13 spaces[0].aws.mode");
        assert!(msg.starts_with("expected a string"), "{msg}");
        let (at, _) = one(&with_line(11, "      subjects: true"));
        assert_eq!(at, "11:17 spaces[0].aws.subjects");
    }

    #[test]
    fn components() {
        let (at, msg) = one(&with_line(15, "      billing:       { name: x }"));
        assert_eq!(at, "15:22 spaces[0].components.billing");
        assert_eq!(
            msg,
            "missing required key `bucket` (the name of the S3 bucket)"
        );
        let (at, _) = one(&with_line(15, "      billing:       { bucket: Acme }"));
        assert_eq!(at, "15:32 spaces[0].components.billing.bucket");
        for bad in ["ab", "-abc", "abc-", "a_bc", &"a".repeat(64)] {
            let (at, _) = one(&with_line(
                15,
                &format!("      billing:       {{ bucket: \"{bad}\" }}"),
            ));
            assert_eq!(at, "15:32 spaces[0].components.billing.bucket", "{bad}");
        }
        ok(&with_line(
            15,
            &format!("      billing:       {{ bucket: {} }}", "a.b-c".repeat(12)),
        ));
        let (at, msg) = one(&with_line(16, "      sharedSecrets: { name: x }"));
        assert_eq!(at, "16:22 spaces[0].components.sharedSecrets");
        assert!(msg.starts_with("missing required key `secrets`"));
        let (at, msg) = one(&with_line(16, "      sharedSecrets: { secrets: [] }"));
        assert_eq!(at, "16:33 spaces[0].components.sharedSecrets.secrets");
        assert_eq!(msg, "expected at least one secret ARN");
        let (at, msg) = one(&with_line(
            16,
            "      sharedSecrets: { secrets: [\"arn:ok\", spaces/*] }",
        ));
        assert_eq!(at, "16:44 spaces[0].components.sharedSecrets.secrets[1]");
        assert_eq!(
            msg,
            "expected a secret ARN starting with `arn:`, found `spaces/*`"
        );
        let text = VALID.replace(
            "      billing:\n        bucket: acme-dev-billing\n",
            "      {}\n",
        );
        let text = text.replace("    components:\n      {}\n", "    components: {}\n");
        let (at, msg) = one(&text);
        assert_eq!(at, "23:17 spaces[1].components");
        assert_eq!(
            msg,
            "expected at least one of `backup`, `billing`, `sharedSecrets`"
        );
    }

    #[test]
    fn role_names() {
        let name = |n: &str| {
            with_line(
                14,
                &format!("      backup:        {{ bucket: acme-spaces-backup, name: \"{n}\" }}"),
            )
        };
        ok(&name(&"a".repeat(64)));
        ok(&name("Role_+=,.@-9"));
        let (at, msg) = one(&name(&"a".repeat(65)));
        assert_eq!(at, "14:58 spaces[0].components.backup.name");
        assert_eq!(msg, "IAM role name is 65 characters: expected at most 64");
        let (at, msg) = one(&name("a/b"));
        assert_eq!(at, "14:58 spaces[0].components.backup.name");
        assert!(msg.starts_with("invalid IAM role name `a/b`"));
        // An explicit name equal to another component's default name.
        let (at, msg) = one(&name("spaces-prod-billing"));
        assert_eq!(at, "15:22 spaces[0].components.billing");
        assert_eq!(
            msg,
            "role name `spaces-prod-billing` is already the role of `backup`: set a different `name`"
        );
        let text = with_line(
            15,
            "      billing:       { bucket: acme-spaces-billing, name: prod-backup }",
        );
        let (at, _) = one(&text);
        assert_eq!(at, "15:59 spaces[0].components.billing.name");
    }
}
