#!/usr/bin/env python3
"""Runs the pod of a rendered Deployment (YAML) or an ECS task definition (JSON) with podman, the
way a kubelet or the ECS agent would (for the deploy tests; no cluster here): init containers (or
the containers the first essential one dependsOn with SUCCESS) one after another, each must exit
0; sidecars (Kubernetes native sidecars: init containers with restartPolicy Always, started
detached and waited for until their startupProbe passes; ECS: dependsOn START, started detached);
then the app container, detached, until it logs READY; then the stop: the app first, then the
sidecars in reverse order, as the kubelet (within terminationGracePeriodSeconds) and the ECS
agent (reverse dependency order, each container's stopTimeout) do, and every exit code.

  podrun.py MANIFEST.yaml --podman '["podman","--root",...]' --work DIR
            [--image FROM=TO ...] [--configmap NAME=DIR ...] [--run-flag FLAG ...]
            [--ready TEXT] [--name PREFIX] [--env NAME=VALUE ...] [--irsa-token FILE]

Mapping: emptyDir -> a host directory owned by the pod's fsGroup/runAsUser; configMap -> a host
directory holding the rendered ConfigMap's data (or --configmap); securityContext runAsUser /
runAsGroup -> --user, readOnlyRootFilesystem -> --read-only, capabilities.drop ALL -> --cap-drop
ALL, allowPrivilegeEscalation false -> no-new-privileges; command -> --entrypoint, args -> the
command line; env values -> -e; startupProbe.httpGet -> polled on 127.0.0.1 (the pods here run
with --network=host, so the pod IP is the host's); every container gets a writable
/dev/termination-log, read after it exits as its terminationMessagePolicy says (File, or
FallbackToLogsOnError: the log's tail when the file is empty and the exit code is not 0).
ECS: user, readonlyRootFilesystem, linuxParameters.capabilities, environment, entryPoint,
command, mountPoints likewise; a task volume without host is created as Fargate creates task
storage: owned by root, mode 0755, unless the image of a container mounting it declares that
containerPath a VOLUME, whose content and owner are copied into it first. --env NAME=VALUE adds or
replaces a variable in every container (what the platform injects: AWS_REGION, credentials
endpoints).

Output lines: `init NAME: exit N`, `sidecar NAME: started` (with the probe that passed) or
`sidecar NAME: exit N` when it ended before, `sidecar NAME: exited (essential: the task stops)`
(ECS: an essential sidecar ended while the app was starting), `app NAME: ready|not ready`, `app NAME: exit N`,
`sidecar NAME: exit N` after the stop, `termination NAME: MESSAGE` (Kubernetes, when there is
one), and the containers' logs prefixed with `NAME| `.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

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

    def container(c):
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
        term = termination_file(a.work, c["name"])
        out += ["-v", f"{term}:/dev/termination-log"]
        cmd = list(c.get("command", []))
        if cmd:
            out += ["--entrypoint", json.dumps(cmd[:1])]
        out.append(images.get(c["image"], c["image"]))
        probe = (c.get("startupProbe") or {}).get("httpGet")
        return {"name": c["name"], "flags": out + cmd[1:] + list(c.get("args", [])),
                "termination": (term, c.get("terminationMessagePolicy", "File")),
                "probe": probe and (c.get("startupProbe"), probe),
                "sidecar": c.get("restartPolicy") == "Always"}

    steps = [container(c) for c in pod.get("initContainers", [])]
    app = container(pod["containers"][0])
    grace = int(pod.get("terminationGracePeriodSeconds", 30))
    return launch(a, podman, steps, app, Budget(grace))


def termination_file(work, name):
    path = os.path.join(work, "termination", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()
    os.chmod(path, 0o666)
    return path


def merge_env(pairs, overrides):
    env = {e["name"]: e["value"] for e in pairs}
    env.update(o.split("=", 1) for o in overrides)
    return [f"{k}={v}" for k, v in env.items()]


class Budget:
    """Kubernetes: one terminationGracePeriodSeconds for the whole stop, the app first."""

    def __init__(self, seconds):
        self.deadline = None
        self.seconds = seconds

    def take(self, _container=None):
        if self.deadline is None:
            self.deadline = time.monotonic() + self.seconds
        return max(1, int(self.deadline - time.monotonic()))


class PerContainer:
    """ECS: each container's own stopTimeout (default 30 s), in reverse dependency order."""

    def __init__(self, timeouts):
        self.timeouts = timeouts

    def take(self, container):
        return self.timeouts.get(container, 30)


def run_ecs(a):
    podman = json.loads(a.podman)
    images = dict(i.split("=", 1) for i in a.image)
    td = json.load(open(a.manifest))
    defs = {c["name"]: c for c in td["containerDefinitions"]}

    vols = {}
    for v in td.get("volumes", []):
        if set(v) - {"name", "host"} or (v.get("host") or {}).get("sourcePath"):
            sys.exit(f"only task storage volumes (Fargate bind mounts) are emulated here: {v}")
        vols[v["name"]] = fargate_volume(a, podman, images, td, v["name"])

    def container(c):
        out = list(a.run_flag)
        if c.get("user"):
            out += ["--user", c["user"]]
        if c.get("readonlyRootFilesystem"):
            out.append("--read-only")
        for cap in c.get("linuxParameters", {}).get("capabilities", {}).get("drop", []):
            out += ["--cap-drop", cap]
        for e in merge_env(c.get("environment", []), a.env):
            out += ["-e", e]
        for m in c.get("mountPoints", []):
            out += ["-v", f"{vols[m['sourceVolume']]}:{m['containerPath']}" + (":ro" if m.get("readOnly") else "")]
        if c.get("entryPoint"):
            out += ["--entrypoint", json.dumps(c["entryPoint"])]
        return {"name": c["name"], "flags": out + [images.get(c["image"], c["image"])] + list(c.get("command", [])),
                "termination": None, "probe": None, "sidecar": False}

    essential = [c for c in td["containerDefinitions"] if c.get("essential", True)]
    app = next((c for c in essential if c.get("dependsOn")), essential[0])
    steps = []
    for dep in app.get("dependsOn", []):
        step = container(defs[dep["containerName"]])
        if dep["condition"] == "START":
            step["sidecar"] = True
            step["essential"] = defs[dep["containerName"]].get("essential", True)
        elif dep["condition"] != "SUCCESS":
            sys.exit(f"only dependsOn SUCCESS and START are emulated: {dep}")
        steps.append(step)
    timeouts = {c["name"]: c.get("stopTimeout", 30) for c in td["containerDefinitions"]}
    return launch(a, podman, steps, container(app), PerContainer(timeouts))


def fargate_volume(a, podman, images, td, name):
    """Task storage as Fargate makes it: root:root 0755, or seeded from an image VOLUME."""
    path = os.path.join(a.work, "vol", name)
    os.makedirs(path)
    os.chown(path, 0, 0)
    os.chmod(path, 0o755)
    for c in td["containerDefinitions"]:
        for m in c.get("mountPoints", []):
            if m["sourceVolume"] != name:
                continue
            image = images.get(c["image"], c["image"])
            p = subprocess.run(podman + ["image", "inspect", "--format", "{{json .Config.Volumes}}", image],
                               capture_output=True, text=True, timeout=60)
            declared = json.loads(p.stdout.strip() or "null") or {}
            if m["containerPath"] not in declared:
                continue
            rel = m["containerPath"].strip("/")
            cid = subprocess.run(podman + ["create", image], capture_output=True, text=True, check=True,
                                 timeout=60).stdout.strip()
            tmp = tempfile.mkdtemp(dir=a.work)
            try:
                export = subprocess.Popen(podman + ["export", cid], stdout=subprocess.PIPE)
                subprocess.run(["tar", "-x", "--same-owner", "-C", tmp, rel], stdin=export.stdout, check=True, timeout=120)
                export.wait(timeout=60)
                st = os.stat(os.path.join(tmp, rel))
                os.chown(path, st.st_uid, st.st_gid)
                os.chmod(path, st.st_mode & 0o7777)
                subprocess.run(["cp", "-a", os.path.join(tmp, rel) + "/.", path], check=True, timeout=60)
            finally:
                subprocess.run(podman + ["rm", cid], capture_output=True, timeout=60)
                shutil.rmtree(tmp, ignore_errors=True)
            return path
    return path


def launch(a, podman, steps, app, budget):
    def logs(name, text):
        for line in text.splitlines():
            print(f"{name}| {line}")

    def container_logs(cname):
        p = subprocess.run(podman + ["logs", cname], capture_output=True, text=True, timeout=30)
        return p.stdout + p.stderr

    def termination(step, code, log_text):
        if not step["termination"]:
            return
        path, policy = step["termination"]
        message = open(path).read().strip()
        if not message and policy == "FallbackToLogsOnError" and str(code) != "0":
            message = "\n".join(log_text.strip().splitlines()[-80:])[-2048:]
        if message:
            print(f"termination {step['name']}: {' / '.join(message.splitlines())}", flush=True)

    def running(cname):
        st = subprocess.run(podman + ["inspect", "--format", "{{.State.Running}}", cname],
                            capture_output=True, text=True, timeout=30)
        return st.stdout.strip() == "true"

    def stop(step, cname, kind):
        subprocess.run(podman + ["stop", "-t", str(min(budget.take(step["name"]), 30)), cname],
                       capture_output=True, timeout=90)
        code = subprocess.run(podman + ["wait", cname], capture_output=True, text=True, timeout=60).stdout.strip()
        text = container_logs(cname)
        logs(step["name"], text)
        print(f"{kind} {step['name']}: exit {code}", flush=True)
        termination(step, code, text)

    started = []  # sidecars: (step, container name)
    try:
        for step in steps:
            cname = f"{a.name}-{step['name']}"
            if not step["sidecar"]:
                p = subprocess.run(podman + ["run", "--rm"] + step["flags"], capture_output=True, text=True, timeout=90)
                logs(step["name"], p.stdout + p.stderr)
                print(f"init {step['name']}: exit {p.returncode}", flush=True)
                termination(step, p.returncode, p.stdout + p.stderr)
                if p.returncode != 0:
                    return 0
                continue
            subprocess.run(podman + ["run", "-d", "--name", cname] + step["flags"], check=True, capture_output=True, timeout=90)
            started.append((step, cname))
            if not step["probe"]:
                print(f"sidecar {step['name']}: started", flush=True)
                continue
            probe, get = step["probe"]
            url = f"http://127.0.0.1:{get['port']}{get.get('path', '/')}"
            deadline = time.monotonic() + min(probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3), 60)
            passed = None
            while time.monotonic() < deadline and running(cname):
                try:
                    with urllib.request.urlopen(url, timeout=probe.get("timeoutSeconds", 1)) as r:
                        if 200 <= r.status < 400:
                            passed = r.status
                            break
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(min(probe.get("periodSeconds", 10), 0.2))
            if passed is None:
                started.pop()
                stop(step, cname, "sidecar")
                print(f"sidecar {step['name']}: startupProbe {url} never passed", flush=True)
                return 0
            print(f"sidecar {step['name']}: started (startupProbe GET {url}: {passed})", flush=True)

        name = f"{a.name}-{app['name']}"
        p = subprocess.run(podman + ["run", "-d", "--name", name] + app["flags"], capture_output=True, text=True, timeout=90)
        try:
            if p.returncode != 0:
                logs(app["name"], p.stderr)
                print(f"app {app['name']}: cannot start (podman run exit {p.returncode})", flush=True)
            else:
                ready = False
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    if a.ready in container_logs(name):
                        ready = True
                        break
                    if not running(name):
                        break
                    # ECS: an essential container that exits stops the task.
                    ended = [st["name"] for st, cn in started if st.get("essential") and not running(cn)]
                    if ended:
                        print(f"sidecar {ended[0]}: exited (essential: the task stops)", flush=True)
                        break
                    time.sleep(0.1)
                print(f"app {app['name']}: {'ready' if ready else 'not ready'}", flush=True)
                stop(app, name, "app")
        finally:
            subprocess.run(podman + ["rm", "-f", "-t", "0", name], capture_output=True, timeout=60)
        # Sidecars stop after the app, the last started first.
        while started:
            step, cname = started.pop()
            stop(step, cname, "sidecar")
            subprocess.run(podman + ["rm", "-f", "-t", "0", cname], capture_output=True, timeout=60)
    finally:
        for _, cname in started:
            subprocess.run(podman + ["rm", "-f", "-t", "0", cname], capture_output=True, timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
