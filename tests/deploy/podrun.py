#!/usr/bin/env python3
"""Runs the pod of a rendered Deployment (YAML) or an ECS task definition (JSON) with podman, the
way a kubelet or the ECS agent would (for the deploy tests; no cluster here): init containers (or
the containers the first essential one dependsOn) one after another, each must exit 0, then the
app container, detached, until it logs READY; then `podman stop` and its exit code.

  podrun.py MANIFEST.yaml --podman '["podman","--root",...]' --work DIR
            [--image FROM=TO ...] [--configmap NAME=DIR ...] [--run-flag FLAG ...]
            [--ready TEXT] [--name PREFIX]

Mapping: emptyDir -> a host directory owned by the pod's fsGroup/runAsUser; configMap -> a host
directory holding the rendered ConfigMap's data (or --configmap); securityContext runAsUser /
runAsGroup -> --user, readOnlyRootFilesystem -> --read-only, capabilities.drop ALL -> --cap-drop
ALL, allowPrivilegeEscalation false -> no-new-privileges; command -> --entrypoint, args -> the
command line; env values -> -e. ECS: user, readonlyRootFilesystem, linuxParameters.capabilities,
environment, entryPoint, command likewise; --env NAME=VALUE adds or replaces a variable in every
container (what the platform injects: AWS_REGION, credentials endpoints). Output lines: `init NAME: exit N`, `app NAME: ready|not ready`,
`app NAME: exit N`, and the containers' logs prefixed with `NAME| `.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import yaml


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("--podman", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--image", action="append", default=[])
    ap.add_argument("--configmap", action="append", default=[])
    ap.add_argument("--run-flag", action="append", default=[])
    ap.add_argument("--ready", default="server: ready")
    ap.add_argument("--name", default="pod")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--irsa-token", help="emulate the EKS IRSA webhook with this web identity token file")
    a = ap.parse_args()
    if a.manifest.endswith(".json"):
        return run_ecs(a)
    podman = json.loads(a.podman)
    images = dict(i.split("=", 1) for i in a.image)
    given_cms = dict(c.split("=", 1) for c in a.configmap)

    docs = [d for d in yaml.safe_load_all(open(a.manifest)) if d]
    cms = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if a.irsa_token:
        # What the EKS pod identity webhook injects into every container of a pod whose
        # ServiceAccount carries eks.amazonaws.com/role-arn.
        sa = next((d for d in docs if d["kind"] == "ServiceAccount"
                   and d["metadata"]["name"] == pod.get("serviceAccountName")), None)
        role = ((sa or {}).get("metadata", {}).get("annotations") or {}).get("eks.amazonaws.com/role-arn")
        if role:
            token = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
            a.env = [f"AWS_ROLE_ARN={role}", f"AWS_WEB_IDENTITY_TOKEN_FILE={token}",
                     "AWS_STS_REGIONAL_ENDPOINTS=regional"] + a.env
            a.run_flag = a.run_flag + ["-v", f"{a.irsa_token}:{token}:ro"]
    owner = psc.get("fsGroup", psc.get("runAsUser", 0))

    vols = {}
    for v in pod.get("volumes", []):
        path = os.path.join(a.work, "vol", v["name"])
        os.makedirs(path)
        if "emptyDir" in v:
            os.chown(path, psc.get("runAsUser", 0), owner)
            os.chmod(path, 0o2775)
        elif "configMap" in v:
            name = v["configMap"]["name"]
            if name in given_cms:
                data = {f: open(os.path.join(given_cms[name], f)).read() for f in os.listdir(given_cms[name])}
            else:
                data = cms[name]
            for item in v["configMap"].get("items") or [{"key": k, "path": k} for k in data]:
                with open(os.path.join(path, item["path"]), "w") as f:
                    f.write(data[item["key"]])
                os.chmod(os.path.join(path, item["path"]), 0o644)
        else:
            sys.exit(f"volume type not supported here: {v}")
        vols[v["name"]] = path

    def flags(c):
        sc = {**psc, **c.get("securityContext", {})}
        out = list(a.run_flag)
        if "runAsUser" in sc:
            out += ["--user", f"{sc['runAsUser']}:{sc.get('runAsGroup', sc['runAsUser'])}"]
        if sc.get("readOnlyRootFilesystem"):
            out.append("--read-only")
        if "ALL" in sc.get("capabilities", {}).get("drop", []):
            out += ["--cap-drop", "ALL"]
        if sc.get("allowPrivilegeEscalation") is False:
            out += ["--security-opt", "no-new-privileges"]
        for e in merge_env(c.get("env", []), a.env):
            out += ["-e", e]
        for m in c.get("volumeMounts", []):
            out += ["-v", f"{vols[m['name']]}:{m['mountPath']}" + (":ro" if m.get("readOnly") else "")]
        cmd = list(c.get("command", []))
        if cmd:
            out += ["--entrypoint", json.dumps(cmd[:1])]
        out.append(images.get(c["image"], c["image"]))
        return out + cmd[1:] + list(c.get("args", []))

    inits = [(c["name"], flags(c)) for c in pod.get("initContainers", [])]
    c = pod["containers"][0]
    return launch(a, podman, inits, c["name"], flags(c), 10)


def merge_env(pairs, overrides):
    env = {e["name"]: e["value"] for e in pairs}
    env.update(o.split("=", 1) for o in overrides)
    return [f"{k}={v}" for k, v in env.items()]


def run_ecs(a):
    podman = json.loads(a.podman)
    images = dict(i.split("=", 1) for i in a.image)
    td = json.load(open(a.manifest))
    defs = {c["name"]: c for c in td["containerDefinitions"]}
    if td.get("volumes"):
        sys.exit("volumes are not emulated here")

    def flags(c):
        out = list(a.run_flag)
        if c.get("user"):
            out += ["--user", c["user"]]
        if c.get("readonlyRootFilesystem"):
            out.append("--read-only")
        for cap in c.get("linuxParameters", {}).get("capabilities", {}).get("drop", []):
            out += ["--cap-drop", cap]
        for e in merge_env(c.get("environment", []), a.env):
            out += ["-e", e]
        if c.get("entryPoint"):
            out += ["--entrypoint", json.dumps(c["entryPoint"])]
        return out + [images.get(c["image"], c["image"])] + list(c.get("command", []))

    app = next(c for c in td["containerDefinitions"] if c.get("essential", True))
    inits = []
    for dep in app.get("dependsOn", []):
        if dep["condition"] != "SUCCESS":
            sys.exit(f"only dependsOn SUCCESS is emulated: {dep}")
        inits.append((dep["containerName"], flags(defs[dep["containerName"]])))
    return launch(a, podman, inits, app["name"], flags(app), app.get("stopTimeout", 30))


def launch(a, podman, inits, app_name, app_flags, stop_timeout):
    def logs(name, text):
        for line in text.splitlines():
            print(f"{name}| {line}")

    for init_name, init_flags in inits:
        p = subprocess.run(podman + ["run", "--rm"] + init_flags, capture_output=True, text=True, timeout=90)
        logs(init_name, p.stdout + p.stderr)
        print(f"init {init_name}: exit {p.returncode}", flush=True)
        if p.returncode != 0:
            return 0

    c = {"name": app_name}
    name = f"{a.name}-{app_name}"
    subprocess.run(podman + ["run", "-d", "--name", name] + app_flags, check=True, capture_output=True, timeout=90)
    try:
        ready = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            p = subprocess.run(podman + ["logs", name], capture_output=True, text=True, timeout=30)
            if a.ready in p.stdout + p.stderr:
                ready = True
                break
            st = subprocess.run(podman + ["inspect", "--format", "{{.State.Running}}", name], capture_output=True, text=True, timeout=30)
            if st.stdout.strip() == "false":
                break
            time.sleep(0.1)
        print(f"app {c['name']}: {'ready' if ready else 'not ready'}", flush=True)
        subprocess.run(podman + ["stop", "-t", str(min(stop_timeout, 10)), name], capture_output=True, timeout=60)
        code = subprocess.run(podman + ["wait", name], capture_output=True, text=True, timeout=60).stdout.strip()
        p = subprocess.run(podman + ["logs", name], capture_output=True, text=True, timeout=30)
        logs(c["name"], p.stdout + p.stderr)
        print(f"app {c['name']}: exit {code}")
    finally:
        subprocess.run(podman + ["rm", "-f", "-t", "0", name], capture_output=True, timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
