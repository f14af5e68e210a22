#!/usr/bin/env python3
"""ECS / IAM / CloudFormation checks, offline:

  - botocore's model validation of deploy/ecs/taskdef-*.json (init, run, meter) as
    RegisterTaskDefinition input (what `aws ecs register-task-definition --cli-input-json
    file://...` sends);
  - cfn-lint on deploy/ecs/cloudformation.yaml, and on the JSON task definitions and IAM policies
    wrapped into templates (cfn-lint also checks enums, Fargate cpu/memory pairs and policy syntax);
  - negative controls proving both validators catch mistakes;
  - assertions: the `entitle check` container is not essential and the app dependsOn it with
    SUCCESS; the run variant's entryPoint is `/entitle run --`; the metered variant's relay
    (essential, `entitle meter`, journal on a task volume at the VOLUME of
    deploy/docker/Dockerfile.meter, stopTimeout above its flush timeout, restarted in place, a
    health check `/entitle health` that probes where the relay listens and tolerates its whole
    ENTITLE_TIMEOUT) and the app's dependsOn HEALTHY and ENTITLE_METER_URL; hardening; the IAM
    policies (RegisterUsage,
    MeterUsage, each alone); the CloudFormation template, resolved for a registering and for a
    metered product, matches taskdef-init.json and taskdef-meter.json and grants each policy only
    when it is needed; its parameter patterns.

Usage: tests/deploy/ecs_test.py
"""
import copy
import json
import os
import re
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


NOVALUE = object()


def resolve(node, conditions):
    """A template fragment with Fn::If evaluated for the given conditions and AWS::NoValue gone."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return resolve(yes if conditions[name] else no, conditions)
        if node == {"Ref": "AWS::NoValue"}:
            return NOVALUE
        out = {k: resolve(v, conditions) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NOVALUE}
    if isinstance(node, list):
        return [x for x in (resolve(v, conditions) for v in node) if x is not NOVALUE]
    return node


def seconds(text):
    total = 0
    for n, unit in re.findall(r"([0-9]+) *(ms|s|m|h)", text):
        total += int(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def main():
    print(f"#    botocore {botocore.__version__}, "
          + subprocess.run(["cfn-lint", "--version"], capture_output=True, text=True, timeout=60).stdout.strip())
    shape = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    validator = ParamValidator()

    tds = {name: load(os.path.join(ECS, f"taskdef-{name}.json")) for name in ("init", "run", "meter")}
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
    broken = copy.deepcopy(tds["meter"])
    broken["containerDefinitions"][1]["dependsOn"][0]["condition"] = "HEALTH"
    broken["containerDefinitions"][0]["stopTimeout"] = "30"
    broken["containerDefinitions"][0]["healthCheck"]["retries"] = "10"
    r = validator.validate(broken, shape)
    report = r.generate_report() if r.has_errors() else ""
    rc, out = cfn_lint(wrap_taskdef(broken))
    check("meter: botocore rejects stopTimeout and healthCheck retries as strings, cfn-lint the condition HEALTH",
          "stopTimeout" in report and "retries" in report and rc != 0 and "HEALTH'" in out, report + out)

    # ECS refuses nothing here (and cfn-lint checks neither): a HEALTHY dependency on a container
    # without a health check never resolves, and the app never starts.
    for name, td in tds.items():
        defs = {x["name"]: x for x in td["containerDefinitions"]}
        for x in td["containerDefinitions"]:
            for dep in x.get("dependsOn", []):
                if dep["condition"] == "HEALTHY":
                    check(f"{name}: {x['name']} waits for {dep['containerName']} HEALTHY, which has a healthCheck",
                          "healthCheck" in defs.get(dep["containerName"], {}), dep)

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
    for name in ("init", "run", "meter"):
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

    # --- the metered task definition: the app and an `entitle meter` relay ---
    td = tds["meter"]
    c = {x["name"]: x for x in td["containerDefinitions"]}
    relay, app = c.get("entitle-meter", {}), c.get("app", {})
    env = {e["name"]: e["value"] for e in relay.get("environment", [])}
    check("meter: Fargate, awsvpc (one network namespace: the app reaches the relay on 127.0.0.1)",
          td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc")
    check("meter: task role set (MeterUsage uses the task role)", td.get("taskRoleArn", "").startswith("arn:aws:iam::"))
    check("meter: the relay runs `entitle meter` from the relay image",
          relay.get("command") == ["meter"] and "entryPoint" not in relay and relay.get("image", "").endswith("/entitle-meter:0.1.0"), relay)
    check("meter: the relay is essential (not entitled: exit 77 stops the task) and restarted in place after a crash",
          relay.get("essential") is True and relay.get("restartPolicy", {}).get("enabled") is True, relay)
    dims = env.get("ENTITLE_METER_DIMENSIONS", "").split(",")
    check("meter: 1..24 distinct dimensions of 1..255 characters",
          0 < len(dims) <= 24 and len(set(dims)) == len(dims) and all(0 < len(d) <= 255 and d == d.strip() for d in dims), dims)
    check("meter: product code given, no key: a product priced by dimensions only (no RegisterUsage)",
          env.get("ENTITLE_PRODUCT_CODE") and not [k for k in env if k.startswith("ENTITLE_PUBLIC_KEY")], env)
    check("meter: no hard-coded AWS_REGION (ECS sets it), IMDS off, JSON logs",
          "AWS_REGION" not in env and env.get("AWS_EC2_METADATA_DISABLED") == "true" and env.get("ENTITLE_LOG_FORMAT") == "json", env)
    mounts = {m["containerPath"]: m for m in relay.get("mountPoints", [])}
    state = env.get("ENTITLE_METER_STATE")
    volumes = {v["name"]: v for v in td.get("volumes", [])}
    check("meter: the journal (ENTITLE_METER_STATE) is a writable mount of a task volume",
          state in mounts and not mounts[state].get("readOnly") and mounts[state]["sourceVolume"] in volumes, (state, mounts, volumes))
    check("meter: that volume is task storage (no host path: it lives and dies with the task)",
          all(set(v) == {"name"} for v in volumes.values()), volumes)
    with open(os.path.join(REPO, "deploy", "docker", "Dockerfile.meter")) as f:
        dockerfile = f.read()
    declared = re.findall(r'^VOLUME \["([^"]+)"\]', dockerfile, re.M)
    check("meter: the mount is the relay image's VOLUME (Fargate seeds the volume with its 65532 owner)",
          declared == [state] and f"COPY --chown=65532:65532 meter-state/ {state}/" in dockerfile
          and "USER 65532:65532" in dockerfile, (declared, state))
    flush = seconds(env.get("ENTITLE_METER_FLUSH_TIMEOUT", "20s"))
    check(f"meter: the relay's stopTimeout ({relay.get('stopTimeout')} s) exceeds its flush timeout ({flush:g} s) + 5 s, within Fargate's 120 s",
          flush + 5 < relay.get("stopTimeout", 30) <= 120, relay.get("stopTimeout"))
    check("meter: the app starts once the relay's health check passed (dependsOn HEALTHY) and so stops before it",
          app.get("dependsOn") == [{"containerName": "entitle-meter", "condition": "HEALTHY"}] and app.get("essential") is True,
          app.get("dependsOn"))
    app_env = {e["name"]: e["value"] for e in app.get("environment", [])}
    listen = env.get("ENTITLE_METER_LISTEN", "127.0.0.1:8787")
    check("meter: the app's ENTITLE_METER_URL is where the relay listens (loopback: nothing outside the task reaches it)",
          app_env.get("ENTITLE_METER_URL") == f"http://{listen}" and listen.startswith("127.0.0.1:"), (app_env, listen))
    hc = relay.get("healthCheck", {})
    command = hc.get("command", [])
    check("meter: the relay's health check runs `/entitle health` directly (CMD: the image has no shell or HTTP client)",
          command[:3] == ["CMD", "/entitle", "health"], hc)
    check("meter: the relay image holds its binary at /entitle", "COPY --from=entitle /entitle /entitle" in dockerfile)
    probed = env.get("ENTITLE_METER_URL", "http://127.0.0.1:8787")
    if "--meter-url" in command:
        probed = command[command.index("--meter-url") + 1]
    check(f"meter: the health check probes where the relay listens ({probed})", probed == f"http://{listen}", (command, env))
    interval, timeout, retries, start = (hc.get(k) for k in ("interval", "timeout", "retries", "startPeriod"))
    check("meter: health check interval 5..300 s, timeout 2..60 s (below the interval), retries 1..10, startPeriod 0..300 s",
          all(isinstance(v, int) for v in (interval, timeout, retries, start))
          and 5 <= interval <= 300 and 2 <= timeout <= 60 and timeout <= interval and 1 <= retries <= 10 and 0 <= start <= 300, hc)
    budget = seconds(env.get("ENTITLE_TIMEOUT", "30m"))
    tolerated = start + retries * interval if isinstance(start, int) and isinstance(retries, int) and isinstance(interval, int) else 0
    check(f"meter: the health check tolerates the start check's whole ENTITLE_TIMEOUT ({budget:g} s) before UNHEALTHY "
          f"(startPeriod + retries x interval = {tolerated} s): a failing start check ends with the relay's exit",
          tolerated > budget + 30, (hc, budget))
    check("meter: a check at most every 10 s (the app starts at the first passing one, at the earliest one interval after the relay)",
          isinstance(interval, int) and interval <= 10, interval)
    check("meter: no startTimeout on the relay (at most 120 s on Fargate: it would cut the start check short)",
          "startTimeout" not in relay, relay.get("startTimeout"))
    check("meter: the app's own stopTimeout is set (its shutdown comes before the relay's flush)", 0 < app.get("stopTimeout", 0) <= 120)

    # --- IAM ---
    policy = load(os.path.join(IAM, "register-usage-policy.json"))
    check("IAM: the policy allows aws-marketplace:RegisterUsage on *",
          policy["Statement"] == [{"Sid": "EntitleRegisterUsage", "Effect": "Allow",
                                   "Action": "aws-marketplace:RegisterUsage", "Resource": "*"}], policy)
    meter_policy = load(os.path.join(IAM, "meter-usage-policy.json"))
    check("IAM: the meter policy allows aws-marketplace:MeterUsage on *, nothing else",
          meter_policy["Statement"] == [{"Sid": "EntitleMeterUsage", "Effect": "Allow",
                                         "Action": "aws-marketplace:MeterUsage", "Resource": "*"}], meter_policy)
    rc, out = cfn_lint({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {
        "Policy": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": policy}},
        "MeterPolicy": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": meter_policy}},
        "TaskRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": load(os.path.join(ECS, "task-role-trust-policy.json")),
            "ManagedPolicyArns": [{"Ref": "Policy"}, {"Ref": "MeterPolicy"}]}},
        "IrsaRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": load(os.path.join(IAM, "irsa-trust-policy.json")),
            "ManagedPolicyArns": [{"Ref": "Policy"}, {"Ref": "MeterPolicy"}]}}}})
    check("cfn-lint: the policies and the ECS / IRSA trust policies", rc == 0, out)

    # --- the CloudFormation template, resolved per product kind, matches the JSON ---
    with open(os.path.join(ECS, "cloudformation.yaml")) as f:
        cfn = yaml.load(f, Loader=CfnLoader)
    check("CloudFormation: conditions Registers (PublicKey given) and Metered (Dimensions given)",
          cfn.get("Conditions") == {"Registers": {"Fn::Not": [{"Fn::Equals": [{"Ref": "PublicKey"}, ""]}]},
                                    "Metered": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Dimensions"}, ""]}]}}, cfn.get("Conditions"))
    params = cfn["Parameters"]
    dim_re = params["Dimensions"]["AllowedPattern"]
    key_re = params["PublicKey"]["AllowedPattern"]
    good = ["", "scans", "scans,gb", "Data Scanned (GB),api-calls/1k", ",".join(["d" * 255] * 24)]
    bad = ["scans,", ",gb", "a,,b", " scans", "scans ", "d" * 256, ",".join(f"d{i}" for i in range(25))]
    check("CloudFormation: the Dimensions pattern takes 0..24 names of 1..255 characters, nothing else",
          all(re.fullmatch(dim_re, d) for d in good) and not any(re.fullmatch(dim_re, d) for d in bad),
          [d[:20] for d in good if not re.fullmatch(dim_re, d)] + [d[:20] for d in bad if re.fullmatch(dim_re, d)])
    one_line = "-----BEGIN PUBLIC KEY-----\\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 300 + "\\n-----END PUBLIC KEY-----"
    check("CloudFormation: the PublicKey pattern takes a one-line PEM or nothing",
          re.fullmatch(key_re, one_line) and re.fullmatch(key_re, "") and not re.fullmatch(key_re, "not a key"), key_re)
    rules = json.dumps(cfn.get("Rules", {}))
    check("CloudFormation: Rules require a key or dimensions, and the image each needs",
          all(r in cfn.get("Rules", {}) for r in ("KeyOrDimensions", "EntitleImageWithKey", "MeterImageWithDimensions"))
          and "MeterImage" in rules and "EntitleImage" in rules, rules)
    for label, conditions, taskdef in (("registering (PublicKey, no Dimensions)", {"Registers": True, "Metered": False}, "init"),
                                       ("metered (Dimensions, no PublicKey)", {"Registers": False, "Metered": True}, "meter")):
        res = resolve(cfn["Resources"], conditions)
        inline = {p["PolicyName"]: p["PolicyDocument"] for p in res["TaskRole"]["Properties"].get("Policies", [])}
        want_policies = {"entitle-register-usage": policy} if conditions["Registers"] else {"entitle-meter-usage": meter_policy}
        check(f"CloudFormation {label}: the task role's inline policies are exactly {sorted(want_policies)}", inline == want_policies, inline)
        props = res["TaskDefinition"]["Properties"]
        want = to_cfn(tds[taskdef])
        for key in ("RequiresCompatibilities", "NetworkMode", "Cpu", "Memory", "RuntimePlatform", "Volumes"):
            check(f"CloudFormation {label}: TaskDefinition {key} matches taskdef-{taskdef}.json",
                  props.get(key) == want.get(key), (props.get(key), want.get(key)))
        check(f"CloudFormation {label}: containers {[x['Name'] for x in want['ContainerDefinitions']]}",
              [x["Name"] for x in props["ContainerDefinitions"]] == [x["Name"] for x in want["ContainerDefinitions"]],
              [x["Name"] for x in props["ContainerDefinitions"]])
        for got, exp in zip(props["ContainerDefinitions"], want["ContainerDefinitions"]):
            same = all(got.get(k) == exp.get(k) for k in ("Name", "Essential", "Command", "DependsOn", "MountPoints", "User",
                                                           "ReadonlyRootFilesystem", "LinuxParameters", "StopTimeout", "RestartPolicy",
                                                           "HealthCheck", "StartTimeout"))
            check(f"CloudFormation {label}: container {got.get('Name')} matches taskdef-{taskdef}.json", same, (got, exp))
            names = [e["Name"] for e in got.get("Environment", [])]
            check(f"CloudFormation {label}: container {got.get('Name')} env names match",
                  names == [e["Name"] for e in exp.get("Environment", [])], names)
            literal = {e["Name"]: e["Value"] for e in got.get("Environment", []) if isinstance(e["Value"], str)}
            exp_env = {e["Name"]: e["Value"] for e in exp.get("Environment", [])}
            check(f"CloudFormation {label}: container {got.get('Name')} literal env values match",
                  all(exp_env.get(k) == v for k, v in literal.items()), (literal, exp_env))
    res = resolve(cfn["Resources"], {"Registers": True, "Metered": True})
    props = res["TaskDefinition"]["Properties"]
    app = props["ContainerDefinitions"][-1]
    check("CloudFormation registering and metered: entitle-check, entitle-meter, app; the app waits for both; both policies",
          [x["Name"] for x in props["ContainerDefinitions"]] == ["entitle-check", "entitle-meter", "app"]
          and app["DependsOn"] == [{"ContainerName": "entitle-check", "Condition": "SUCCESS"},
                                   {"ContainerName": "entitle-meter", "Condition": "HEALTHY"}]
          and len(res["TaskRole"]["Properties"]["Policies"]) == 2, props["ContainerDefinitions"])

    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
