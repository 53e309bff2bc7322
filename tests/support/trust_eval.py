#!/usr/bin/env python3
"""Judge an IAM trust policy with ministack's own evaluator, for requests EKS Pod Identity makes.

    .venv-ministack/bin/python tests/support/trust_eval.py < request.json

ministack (1.5.33) has no AssumeRoleForPodIdentity, so no request of a pod can reach a pod
identity role's trust through its API. What EKS does for a pod is an `sts:AssumeRole` and an
`sts:TagSession` on the role by the service principal `pods.eks.amazonaws.com`, with the
cluster's account as `aws:SourceAccount`, the cluster's ARN as `aws:SourceArn`, and the
session tags of the pod (`eks-cluster-arn`, `eks-cluster-name`, `kubernetes-namespace`,
`kubernetes-service-account`, `kubernetes-pod-name`, `kubernetes-pod-uid`). This helper builds
that request context and asks `ministack.core.iam_evaluator.evaluate_trust_policy`, the
function ministack's STS calls for AssumeRole under AUTH=true.

ministack models a call by a service as one made with the account root's credentials (its
Service principals match the caller `arn:aws:iam::<account>:root`), so the caller is the root
of the pod's account.

Input (JSON on stdin):
    {"trust": <policy document>,
     "requests": [{"name": "...", "account": "123456789012", "region": "us-east-1",
                   "cluster": "spaces-prod", "namespace": "...", "service_account": "..."}]}
Output (JSON on stdout): {"<name>": {"sts:AssumeRole": true|false, "sts:TagSession": ...}}
"""

import json
import os
import sys

# Before ministack is imported: nothing of the caller's environment changes how it judges.
os.environ["AUTH"] = "true"
os.environ["DOCKER_HOST"] = "unix:///nonexistent/idplan-tests-no-docker.sock"

from ministack.core.iam_evaluator import EvalContext, evaluate_trust_policy  # noqa: E402

ACTIONS = ("sts:AssumeRole", "sts:TagSession")


def session_tags(request):
    """The session tags EKS Pod Identity sets on the role session of a pod."""
    cluster_arn = (f"arn:aws:eks:{request['region']}:{request['account']}:"
                   f"cluster/{request['cluster']}")
    return cluster_arn, {
        "eks-cluster-arn": cluster_arn,
        "eks-cluster-name": request["cluster"],
        "kubernetes-namespace": request["namespace"],
        "kubernetes-service-account": request["service_account"],
        "kubernetes-pod-name": f"{request['service_account']}-0",
        "kubernetes-pod-uid": "5f2d1c3e-0000-4000-8000-000000000000",
    }


def judge(trust, request):
    cluster_arn, tags = session_tags(request)
    caller = f"arn:aws:iam::{request['account']}:root"
    out = {}
    for action in ACTIONS:
        context = EvalContext(
            principal_arn=caller,
            principal_type="Root",
            principal_account=request["account"],
            action=action,
            resource_arn="*",
            region=request["region"],
            source_ip="127.0.0.1",
            secure_transport=True,
            request_tags=dict(tags),
            tag_keys=list(tags),
            service_context={
                "aws:sourceaccount": request["account"],
                "aws:sourcearn": cluster_arn,
            },
        )
        out[action] = bool(evaluate_trust_policy(trust, caller, context))
    return out


def main():
    data = json.load(sys.stdin)
    result = {r["name"]: judge(data["trust"], r) for r in data["requests"]}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
