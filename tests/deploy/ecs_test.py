#!/usr/bin/env python3
"""ECS / IAM / CloudFormation checks, offline:

  - botocore's model validation of deploy/ecs/taskdef-*.json as RegisterTaskDefinition input
    (what `aws ecs register-task-definition --cli-input-json file://...` sends);
  - cfn-lint on deploy/ecs/cloudformation.yaml, and on the JSON task definitions and IAM policies
    wrapped into templates (cfn-lint also checks enums, Fargate cpu/memory pairs and policy syntax);
  - negative controls proving both validators catch mistakes;
  - assertions: the `entitle check` container is not essential and the app dependsOn it with
    SUCCESS; the run variant's entryPoint is `/entitle run --`; hardening; the task role policy
    grants aws-marketplace:RegisterUsage; the CloudFormation task definition matches the JSON one.

Usage: tests/deploy/ecs_test.py
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

import botocore
import botocore.session
import yaml
from botocore.validate import ParamValidator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ECS = os.path.join(REPO, "deploy", "ecs")
IAM = os.path.join(REPO, "deploy", "iam")
PASSED = FAILED = 0


def check(what, cond, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print(f"ok   - {what}")
    else:
        FAILED += 1
        print(f"FAIL - {what}")
        for line in str(detail).strip().splitlines()[-25:]:
            print(f"#    {line}")
    return cond


def load(path):
    with open(path) as f:
        return json.load(f)


# CloudFormation's loader with the short-form intrinsics (!Ref, !Sub, !GetAtt ...) as plain data.
class CfnLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader, tag_suffix, node):
    name = "Fn::" + tag_suffix if tag_suffix != "Ref" else "Ref"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _intrinsic)

FREE_FORM = {"options", "dockerLabels"}  # maps whose keys are data, not property names


def to_cfn(value, key=None):
    """API-form (camelCase) task definition -> CloudFormation properties (PascalCase)."""
    if isinstance(value, dict):
        if key in FREE_FORM:
            return value
        return {k[0].upper() + k[1:]: to_cfn(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [to_cfn(v, key) for v in value]
    return value


def cfn_lint(template):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(template, f, indent=1)
        path = f.name
    try:
        p = subprocess.run(["cfn-lint", path], capture_output=True, text=True, timeout=300)
        return p.returncode, p.stdout + p.stderr
    finally:
        os.unlink(path)


def wrap_taskdef(td):
    return {"AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {"TaskDefinition": {"Type": "AWS::ECS::TaskDefinition", "Properties": to_cfn(td)}}}


def main():
    print(f"#    botocore {botocore.__version__}, "
          + subprocess.run(["cfn-lint", "--version"], capture_output=True, text=True, timeout=60).stdout.strip())
    shape = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    validator = ParamValidator()

    tds = {name: load(os.path.join(ECS, f"taskdef-{name}.json")) for name in ("init", "run")}
    for name, td in tds.items():
        r = validator.validate(td, shape)
        check(f"botocore: taskdef-{name}.json is valid RegisterTaskDefinition input", not r.has_errors(),
              r.generate_report() if r.has_errors() else "")
        rc, out = cfn_lint(wrap_taskdef(td))
        check(f"cfn-lint: taskdef-{name}.json as AWS::ECS::TaskDefinition", rc == 0, out)

    rc = subprocess.run(["cfn-lint", os.path.join(ECS, "cloudformation.yaml")], capture_output=True, text=True, timeout=300)
    check("cfn-lint: deploy/ecs/cloudformation.yaml", rc.returncode == 0, rc.stdout + rc.stderr)

    # Negative controls: the validators do catch what they should.
    broken = copy.deepcopy(tds["init"])
    broken["containerDefinitions"][0]["essential"] = "false"
    broken["containerDefinitions"][1]["dependsOn"][0]["conditon"] = "SUCCESS"
    r = validator.validate(broken, shape)
    report = r.generate_report() if r.has_errors() else ""
    check("botocore rejects essential as a string and an unknown key",
          "essential" in report and "conditon" in report, report or "no errors reported")
    broken = copy.deepcopy(tds["init"])
    broken["containerDefinitions"][1]["dependsOn"][0]["condition"] = "DONE"
    broken["cpu"] = "300"
    rc, out = cfn_lint(wrap_taskdef(broken))
    check("cfn-lint rejects condition DONE and a Fargate cpu of 300", rc != 0 and "DONE" in out and "300" in out, out)

    # --- the init-container task definition ---
    td = tds["init"]
    c = {x["name"]: x for x in td["containerDefinitions"]}
    check("init: Fargate, awsvpc", td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc")
    check("init: task role set (RegisterUsage uses the task role)", td.get("taskRoleArn", "").startswith("arn:aws:iam::"))
    chk, app = c.get("entitle-check", {}), c.get("app", {})
    check("init: entitle-check is not essential", chk.get("essential") is False, chk)
    check("init: entitle-check runs `check --output ...`", chk.get("command", [])[:1] == ["check"] and "entryPoint" not in chk, chk.get("command"))
    check("init: app dependsOn entitle-check with SUCCESS",
          app.get("dependsOn") == [{"containerName": "entitle-check", "condition": "SUCCESS"}], app.get("dependsOn"))
    check("init: app is essential", app.get("essential") is True)
    env = {e["name"]: e["value"] for e in chk.get("environment", [])}
    check("init: product code, key version and inline key in entitle's env",
          env.get("ENTITLE_PRODUCT_CODE") and env.get("ENTITLE_PUBLIC_KEY_VERSION") == "1"
          and env.get("ENTITLE_PUBLIC_KEY", "").startswith("-----BEGIN PUBLIC KEY-----\\n"), env)
    check("init: no hard-coded AWS_REGION (ECS sets it)", "AWS_REGION" not in env)
    # Fargate bind mounts are root-owned 0755: a 65532 container could not write a record there,
    # so the ECS pattern gates with dependsOn SUCCESS alone.
    check("init: no bind mount for a non-root writer", "volumes" not in td and not chk.get("mountPoints"))
    for name in ("init", "run"):
        for x in tds[name]["containerDefinitions"]:
            check(f"{name}: {x['name']} runs as 65532, read-only root, drops ALL capabilities",
                  x.get("user") == "65532:65532" and x.get("readonlyRootFilesystem") is True
                  and x.get("linuxParameters", {}).get("capabilities", {}).get("drop") == ["ALL"], x)

    # --- the `entitle run --` task definition ---
    td = tds["run"]
    check("run: one essential container", len(td["containerDefinitions"]) == 1 and td["containerDefinitions"][0]["essential"] is True)
    app = td["containerDefinitions"][0]
    check("run: entryPoint is /entitle run --", app.get("entryPoint") == ["/entitle", "run", "--"], app.get("entryPoint"))
    check("run: the app's command follows", app.get("command") == ["/app/server"], app.get("command"))
    check("run: task role set", td.get("taskRoleArn", "").startswith("arn:aws:iam::"))

    # --- IAM ---
    policy = load(os.path.join(IAM, "register-usage-policy.json"))
    check("IAM: the policy allows aws-marketplace:RegisterUsage on *",
          policy["Statement"] == [{"Sid": "EntitleRegisterUsage", "Effect": "Allow",
                                   "Action": "aws-marketplace:RegisterUsage", "Resource": "*"}], policy)
    rc, out = cfn_lint({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {
        "Policy": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": policy}},
        "TaskRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": load(os.path.join(ECS, "task-role-trust-policy.json")),
            "ManagedPolicyArns": [{"Ref": "Policy"}]}},
        "IrsaRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": load(os.path.join(IAM, "irsa-trust-policy.json")),
            "ManagedPolicyArns": [{"Ref": "Policy"}]}}}})
    check("cfn-lint: the policy and the ECS / IRSA trust policies", rc == 0, out)

    # --- the CloudFormation snippet matches the JSON ---
    with open(os.path.join(ECS, "cloudformation.yaml")) as f:
        cfn = yaml.load(f, Loader=CfnLoader)
    res = cfn["Resources"]
    inline = res["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    check("CloudFormation: task role's inline policy equals deploy/iam/register-usage-policy.json", inline == policy, inline)
    props = res["TaskDefinition"]["Properties"]
    want = to_cfn(tds["init"])
    for key in ("RequiresCompatibilities", "NetworkMode", "Cpu", "Memory", "RuntimePlatform", "Volumes"):
        check(f"CloudFormation: TaskDefinition {key} matches taskdef-init.json", props.get(key) == want.get(key), (props.get(key), want.get(key)))
    for got, exp in zip(props["ContainerDefinitions"], want["ContainerDefinitions"]):
        same = all(got.get(k) == exp.get(k) for k in ("Name", "Essential", "Command", "DependsOn", "MountPoints", "User",
                                                       "ReadonlyRootFilesystem", "LinuxParameters"))
        check(f"CloudFormation: container {got.get('Name')} matches taskdef-init.json", same, (got, exp))
        names = [e["Name"] for e in got.get("Environment", [])]
        check(f"CloudFormation: container {got.get('Name')} env names match",
              names == [e["Name"] for e in exp.get("Environment", [])], names)

    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
