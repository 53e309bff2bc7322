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
            "/storage/v1/b?project=acme-spaces".into(),
            None,
        ),
        (
            "secretmanager",
            "GET",
            "/v1/projects/acme-spaces/secrets".into(),
            None,
        ),
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

    // The lists page: every item once, in pages of at most two, the last without a token;
    // the project of buckets.list by id or by number.
    fake.seed(json!({
        "buckets": [{ "name": "acme-a", "project": "acme-spaces" },
                    { "name": "acme-z", "project": "acme-spaces" }],
        "secrets": [{ "project": "acme-spaces", "id": "a" }, { "project": "acme-spaces", "id": "b" }],
    }));
    for (first, key, want) in [
        (
            "/storage/v1/b?project=acme-spaces",
            "items",
            ["acme-a", "acme-backup", "acme-z"],
        ),
        (
            "/storage/v1/b?project=123456789012",
            "items",
            ["acme-a", "acme-backup", "acme-z"],
        ),
        (
            "/v1/projects/acme-spaces/secrets",
            "secrets",
            [
                "projects/123456789012/secrets/b",
                "projects/123456789012/secrets/a",
                "projects/123456789012/secrets/token",
            ],
        ),
    ] {
        let mut got = Vec::new();
        let mut path = first.to_string();
        loop {
            let page = fake.call("GET", &path, None);
            let items = page[key].as_array().unwrap();
            assert!(items.len() <= 2, "{page:#}");
            got.extend(
                items
                    .iter()
                    .map(|i| i["name"].as_str().unwrap().to_string()),
            );
            let Some(token) = page["nextPageToken"].as_str() else {
                break;
            };
            let sep = if first.contains('?') { '&' } else { '?' };
            path = format!("{first}{sep}pageToken={token}");
        }
        assert_eq!(got, want, "{first}");
    }
    let (got, error) = fake.call_status("GET", "/storage/v1/b", None);
    assert_eq!(got, 400, "project is required: {error:#}");

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

/// The Cloud Storage object calls of idplan's GCS state store (`src/state/gcs.rs`): each is a
/// method of the discovery document with the parameters it sends, answers with the Object
/// schema, and honours `ifGenerationMatch` as Google does (412 conditionNotMet, 0: only if
/// absent), on uploads, reads and deletes alike; every write makes a greater generation.
#[test]
fn the_fake_s_storage_objects_answer_and_check_preconditions_as_google() {
    let fake = FakeGoogle::start();
    fake.seed(json!({ "buckets": [{ "name": "team-state" }] }));
    let doc = discovery("storage");
    let insert = &doc["resources"]["objects"]["methods"]["insert"];
    assert_eq!(
        insert["mediaUpload"]["protocols"]["simple"]["path"], "/upload/storage/v1/b/{bucket}/o",
        "idplan uploads at the simple upload path"
    );
    let parameters = |m: &Value, names: &[&str]| {
        for name in names {
            assert!(
                m["parameters"][name].is_object() || doc["parameters"][name].is_object(),
                "{name} is no parameter of {}",
                m["id"]
            );
        }
    };
    parameters(insert, &["uploadType", "ifGenerationMatch", "name"]);
    let object = "/storage/v1/b/team-state/o/team%2Fstate.json";
    let get = method_for(&doc, "GET", object);
    let delete = method_for(&doc, "DELETE", object);
    assert_eq!(get["id"], "storage.objects.get");
    assert_eq!(delete["id"], "storage.objects.delete");
    parameters(&get, &["alt", "ifGenerationMatch"]);
    parameters(&delete, &["ifGenerationMatch"]);
    assert_eq!(
        method_for(&doc, "POST", "/storage/v1/b/team-state/o")["id"],
        "storage.objects.insert"
    );

    let mut problems = Vec::new();
    let generation = |v: &Value| -> u64 {
        v["generation"]
            .as_str()
            .and_then(|g| g.parse().ok())
            .unwrap_or_else(|| panic!("no generation: {v:#}"))
    };
    // The state object, written with a precondition.
    let upload =
        |data: &str, query: &str| fake.upload("team-state", "team/state.json", data, query);
    // Created only if absent.
    let (status, first) = upload("{\"serial\": 1}", "&ifGenerationMatch=0");
    assert_eq!(status, 200, "{first:#}");
    check(
        &doc,
        &insert["response"],
        &first,
        "objects.insert",
        &mut problems,
    );
    let g1 = generation(&first);
    let (status, error) = upload("{}", "&ifGenerationMatch=0");
    assert_eq!(status, 412, "{error:#}");
    assert_eq!(error["error"]["code"], 412);
    assert_eq!(error["error"]["errors"][0]["reason"], "conditionNotMet");
    // Written over the generation read; a greater generation each time; a stale one refused.
    let (status, second) = upload("{\"serial\": 2}", &format!("&ifGenerationMatch={g1}"));
    assert_eq!(status, 200, "{second:#}");
    let g2 = generation(&second);
    assert!(g2 > g1, "{g2} > {g1}");
    let (status, error) = upload("{}", &format!("&ifGenerationMatch={g1}"));
    assert_eq!(
        (status, &error["error"]["errors"][0]["reason"]),
        (412, &json!("conditionNotMet"))
    );
    // Unconditional (the backup): any generation.
    let (status, _) = fake.upload("team-state", "team/state.json.backup", "{}", "");
    assert_eq!(status, 200);

    let (status, meta) = fake.call_status("GET", object, None);
    assert_eq!(status, 200, "{meta:#}");
    check(&doc, &get["response"], &meta, "objects.get", &mut problems);
    assert_eq!(generation(&meta), g2);
    assert_eq!(meta["name"], "team/state.json");
    assert_eq!(meta["size"], "13");
    assert_eq!(
        fake.object("team-state", "team/state.json").as_deref(),
        Some("{\"serial\": 2}")
    );
    let (status, media) = fake.call_status("GET", &format!("{object}?alt=media"), None);
    assert_eq!(
        (status, &media["serial"]),
        (200, &json!(2)),
        "the object's bytes"
    );
    let (status, _) = fake.call_status(
        "GET",
        &format!("{object}?alt=media&ifGenerationMatch={g1}"),
        None,
    );
    assert_eq!(status, 412);

    // Deleted only at the generation given; nothing deleted otherwise.
    let (status, error) =
        fake.call_status("DELETE", &format!("{object}?ifGenerationMatch={g1}"), None);
    assert_eq!(
        (status, &error["error"]["errors"][0]["reason"]),
        (412, &json!("conditionNotMet"))
    );
    assert!(fake.object("team-state", "team/state.json").is_some());
    let (status, _) = fake.call_status("DELETE", &format!("{object}?ifGenerationMatch={g2}"), None);
    assert_eq!(status, 204);
    assert!(fake.object("team-state", "team/state.json").is_none());
    // Missing: the object, then the bucket (404 notFound, Google's error body).
    for path in [
        object.to_string(),
        format!("{object}?alt=media"),
        "/storage/v1/b/gone/o/x".into(),
    ] {
        let (status, error) = fake.call_status("GET", &path, None);
        assert_eq!(
            (status, &error["error"]["errors"][0]["reason"]),
            (404, &json!("notFound")),
            "{path}"
        );
        assert!(error["error"]["message"].is_string());
    }
    let (status, _) = fake.call_status("DELETE", object, None);
    assert_eq!(status, 404);
    let (status, error) = fake.upload("gone", "x", "{}", "&ifGenerationMatch=0");
    assert_eq!(
        (status, &error["error"]["errors"][0]["reason"]),
        (404, &json!("notFound"))
    );
    // A generation other than 0 on an absent object does not hold either.
    let (status, _) = upload("{}", &format!("&ifGenerationMatch={g2}"));
    assert_eq!(status, 412);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
