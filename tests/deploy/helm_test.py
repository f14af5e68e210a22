#!/usr/bin/env python3
"""Helm chart tests (no cluster needed):

  - helm lint --strict for the library chart and the example chart (every ci/*-values.yaml:
    init, wrapper, metered with the sidecar, metered in run mode);
  - helm template for each, piped to kubernetes-validate --strict (Kubernetes 1.30 and 1.37);
  - assertions on the rendered YAML: init container present and first, env and volumes wired,
    IRSA annotation, restricted Pod Security settings, resources, FallbackToLogsOnError on every
    container; the wrapper's install path (/.entitle); metering: the native sidecar's shape
    (restartPolicy Always, listening on loopback only with no port declared, an exec startupProbe
    `/entitle health` sized to entitle.timeout that follows the listen address, journal on an
    emptyDir, no key), the app's ENTITLE_METER_URL, run mode's env and ENTITLE_GRACE_PERIOD, the
    grace period check, no NetworkPolicy (nothing listens beyond loopback);
  - values.schema.json rejects bad values (missing product code, bad dimensions and more), and
    the library refuses the same mistakes by itself (a chart without that schema).

Usage: tests/deploy/helm_test.py [--render-dir DIR]   (HELM=/path/to/helm, else helm on PATH)
With --render-dir, the rendered manifests are also written there (tests/deploy/podman.sh runs
them for real).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODES = ("init", "wrapper", "meter-sidecar", "meter-run")  # helm/example/ci/MODE-values.yaml
HELM = os.environ.get("HELM") or shutil.which("helm")
PASSED = FAILED = 0


def ok(what):
    global PASSED
    PASSED += 1
    print(f"ok   - {what}")


def bad(what, detail=""):
    global FAILED
    FAILED += 1
    print(f"FAIL - {what}")
    for line in str(detail).strip().splitlines()[-25:]:
        print(f"#    {line}")


def check(what, cond, detail=""):
    (ok if cond else bad)(what, *([detail] if not cond else []))
    return cond


def run(args, stdin=None, timeout=120):
    p = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def helm(*args, timeout=120):
    return run([HELM, *args], timeout=timeout)


def render(chart, *args):
    rc, out, err = helm("template", "rel", chart, "--namespace", "shop", *args)
    if rc != 0:
        raise RuntimeError(err)
    return out, [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def mounts_of(container):
    return {m["name"]: m for m in container.get("volumeMounts", [])}


def pod_of(docs):
    return by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]


def termination_policies(pod, label):
    for c in pod.get("initContainers", []) + pod["containers"]:
        check(f"{label}: {c['name']}: terminationMessagePolicy FallbackToLogsOnError",
              c.get("terminationMessagePolicy") == "FallbackToLogsOnError", c.get("terminationMessagePolicy"))


def restricted_pss(pod, label):
    """The restricted Pod Security Standard's checks that apply to these pods."""
    psc = pod.get("securityContext", {})
    check(f"{label}: pod seccompProfile RuntimeDefault", psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
    check(f"{label}: pod runAsNonRoot", psc.get("runAsNonRoot") is True)
    check(f"{label}: no host namespaces", not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")))
    allowed = {"configMap", "emptyDir", "projected", "secret", "downwardAPI", "persistentVolumeClaim", "ephemeral", "csi"}
    vols = pod.get("volumes", [])
    check(f"{label}: only restricted-allowed volume types", all(set(v) - {"name"} <= allowed for v in vols), vols)
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        name = f"{label}: container {c['name']}"
        check(f"{name}: allowPrivilegeEscalation false", sc.get("allowPrivilegeEscalation") is False)
        check(f"{name}: readOnlyRootFilesystem", sc.get("readOnlyRootFilesystem") is True)
        check(f"{name}: capabilities drop ALL, add none",
              sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add"))
        check(f"{name}: runAsNonRoot, uid 65532", sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532)
        check(f"{name}: not privileged", not sc.get("privileged"))
        check(f"{name}: seccomp RuntimeDefault", sc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
        res = c.get("resources", {})
        check(f"{name}: resources (requests, memory limit)", res.get("requests") and res.get("limits", {}).get("memory"), res)


def main():
    render_dir = None
    if "--render-dir" in sys.argv:
        render_dir = sys.argv[sys.argv.index("--render-dir") + 1]
        os.makedirs(render_dir, exist_ok=True)
    if not HELM:
        print("helm not found: set HELM or put helm on PATH (see .ci/run)")
        return 1
    rc, out, _ = helm("version", "--short")
    print(f"#    helm {out.strip()}")

    work = tempfile.mkdtemp(prefix="entitle-helm.")
    try:
        shutil.copytree(os.path.join(REPO, "helm"), os.path.join(work, "helm"),
                        ignore=shutil.ignore_patterns("charts", "Chart.lock", "*.tgz"))
        lib = os.path.join(work, "helm", "entitle")
        ex = os.path.join(work, "helm", "example")
        ci = os.path.join(ex, "ci")
        rc, out, err = helm("dependency", "update", ex)
        if not check("helm dependency update (file://../entitle)", rc == 0, err):
            return 1

        # --- lint ---
        rc, out, err = helm("lint", "--strict", lib)
        check("helm lint --strict helm/entitle (library)", rc == 0, out + err)
        for mode in MODES:
            rc, out, err = helm("lint", "--strict", ex, "-f", os.path.join(ci, f"{mode}-values.yaml"))
            check(f"helm lint --strict helm/example ({mode} mode)", rc == 0, out + err)
        rc, out, err = helm("template", "rel", lib)
        check("a library chart cannot be installed on its own", rc != 0 and "library" in err.lower(), err)

        rendered = {}
        for mode in MODES:
            text, docs = render(ex, "-f", os.path.join(ci, f"{mode}-values.yaml"))
            rendered[mode] = docs
            if render_dir:
                with open(os.path.join(render_dir, f"{mode}.yaml"), "w") as f:
                    f.write(text)
            for kv in ("1.30.0", "1.37.0"):
                rc, out, err = run(["kubernetes-validate", "--strict", "--quiet", "-k", kv, "-"], stdin=text)
                check(f"kubernetes-validate --strict -k {kv} ({mode} mode)", rc == 0, out + err)

        # --- init mode ---
        docs = rendered["init"]
        dep = by_kind(docs, "Deployment")[0]
        pod = dep["spec"]["template"]["spec"]
        sa = by_kind(docs, "ServiceAccount")
        cms = by_kind(docs, "ConfigMap")
        check("init: one ServiceAccount", len(sa) == 1)
        check("init: SA annotated for IRSA",
              sa[0]["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn")
              == "arn:aws:iam::123456789012:role/my-product-registerusage", sa)
        check("init: pod uses that SA", pod.get("serviceAccountName") == sa[0]["metadata"]["name"])
        check("init: API token not mounted (IRSA projects its own)", pod.get("automountServiceAccountToken") is False)
        inits = pod.get("initContainers", [])
        check("init: entitle-check is the first init container", inits and inits[0]["name"] == "entitle-check", inits)
        init = inits[0]
        check("init: image from values", init["image"] == "registry.example.com/entitle:0.1.0")
        check("init: runs `check --output /var/run/entitle/record.json`",
              init.get("args") == ["check", "--output", "/var/run/entitle/record.json"] and "command" not in init, init.get("args"))
        e = env_of(init)
        check("init: ENTITLE_PRODUCT_CODE", e.get("ENTITLE_PRODUCT_CODE") == "prod-abc123example", e)
        check("init: ENTITLE_PUBLIC_KEY_VERSION", e.get("ENTITLE_PUBLIC_KEY_VERSION") == "1", e)
        check("init: ENTITLE_PUBLIC_KEY_FILE in the key mount", e.get("ENTITLE_PUBLIC_KEY_FILE") == "/etc/entitle/key/product-key.pem", e)
        check("init: AWS_REGION wired from values", e.get("AWS_REGION") == "us-east-1", e)
        check("init: IMDS disabled", e.get("AWS_EC2_METADATA_DISABLED") == "true", e)
        check("init: JSON logs, 30m budget", e.get("ENTITLE_LOG_FORMAT") == "json" and e.get("ENTITLE_TIMEOUT") == "30m", e)
        m = mounts_of(init)
        check("init: record emptyDir mounted writable at /var/run/entitle",
              m.get("entitle-record", {}).get("mountPath") == "/var/run/entitle" and not m["entitle-record"].get("readOnly"), m)
        check("init: key mounted read-only", m.get("entitle-key", {}).get("readOnly") is True, m)
        app = pod["containers"][0]
        am = mounts_of(app)
        check("init: app mounts the record read-only",
              am.get("entitle-record", {}).get("readOnly") is True and am["entitle-record"]["mountPath"] == "/var/run/entitle", am)
        check("init: app told ENTITLE_RECORD", env_of(app).get("ENTITLE_RECORD") == "/var/run/entitle/record.json")
        check("init: app command untouched (image entrypoint)", "command" not in app)
        vols = {v["name"]: v for v in pod["volumes"]}
        check("init: record volume is an emptyDir", "emptyDir" in vols.get("entitle-record", {}), vols)
        check("init: key volume is the rendered ConfigMap",
              len(cms) == 1 and vols.get("entitle-key", {}).get("configMap", {}).get("name") == cms[0]["metadata"]["name"], vols)
        check("init: ConfigMap holds the PEM", "BEGIN PUBLIC KEY" in (cms[0]["data"].get("product-key.pem", "") if cms else ""))
        restricted_pss(pod, "init")

        # --- wrapper mode ---
        docs = rendered["wrapper"]
        pod = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
        inits = pod.get("initContainers", [])
        check("wrapper: entitle-install is the first init container", inits and inits[0]["name"] == "entitle-install", inits)
        check("wrapper: it installs the binary into the entitle-bin emptyDir",
              inits[0].get("args") == ["install", "/entitle-bin"] and mounts_of(inits[0]).get("entitle-bin", {}).get("mountPath") == "/entitle-bin",
              inits[0])
        app = pod["containers"][0]
        check("wrapper: app command is `/.entitle/entitle run -- /app/server` (an install path no image uses)",
              app.get("command") == ["/.entitle/entitle", "run", "--", "/app/server"], app.get("command"))
        check("wrapper: app args kept", app.get("args") == ["--port", "8080"], app.get("args"))
        am = mounts_of(app)
        check("wrapper: binary mounted read-only at /.entitle",
              am.get("entitle-bin", {}).get("readOnly") is True and am["entitle-bin"]["mountPath"] == "/.entitle", am)
        e = env_of(app)
        check("wrapper: app container gets entitle's env", e.get("ENTITLE_PRODUCT_CODE") == "prod-abc123example" and "ENTITLE_PUBLIC_KEY_FILE" in e, e)
        check("wrapper: no AWS_REGION when region is empty (the IRSA webhook sets it)", "AWS_REGION" not in e, e)
        check("wrapper: existingConfigMap used, none rendered",
              not by_kind(docs, "ConfigMap") and {v["name"]: v for v in pod["volumes"]}["entitle-key"]["configMap"]["name"] == "my-product-entitle-key")
        check("wrapper: no record volume", "entitle-record" not in {v["name"] for v in pod["volumes"]})
        restricted_pss(pod, "wrapper")
        termination_policies(pod, "wrapper")
        _, docs = render(ex, "-f", os.path.join(ci, "wrapper-values.yaml"), "--set", "entitle.binDir=/opt/vendor/entitle")
        pod = pod_of(docs)
        app = pod["containers"][0]
        check("wrapper: binDir moves the command and the mount together",
              app["command"][0] == "/opt/vendor/entitle/entitle" and mounts_of(app)["entitle-bin"]["mountPath"] == "/opt/vendor/entitle",
              app)
        check("wrapper: the install container still installs into its own mount",
              pod["initContainers"][0]["args"] == ["install", "/entitle-bin"])

        # --- not metered: nothing of metering is rendered ---
        for mode in ("init", "wrapper"):
            docs = rendered[mode]
            pod = pod_of(docs)
            names = [c["name"] for c in pod.get("initContainers", [])]
            envs = [e["name"] for c in pod.get("initContainers", []) + pod["containers"] for e in c.get("env", [])]
            check(f"{mode}: not metered: no sidecar, no journal volume, no ENTITLE_METER_* env, no NetworkPolicy",
                  "entitle-meter" not in names and "entitle-meter-state" not in {v["name"] for v in pod["volumes"]}
                  and not [e for e in envs if e.startswith("ENTITLE_METER")] and not by_kind(docs, "NetworkPolicy"),
                  (names, envs))
        termination_policies(pod_of(rendered["init"]), "init")

        # --- metered, sidecar mode (ci/meter-sidecar-values.yaml: init mode with a key) ---
        docs = rendered["meter-sidecar"]
        pod = pod_of(docs)
        inits = pod.get("initContainers", [])
        check("sidecar: init containers are entitle-check (RegisterUsage), then entitle-meter",
              [c["name"] for c in inits] == ["entitle-check", "entitle-meter"], [c["name"] for c in inits])
        side = inits[-1]
        check("sidecar: a native sidecar (restartPolicy Always), running `entitle meter`",
              side.get("restartPolicy") == "Always" and side.get("args") == ["meter"] and "command" not in side, side)
        check("sidecar: the entitle image", side.get("image") == "registry.example.com/entitle:0.1.0", side.get("image"))
        e = env_of(side)
        check("sidecar: ENTITLE_METER_DIMENSIONS from values", e.get("ENTITLE_METER_DIMENSIONS") == "scans,gb", e)
        check("sidecar: listens on loopback only (nothing outside the pod can report usage)",
              e.get("ENTITLE_METER_LISTEN") == "127.0.0.1:8787", e)
        check("sidecar: declares no port (nothing on the pod IP)", "ports" not in side, side.get("ports"))
        check("sidecar: journal in the state emptyDir", e.get("ENTITLE_METER_STATE") == "/.entitle-meter"
              and mounts_of(side).get("entitle-meter-state", {}).get("mountPath") == "/.entitle-meter"
              and not mounts_of(side)["entitle-meter-state"].get("readOnly"), (e, mounts_of(side)))
        check("sidecar: flush timeout", e.get("ENTITLE_METER_FLUSH_TIMEOUT") == "20s", e)
        check("sidecar: product code, region, IMDS off, JSON logs",
              e.get("ENTITLE_PRODUCT_CODE") == "prod-abc123example" and e.get("AWS_REGION") == "us-east-1"
              and e.get("AWS_EC2_METADATA_DISABLED") == "true" and e.get("ENTITLE_LOG_FORMAT") == "json", e)
        check("sidecar: no key (RegisterUsage stays with entitle-check: one per pod)",
              not [k for k in e if k.startswith("ENTITLE_PUBLIC_KEY")] and "entitle-key" not in mounts_of(side), e)
        probe = side.get("startupProbe", {})
        check("sidecar: startupProbe is an exec probe, `/entitle health` inside the sidecar (default URL http://127.0.0.1:8787)",
              probe.get("exec", {}).get("command") == ["/entitle", "health"]
              and not {"httpGet", "tcpSocket", "grpc"} & set(probe), probe)
        check("sidecar: the startupProbe outlasts the start check's retries (entitle.timeout 30m + 30 s, one probe a second)",
              probe.get("periodSeconds") == 1 and probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3) == 1830
              and probe.get("timeoutSeconds") == 2, probe)
        check("sidecar: no liveness/readiness probe (a stopping relay answers 503 while it flushes)",
              "livenessProbe" not in side and "readinessProbe" not in side)
        app = pod["containers"][0]
        e = env_of(app)
        check("sidecar: the app is told ENTITLE_METER_URL=http://127.0.0.1:8787", e.get("ENTITLE_METER_URL") == "http://127.0.0.1:8787", e)
        check("sidecar: the app keeps the record (entitle-check ran)", e.get("ENTITLE_RECORD") == "/var/run/entitle/record.json", e)
        check("sidecar: the app gets none of the relay's settings", not [k for k in e if k.startswith("ENTITLE_METER_") and k != "ENTITLE_METER_URL"], e)
        vols = {v["name"]: v for v in pod["volumes"]}
        check("sidecar: the journal volume is a disk emptyDir (survives a sidecar restart) with a size limit",
              "emptyDir" in vols.get("entitle-meter-state", {}) and vols["entitle-meter-state"]["emptyDir"].get("sizeLimit")
              and "medium" not in vols["entitle-meter-state"]["emptyDir"], vols.get("entitle-meter-state"))
        check("sidecar: terminationGracePeriodSeconds 60 (> app shutdown + 20 s flush + 5 s)",
              pod.get("terminationGracePeriodSeconds") == 60, pod.get("terminationGracePeriodSeconds"))
        check("sidecar: no NetworkPolicy (the relay listens on loopback; the app's own ingress is the vendor's to decide)",
              not by_kind(docs, "NetworkPolicy"))
        restricted_pss(pod, "sidecar")
        termination_policies(pod, "sidecar")

        # --- metered, run mode (ci/meter-run-values.yaml: wrapper, no key) ---
        docs = rendered["meter-run"]
        pod = pod_of(docs)
        check("run: only entitle-install before the app (the relay runs inside entitle run)",
              [c["name"] for c in pod.get("initContainers", [])] == ["entitle-install"])
        app = pod["containers"][0]
        check("run: app command is /.entitle/entitle run -- /app/server", app.get("command") == ["/.entitle/entitle", "run", "--", "/app/server"])
        e = env_of(app)
        check("run: the relay's settings in the app container's env",
              e.get("ENTITLE_METER_DIMENSIONS") == "scans,gb" and e.get("ENTITLE_METER_LISTEN") == "127.0.0.1:8787"
              and e.get("ENTITLE_METER_STATE") == "/.entitle-meter" and e.get("ENTITLE_METER_FLUSH_TIMEOUT") == "20s", e)
        check("run: ENTITLE_METER_URL left to entitle run", "ENTITLE_METER_URL" not in e, e)
        check("run: ENTITLE_GRACE_PERIOD = grace 60 - flush 20 - 5 = 35s (the flush always fits)",
              e.get("ENTITLE_GRACE_PERIOD") == "35s", e)
        check("run: no key anywhere (priced by dimensions only)",
              not by_kind(docs, "ConfigMap") and "entitle-key" not in {v["name"] for v in pod["volumes"]}
              and not [k for k in e if k.startswith("ENTITLE_PUBLIC_KEY")], e)
        am = mounts_of(app)
        check("run: journal mounted writable, binary read-only",
              am.get("entitle-meter-state", {}).get("mountPath") == "/.entitle-meter" and not am["entitle-meter-state"].get("readOnly")
              and am.get("entitle-bin", {}).get("readOnly") is True, am)
        check("run: no NetworkPolicy (the relay listens on loopback)", not by_kind(docs, "NetworkPolicy"))
        restricted_pss(pod, "run")
        termination_policies(pod, "run")

        # --- metering values wired through ---
        sidecar = os.path.join(ci, "meter-sidecar-values.yaml")
        run_values = os.path.join(ci, "meter-run-values.yaml")
        _, docs = render(ex, "-f", sidecar, "--set", "entitle.timeout=90s", "--set", "entitle.meter.port=9000",
                         "--set", "entitle.meter.flushTimeout=1m", "--set", "terminationGracePeriodSeconds=120")
        pod = pod_of(docs)
        side = pod["initContainers"][-1]
        probe = side["startupProbe"]
        check("sidecar: the startupProbe follows entitle.timeout (90 s + 30 s margin at 1 s)",
              probe["periodSeconds"] * probe["failureThreshold"] == 120, probe)
        check("sidecar: port wired (listen on 127.0.0.1, the probe's --meter-url, the app's URL)",
              probe["exec"]["command"] == ["/entitle", "health", "--meter-url", "http://127.0.0.1:9000"]
              and env_of(side)["ENTITLE_METER_LISTEN"] == "127.0.0.1:9000"
              and env_of(pod["containers"][0])["ENTITLE_METER_URL"] == "http://127.0.0.1:9000", (probe, env_of(side)))
        check("sidecar: flushTimeout wired", env_of(side)["ENTITLE_METER_FLUSH_TIMEOUT"] == "1m")
        for listen, command in [
            ("unix:/.entitle-meter/relay.sock", ["/entitle", "health", "--meter-url", "unix:/.entitle-meter/relay.sock"]),
            ("[::1]:8787", ["/entitle", "health", "--meter-url", "http://[::1]:8787"]),
            ("[::]:8787", ["/entitle", "health", "--meter-url", "http://[::1]:8787"]),
            ("0.0.0.0:8787", ["/entitle", "health"]),
            ("0.0.0.0:9100", ["/entitle", "health", "--meter-url", "http://127.0.0.1:9100"]),
        ]:
            _, docs = render(ex, "-f", sidecar, "--set-json", f'entitle.extraEnv=[{{"name":"ENTITLE_METER_LISTEN","value":"{listen}"}}]')
            side = pod_of(docs)["initContainers"][-1]
            names = [x["name"] for x in side["env"]]
            check(f"sidecar: ENTITLE_METER_LISTEN={listen} from extraEnv: listened on once, probed with {command[2:] or 'the default URL'}",
                  side["startupProbe"]["exec"]["command"] == command and names.count("ENTITLE_METER_LISTEN") == 1
                  and env_of(side)["ENTITLE_METER_LISTEN"] == listen, (side["startupProbe"], names))
        _, docs = render(ex, "-f", sidecar, "--set-json", 'entitle.extraEnv=[{"name":"ENTITLE_METER_URL","value":"http://127.0.0.1:1"}]')
        check("sidecar: an ENTITLE_METER_URL in extraEnv does not redirect the probe (--meter-url given, it wins)",
              pod_of(docs)["initContainers"][-1]["startupProbe"]["exec"]["command"]
              == ["/entitle", "health", "--meter-url", "http://127.0.0.1:8787"])
        _, docs = render(ex, "-f", run_values, "--set", "terminationGracePeriodSeconds=120", "--set", "entitle.meter.flushTimeout=1m 30s")
        check("run: ENTITLE_GRACE_PERIOD = 120 - 90 - 5 = 25s", env_of(pod_of(docs)["containers"][0]).get("ENTITLE_GRACE_PERIOD") == "25s")
        _, docs = render(ex, "-f", run_values, "--set-json", 'entitle.extraEnv=[{"name":"ENTITLE_GRACE_PERIOD","value":"5s"},{"name":"ENTITLE_METER_LISTEN","value":"unix:/.entitle-meter/relay.sock"}]')
        names = [x["name"] for x in pod_of(docs)["containers"][0]["env"]]
        check("run: extraEnv overrides the chart's ENTITLE_GRACE_PERIOD / ENTITLE_METER_LISTEN instead of duplicating them",
              names.count("ENTITLE_GRACE_PERIOD") == 1 and names.count("ENTITLE_METER_LISTEN") == 1
              and env_of(pod_of(docs)["containers"][0])["ENTITLE_METER_LISTEN"] == "unix:/.entitle-meter/relay.sock", names)
        _, docs = render(ex, "-f", sidecar, "--set", "entitle.publicKey=")
        pod = pod_of(docs)
        check("sidecar without a key: the sidecar alone gates the app (no entitle-check, record, key or ConfigMap)",
              [c["name"] for c in pod["initContainers"]] == ["entitle-meter"] and not by_kind(docs, "ConfigMap")
              and {v["name"] for v in pod["volumes"]} == {"entitle-meter-state"}
              and env_of(pod["containers"][0]) == {"ENTITLE_METER_URL": "http://127.0.0.1:8787"}, pod)
        for kv in ("1.30.0", "1.37.0"):
            text, _ = render(ex, "-f", sidecar, "--set", "entitle.publicKey=")
            rc, out, err = run(["kubernetes-validate", "--strict", "--quiet", "-k", kv, "-"], stdin=text)
            check(f"kubernetes-validate --strict -k {kv} (sidecar without a key)", rc == 0, out + err)

        # --- extras wired through ---
        _, docs = render(ex, "-f", os.path.join(ci, "init-values.yaml"), "--set", "entitle.image.digest=sha256:" + "a" * 64,
                         "--set-json", 'entitle.extraEnv=[{"name":"AWS_ENDPOINT_URL_MARKETPLACE_METERING","value":"http://127.0.0.1:9"}]')
        init = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["initContainers"][0]
        check("image digest pins the init container", init["image"] == "registry.example.com/entitle@sha256:" + "a" * 64, init["image"])
        check("extraEnv reaches entitle", env_of(init).get("AWS_ENDPOINT_URL_MARKETPLACE_METERING") == "http://127.0.0.1:9")

        # --- the schema ---
        base = ["-f", os.path.join(ci, "init-values.yaml")]
        cases = [
            ("missing product code", ["--set", "entitle.productCode=null"], "productCode"),
            ("empty product code (the values.yaml default)", ["--set", "entitle.productCode="], "productCode"),
            ("product code with bad characters", ["--set", "entitle.productCode=bad code!"], "productCode"),
            ("product code over 255 characters", ["--set", "entitle.productCode=" + "p" * 256], "productCode"),
            ("publicKeyVersion 0", ["--set", "entitle.publicKeyVersion=0"], "publicKeyVersion"),
            ("publicKeyVersion as a string", ["--set-string", "entitle.publicKeyVersion=1"], "publicKeyVersion"),
            ("no public key and no ConfigMap", ["--set", "entitle.publicKey="], "publicKey"),
            ("unknown mode", ["--set", "mode=sidecar"], "mode"),
            ("wrapper mode without a command", ["--set", "mode=wrapper"], "command"),
            ("malformed IRSA role ARN", ["--set", "serviceAccount.roleArn=my-role"], "roleArn"),
            ("ServiceAccount without an IRSA role", ["--set", "serviceAccount.roleArn="], "roleArn"),
            ("bad region", ["--set", "entitle.region=US East"], "region"),
            ("bad log format", ["--set", "entitle.logFormat=xml"], "logFormat"),
            ("a relative binDir", ["--set", "entitle.binDir=entitle"], "binDir"),
        ]
        meter = ["-f", sidecar]
        cases += [(what, meter + args, field) for what, args, field in [
            ("a dimension with a comma", ["--set-json", 'entitle.meter.dimensions=["scans,gb"]'], "dimensions"),
            ("an empty dimension", ["--set-json", 'entitle.meter.dimensions=[""]'], "dimensions"),
            ("a dimension with surrounding spaces", ["--set-json", 'entitle.meter.dimensions=[" scans"]'], "dimensions"),
            ("a dimension over 255 characters", ["--set-json", 'entitle.meter.dimensions=["' + "d" * 256 + '"]'], "dimensions"),
            ("25 dimensions", ["--set-json", "entitle.meter.dimensions=" + json.dumps([f"d{i}" for i in range(25)])], "dimensions"),
            ("a dimension given twice", ["--set-json", 'entitle.meter.dimensions=["scans","scans"]'], "dimensions"),
            ("dimensions as a string", ["--set-string", "entitle.meter.dimensions=scans"], "dimensions"),
            ("an unknown meter mode", ["--set", "entitle.meter.mode=daemon"], "mode"),
            ("meter mode run without the wrapper", ["--set", "entitle.meter.mode=run"], "mode"),
            ("a bad meter port", ["--set", "entitle.meter.port=70000"], "port"),
            ("a flush timeout without a unit", ["--set-string", "entitle.meter.flushTimeout=20"], "flushTimeout"),
            ("a relative state folder", ["--set", "entitle.meter.stateDir=state"], "stateDir"),
            ("no key and no dimensions", ["--set", "entitle.publicKey=", "--set-json", "entitle.meter.dimensions=[]"], "publicKey"),
            ("wrapper + sidecar without a key (entitle run would register)",
             ["--set", "mode=wrapper", "--set-json", 'command=["/app/server"]', "--set", "entitle.publicKey="], "publicKey"),
        ]]
        for what, args, field in cases:
            rc, out, err = helm("template", "rel", ex, *base, *args)
            check(f"schema rejects {what}", rc != 0 and field in err, f"rc={rc}\n{err}")
        for what, args in [
            ("24 dimensions of 255 characters", ["--set-json", "entitle.meter.dimensions=" + json.dumps([f"{i:02d}" + "d" * 253 for i in range(24)])]),
            ("a metered product without a key (sidecar gates)", ["--set", "entitle.publicKey="]),
            ("dimensions with inner spaces and symbols", ["--set-json", 'entitle.meter.dimensions=["Data Scanned (GB)","api-calls/1k"]']),
        ]:
            rc, out, err = helm("template", "rel", ex, *base, "-f", sidecar, *args)
            check(f"schema accepts {what}", rc == 0, err)
        rc, out, err = helm("template", "rel", ex, "-f", run_values)
        check("schema accepts run mode without a key", rc == 0, err)

        rc, out, err = helm("template", "rel", ex, "-f", os.path.join(ex, "values.yaml"))
        check("schema rejects the chart's defaults alone (no product code)", rc != 0 and "productCode" in err, err)
        rc, out, err = helm("template", "rel", ex, *base, "--set", "entitle.publicKey=", "--set", "entitle.existingConfigMap=k")
        check("schema accepts existingConfigMap instead of an inline key", rc == 0, err)
        rc, out, err = helm("template", "rel", ex, *base, "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=shared",
                            "--set", "serviceAccount.roleArn=")
        check("an existing ServiceAccount needs no roleArn here", rc == 0 and "serviceAccountName: shared" in out, err)

        # --- the library refuses the same mistakes by itself (a parent chart without the schema) ---
        os.unlink(os.path.join(ex, "values.schema.json"))
        for what, args, needle in [
            ("a dimension with a comma", ["--set-json", 'entitle.meter.dimensions=["scans,gb"]'], "without commas"),
            ("25 dimensions", ["--set-json", "entitle.meter.dimensions=" + json.dumps([f"d{i}" for i in range(25)])], "at most 24"),
            ("a dimension given twice", ["--set-json", 'entitle.meter.dimensions=["a","a"]'], "twice"),
            ("dimensions as a string", ["--set-string", "entitle.meter.dimensions=scans"], "must be a list"),
            ("an unknown meter mode", ["--set", "entitle.meter.mode=daemon"], "sidecar or run"),
            ("meter mode run without the wrapper", ["--set", "entitle.meter.mode=run"], "wrapper mode"),
            ("a grace period without room for the flush", ["--set", "terminationGracePeriodSeconds=25"], "leaves no room for the metering flush"),
            ("a flush timeout that is no duration", ["--set", "entitle.meter.flushTimeout=soon"], "not a duration"),
            ("wrapper + sidecar without a key", ["--set", "mode=wrapper", "--set-json", 'command=["/app/server"]', "--set", "entitle.publicKey="],
             "needs entitle.publicKey"),
            ("no key and no dimensions", ["--set", "entitle.publicKey=", "--set-json", "entitle.meter.dimensions=[]"], "entitle.publicKey (PEM)"),
        ]:
            rc, out, err = helm("template", "rel", ex, *base, "-f", sidecar, *args)
            check(f"library (no schema) refuses {what}", rc != 0 and needle in err, f"rc={rc}\n{err}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
