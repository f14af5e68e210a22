#!/usr/bin/env python3
"""Runs the pod of a rendered Deployment (YAML) or an ECS task definition (JSON) with podman, the
way a kubelet or the ECS agent would (for the deploy tests; no cluster here): init containers (or
the containers the first essential one dependsOn with SUCCESS) one after another, each must exit
0; sidecars (Kubernetes native sidecars: init containers with restartPolicy Always, started
detached and waited for until their startupProbe passes; ECS: dependsOn START, started detached,
or HEALTHY, started detached and waited for until their healthCheck passes); then the app
container, detached, until it logs READY; then the stop: the app first, then the sidecars in
reverse order, as the kubelet (within terminationGracePeriodSeconds) and the ECS agent (reverse
dependency order, each container's stopTimeout) do, and every exit code.

  podrun.py MANIFEST.yaml --podman '["podman","--root",...]' --work DIR
            [--image FROM=TO ...] [--configmap NAME=DIR ...] [--run-flag FLAG ...]
            [--ready TEXT] [--name PREFIX] [--env NAME=VALUE ...] [--irsa-token FILE]

Mapping: emptyDir -> a host directory owned by the pod's fsGroup/runAsUser; configMap -> a host
directory holding the rendered ConfigMap's data (or --configmap); securityContext runAsUser /
runAsGroup -> --user, readOnlyRootFilesystem -> --read-only, capabilities.drop ALL -> --cap-drop
ALL, allowPrivilegeEscalation false -> no-new-privileges; command -> --entrypoint, args -> the
command line; env values -> -e; startupProbe: exec -> the command run inside the container with
`podman exec` (its user and environment, as CRI ExecSync does), httpGet -> polled on 127.0.0.1
(the pods here run with --network=host, so the pod IP is the host's); the first probe right after
the start, then one every periodSeconds, each allowed timeoutSeconds (plus 1 s for podman exec's
own start), at most failureThreshold of them (capped at 60 s here); every container gets a writable
/dev/termination-log, read after it exits as its terminationMessagePolicy says (File, or
FallbackToLogsOnError: the log's tail when the file is empty and the exit code is not 0).
ECS: user, readonlyRootFilesystem, linuxParameters.capabilities, environment, entryPoint,
command, mountPoints likewise; healthCheck (for dependsOn HEALTHY) as Docker runs it for the ECS
agent: the command (CMD: as is; CMD-SHELL: /bin/sh -c) inside the container with `podman exec`,
the first `interval` seconds after the start, then `interval` seconds after each check ends, each
allowed `timeout`; the first exit 0 makes it HEALTHY; failures count only once `startPeriod` has
passed, and `retries` of them in a row make it UNHEALTHY (here: the task stops, as a service
replaces it; the wait is capped at 60 s); a task volume without host is created as Fargate creates
task storage: owned by root, mode 0755, unless the image of a container mounting it declares that
containerPath a VOLUME, whose content and owner are copied into it first. --env NAME=VALUE adds or
replaces a variable in every container (what the platform injects: AWS_REGION, credentials
endpoints).

Output lines: `init NAME: exit N`, `probe NAME: startupProbe|healthCheck WHAT: exit N|HTTP N`
for every probe or health check run (with the seconds since the container started),
`sidecar NAME: started` (with the probe that passed) or `sidecar NAME: healthy` (ECS, with the
check that passed), `sidecar NAME: startupProbe WHAT never passed` / `sidecar NAME: unhealthy` /
`sidecar NAME: exit N` when it ended before, `sidecar NAME: exited (essential: the task stops)`
(ECS: an essential sidecar ended before or while the app was starting), `app NAME: ready|not
ready`, `app NAME: exit N`,
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
        return {"name": c["name"], "flags": out + cmd[1:] + list(c.get("args", [])),
                "termination": (term, c.get("terminationMessagePolicy", "File")),
                "probe": startup_probe(c.get("startupProbe")),
                "sidecar": c.get("restartPolicy") == "Always"}

    steps = [container(c) for c in pod.get("initContainers", [])]
    app = container(pod["containers"][0])
    grace = int(pod.get("terminationGracePeriodSeconds", 30))
    return launch(a, podman, steps, app, Budget(grace))


# The kubelet's and Docker's defaults (Kubernetes Probe; ECS HealthCheck).
K8S_PROBE = {"periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}
ECS_HEALTH = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}
# podman exec's own start (about 0.2 s here) is not the probe's: allowed on top of its timeout.
EXEC_SLACK = 1.0
# This emulation waits at most this long for a probe or health check to pass.
WAIT_CAP = 60


def startup_probe(spec):
    """A Kubernetes startupProbe (exec or httpGet) as {what, exec|url, period, timeout, threshold}."""
    if not spec:
        return None
    spec = {**K8S_PROBE, **spec}
    probe = {"kind": "startupProbe", "period": spec["periodSeconds"], "timeout": spec["timeoutSeconds"],
             "threshold": spec["failureThreshold"]}
    if "exec" in spec:
        probe["exec"] = list(spec["exec"]["command"])
        probe["what"] = "exec " + " ".join(probe["exec"])
    elif "httpGet" in spec:
        get = spec["httpGet"]
        probe["url"] = f"http://127.0.0.1:{get['port']}{get.get('path', '/')}"
        probe["what"] = "GET " + probe["url"]
    else:
        sys.exit(f"only exec and httpGet startupProbes are emulated: {spec}")
    return probe


def health_check(name, spec):
    """An ECS container healthCheck as {what, exec, interval, timeout, retries, startPeriod}."""
    if not spec:
        sys.exit(f"dependsOn HEALTHY needs a healthCheck on {name} (else it never becomes HEALTHY)")
    spec = {**ECS_HEALTH, **spec}
    command = spec["command"]
    if command[0] == "CMD":
        argv = command[1:]
    elif command[0] == "CMD-SHELL":
        argv = ["/bin/sh", "-c", " ".join(command[1:])]
    else:
        sys.exit(f"a healthCheck command starts with CMD or CMD-SHELL: {command}")
    return {"kind": "healthCheck", "exec": argv, "what": " ".join(command), "interval": spec["interval"],
            "timeout": spec["timeout"], "retries": spec["retries"], "startPeriod": spec["startPeriod"]}


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
        if dep["condition"] in ("START", "HEALTHY"):
            step["sidecar"] = True
            step["essential"] = defs[dep["containerName"]].get("essential", True)
            if dep["condition"] == "HEALTHY":
                step["health"] = health_check(dep["containerName"], defs[dep["containerName"]].get("healthCheck"))
        elif dep["condition"] != "SUCCESS":
            sys.exit(f"only dependsOn SUCCESS, START and HEALTHY are emulated: {dep}")
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

    def probe_once(name, cname, probe, since):
        """One probe or health check, run the way the kubelet / the ECS agent runs it: (passed, result)."""
        at = time.monotonic() - since
        if "exec" in probe:
            try:
                p = subprocess.run(podman + ["exec", cname] + probe["exec"], capture_output=True, text=True,
                                   timeout=probe["timeout"] + EXEC_SLACK)
                passed, result = p.returncode == 0, f"exit {p.returncode}"
            except subprocess.TimeoutExpired:
                passed, result = False, f"timed out after {probe['timeout']} s"
        else:
            try:
                with urllib.request.urlopen(probe["url"], timeout=probe["timeout"]) as r:
                    passed, result = 200 <= r.status < 400, f"HTTP {r.status}"
            except urllib.error.HTTPError as e:
                passed, result = False, f"HTTP {e.code}"
            except (urllib.error.URLError, OSError) as e:
                passed, result = False, f"failed: {e}"
        print(f"probe {name}: {probe['kind']} {probe['what']}: {result} ({at:.1f} s after the start)", flush=True)
        return passed, result

    def sleep_until(when, cname):
        """Sleeps until `when`; False as soon as the container is no longer running."""
        while time.monotonic() < when:
            if not running(cname):
                return False
            time.sleep(min(0.1, max(0.0, when - time.monotonic())))
        return running(cname)

    def wait_startup(step, cname, since):
        """Kubernetes startupProbe: the first probe at once, then one every periodSeconds."""
        probe = step["probe"]
        deadline = since + min(probe["period"] * probe["threshold"], WAIT_CAP)
        failures = 0
        while running(cname):
            begun = time.monotonic()
            passed, result = probe_once(step["name"], cname, probe, since)
            if passed:
                print(f"sidecar {step['name']}: started (startupProbe {probe['what']}: {result}"
                      f" after {failures} failed)", flush=True)
                return True
            failures += 1
            if failures >= probe["threshold"] or time.monotonic() >= deadline:
                break
            if not sleep_until(begun + probe["period"], cname):
                break
        return False

    def wait_healthy(step, cname, since):
        """ECS (Docker) healthCheck: 'healthy', 'unhealthy', 'exited' or 'timeout'."""
        hc = step["health"]
        streak = checks = 0
        next_at = since + hc["interval"]
        while True:
            if not sleep_until(next_at, cname):
                return "exited"
            begun = time.monotonic()
            passed, result = probe_once(step["name"], cname, hc, since)
            checks += 1
            if passed:
                print(f"sidecar {step['name']}: healthy (healthCheck {hc['what']}: {result} at check {checks},"
                      f" {time.monotonic() - since:.1f} s after the start)", flush=True)
                return "healthy"
            if begun - since >= hc["startPeriod"]:
                streak += 1
                if streak >= hc["retries"]:
                    print(f"sidecar {step['name']}: unhealthy ({streak} failed checks in a row after the"
                          f" {hc['startPeriod']} s start period)", flush=True)
                    return "unhealthy"
            if time.monotonic() - since >= WAIT_CAP:
                print(f"sidecar {step['name']}: not healthy within {WAIT_CAP} s (this emulation's limit)", flush=True)
                return "timeout"
            next_at = time.monotonic() + hc["interval"]

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
            since = time.monotonic()
            started.append((step, cname))
            if step.get("health"):
                outcome = wait_healthy(step, cname, since)
                if outcome != "healthy":
                    if outcome == "exited":
                        print(f"sidecar {step['name']}: exited (essential: the task stops)"
                              if step.get("essential") else f"sidecar {step['name']}: exited before it was healthy", flush=True)
                    stop(step, cname, "sidecar")  # removed below, with the others started
                    return 0
                continue
            if not step["probe"]:
                print(f"sidecar {step['name']}: started", flush=True)
                continue
            if not wait_startup(step, cname, since):
                stop(step, cname, "sidecar")
                print(f"sidecar {step['name']}: startupProbe {step['probe']['what']} never passed", flush=True)
                return 0

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
