//! The fake Google API server against Google's discovery documents
//! (`../shared/reference/gcp/*-api.json`): every call idplan makes is a method of the API at
//! that path and HTTP method, and every key of the fake's answers is a property of the
//! method's response schema (recursively).

use serde_json::{Value, json};

use crate::support::{FakeGoogle, repo_path};

fn discovery(name: &str) -> Value {
    let path = repo_path(&format!("../shared/reference/gcp/{name}-api.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("a discovery document is JSON")
}

/// Every method of a discovery document: (HTTP method, full flat path, method).
fn methods(doc: &Value) -> Vec<(String, String, Value)> {
    fn walk(resources: &Value, base: &str, out: &mut Vec<(String, String, Value)>) {
        for (_, r) in resources.as_object().into_iter().flatten() {
            for (_, m) in r["methods"].as_object().into_iter().flatten() {
                let path = m["flatPath"].as_str().or(m["path"].as_str()).unwrap_or("");
                out.push((
                    m["httpMethod"].as_str().unwrap_or("").to_string(),
                    format!("{base}{path}"),
                    m.clone(),
                ));
            }
            walk(&r["resources"], base, out);
        }
    }
    let mut out = Vec::new();
    let base = format!("/{}", doc["servicePath"].as_str().unwrap_or(""));
    walk(&doc["resources"], &base, &mut out);
    out
}

/// Whether a concrete path matches a flat path template (`{x}` is one segment or part of one).
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if let Some(open) = t.find('{') {
                let close = t.find('}').unwrap_or(t.len() - 1);
                let (prefix, suffix) = (&t[..open], &t[close + 1..]);
                // A placeholder never takes a `:verb`.
                p.starts_with(prefix)
                    && p.ends_with(suffix)
                    && p.len() > prefix.len() + suffix.len()
                    && !p[prefix.len()..p.len() - suffix.len()].contains(':')
            } else {
                t == p
            }
        })
}

/// The method of `doc` that serves `method path`; panics when there is none.
fn method_for(doc: &Value, method: &str, path: &str) -> Value {
    methods(doc)
        .into_iter()
        .filter(|(m, t, _)| m == method && matches(t, path))
        // The most specific template: fewest placeholders.
        .min_by_key(|(_, t, _)| t.matches('{').count())
        .map(|(_, _, m)| m)
        .unwrap_or_else(|| panic!("{method} {path} is no method of {}", doc["name"]))
}

/// Every key of `value` is a property of `schema` (following `$ref`s into `doc`).
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = match schema["$ref"].as_str() {
        Some(name) => &doc["schemas"][name],
        None => schema,
    };
    match value {
        Value::Object(map) => {
            if schema["additionalProperties"].is_object() {
                for (k, v) in map {
                    check(
                        doc,
                        &schema["additionalProperties"],
                        v,
                        &format!("{at}.{k}"),
                        problems,
                    );
                }
                return;
            }
            for (k, v) in map {
                let prop = &schema["properties"][k];
                if prop.is_null() {
                    problems.push(format!("{at}.{k} is not in the schema"));
                } else {
                    check(doc, prop, v, &format!("{at}.{k}"), problems);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check(doc, &schema["items"], v, &format!("{at}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

#[test]
fn the_fake_answers_as_the_discovery_documents_say() {
    let fake = FakeGoogle::start();
    fake.seed(json!({
        "projects": [{ "id": "acme-spaces", "number": "123456789012" }],
        "clusters": [{ "project": "acme-spaces", "location": "us-central1", "name": "spaces",
                       "workloadPool": "acme-spaces.svc.id.goog" }],
        "buckets": [{ "name": "acme-backup", "project": "acme-spaces" }],
        "secrets": [{ "project": "acme-spaces", "id": "token" }],
    }));
    let sa = "spaces-prod-backup@acme-spaces.iam.gserviceaccount.com";
    let condition = json!({ "title": "t", "expression": "true" });
    let policy = |etag: &Value| {
        json!({ "version": 3, "etag": etag, "bindings": [
            { "role": "roles/viewer", "members": ["user:a@example.com"], "condition": condition }
        ] })
    };
    // (API, method, path, body): in an order that makes each call succeed.
    let calls: Vec<(&str, &str, String, Option<Value>)> = vec![
        (
            "cloudresourcemanager",
            "GET",
            "/v3/projects/acme-spaces".into(),
            None,
        ),
        (
            "cloudresourcemanager",
            "POST",
            "/v3/projects/acme-spaces:getIamPolicy".into(),
            Some(json!({ "options": { "requestedPolicyVersion": 3 } })),
        ),
        (
            "container",
            "GET",
            "/v1/projects/acme-spaces/locations/us-central1/clusters/spaces".into(),
            None,
        ),
        (
            "container",
            "GET",
            "/v1/projects/acme-spaces/locations/-/clusters".into(),
            None,
        ),
        ("storage", "GET", "/storage/v1/b/acme-backup".into(), None),
        (
            "storage",
            "GET",
            "/storage/v1/b/acme-backup/iam?optionsRequestedPolicyVersion=3".into(),
            None,
        ),
        (
            "secretmanager",
            "GET",
            "/v1/projects/acme-spaces/secrets/token".into(),
            None,
        ),
        (
            "secretmanager",
            "GET",
            "/v1/projects/acme-spaces/secrets/token:getIamPolicy?options.requestedPolicyVersion=3"
                .into(),
            None,
        ),
        (
            "iam",
            "POST",
            "/v1/projects/acme-spaces/serviceAccounts".into(),
            Some(
                json!({ "accountId": "spaces-prod-backup", "serviceAccount": { "displayName": "d", "description": "x" } }),
            ),
        ),
        (
            "iam",
            "GET",
            format!("/v1/projects/acme-spaces/serviceAccounts/{sa}"),
            None,
        ),
        (
            "iam",
            "GET",
            "/v1/projects/acme-spaces/serviceAccounts?pageSize=1".into(),
            None,
        ),
        (
            "iam",
            "PATCH",
            format!("/v1/projects/acme-spaces/serviceAccounts/{sa}"),
            Some(json!({ "serviceAccount": { "description": "y" }, "updateMask": "description" })),
        ),
        (
            "iam",
            "POST",
            format!(
                "/v1/projects/acme-spaces/serviceAccounts/{sa}:getIamPolicy?options.requestedPolicyVersion=3"
            ),
            None,
        ),
    ];
    let mut problems = Vec::new();
    let mut check_call = |api: &str, method: &str, path: &str, body: Option<&Value>| -> Value {
        let doc = discovery(api);
        let bare = path.split('?').next().unwrap();
        let m = method_for(&doc, method, bare);
        let (status, answer) = fake.call_status(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {answer:#}");
        check(
            &doc,
            &m["response"],
            &answer,
            &format!("{method} {bare}"),
            &mut problems,
        );
        answer
    };
    for (api, method, path, body) in &calls {
        check_call(api, method, path, body.as_ref());
    }
    // setIamPolicy with the etag just read, on every kind of policy.
    let sets = [
        (
            "cloudresourcemanager",
            "/v3/projects/acme-spaces:getIamPolicy",
            "POST",
            "/v3/projects/acme-spaces:setIamPolicy",
            true,
        ),
        (
            "storage",
            "/storage/v1/b/acme-backup/iam?optionsRequestedPolicyVersion=3",
            "PUT",
            "/storage/v1/b/acme-backup/iam",
            false,
        ),
        (
            "secretmanager",
            "/v1/projects/acme-spaces/secrets/token:getIamPolicy?options.requestedPolicyVersion=3",
            "POST",
            "/v1/projects/acme-spaces/secrets/token:setIamPolicy",
            true,
        ),
    ];
    for (api, get, method, set, wrapped) in sets {
        let get_method = if api == "secretmanager" || api == "storage" {
            "GET"
        } else {
            "POST"
        };
        let current = fake.call(
            get_method,
            get,
            Some(&json!({ "options": { "requestedPolicyVersion": 3 } })),
        );
        let body = policy(&current["etag"]);
        let body = if wrapped {
            json!({ "policy": body })
        } else {
            body
        };
        let answer = check_call(api, method, set, Some(&body));
        assert_eq!(answer["version"], 3, "{answer:#}");
        // The same etag again is stale now: Google refuses it.
        let (status, error) = fake.call_status(method, set, Some(&body));
        let want = if api == "storage" { 412 } else { 409 };
        assert_eq!(status, want, "{set}: {error:#}");
        assert_eq!(error["error"]["code"], want);
        assert!(error["error"]["message"].is_string());
        if api != "storage" {
            assert_eq!(error["error"]["status"], "ABORTED");
        }
        // Asked for version 1, a conditional binding is shown with its role renamed.
        if api == "secretmanager" {
            let v1 = fake.call(
                "GET",
                "/v1/projects/acme-spaces/secrets/token:getIamPolicy",
                None,
            );
            assert_eq!(v1["version"], 1);
            assert!(
                v1["bindings"][0]["role"]
                    .as_str()
                    .unwrap()
                    .contains("_withcond_")
            );
        }
    }
    let sa_policy = fake.call(
        "POST",
        &format!("/v1/projects/acme-spaces/serviceAccounts/{sa}:getIamPolicy"),
        None,
    );
    check_call(
        "iam",
        "POST",
        &format!("/v1/projects/acme-spaces/serviceAccounts/{sa}:setIamPolicy"),
        Some(
            &json!({ "policy": { "etag": sa_policy["etag"], "bindings": [
            { "role": "roles/iam.workloadIdentityUser",
              "members": ["serviceAccount:acme-spaces.svc.id.goog[mxp-a-system/vector]"] }
        ] } }),
        ),
    );
    check_call(
        "iam",
        "DELETE",
        &format!("/v1/projects/acme-spaces/serviceAccounts/{sa}"),
        None,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Missing things: 404 with Google's error body (403 for a project, as Resource Manager).
    for (path, code, status) in [
        (
            format!("/v1/projects/acme-spaces/serviceAccounts/{sa}"),
            404,
            "NOT_FOUND",
        ),
        (
            "/v1/projects/acme-spaces/locations/us-central1/clusters/gone".into(),
            404,
            "NOT_FOUND",
        ),
        (
            "/v1/projects/acme-spaces/secrets/gone".into(),
            404,
            "NOT_FOUND",
        ),
        ("/v3/projects/gone-project".into(), 403, "PERMISSION_DENIED"),
    ] {
        let (got, error) = fake.call_status("GET", &path, None);
        assert_eq!(
            (got, &error["error"]["status"]),
            (code, &json!(status)),
            "{path}: {error:#}"
        );
    }
    let (got, error) = fake.call_status("GET", "/storage/v1/b/gone", None);
    assert_eq!(got, 404);
    assert_eq!(error["error"]["errors"][0]["reason"], "notFound");
}
