#!/usr/bin/env python3
"""Helm chart tests (no cluster needed):

  - helm lint --strict for the library chart and the example chart (both modes);
  - helm template for each mode, piped to kubernetes-validate --strict (Kubernetes 1.30 and 1.37);
  - assertions on the rendered YAML: init container present and first, env and volumes wired,
    IRSA annotation, restricted Pod Security settings, resources;
  - values.schema.json rejects bad values (missing product code and more).

Usage: tests/deploy/helm_test.py [--render-dir DIR]   (HELM=/path/to/helm, else helm on PATH)
With --render-dir, the rendered manifests are also written there (tests/deploy/podman.sh runs
them for real).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
        for mode in ("init", "wrapper"):
            rc, out, err = helm("lint", "--strict", ex, "-f", os.path.join(ci, f"{mode}-values.yaml"))
            check(f"helm lint --strict helm/example ({mode} mode)", rc == 0, out + err)
        rc, out, err = helm("template", "rel", lib)
        check("a library chart cannot be installed on its own", rc != 0 and "library" in err.lower(), err)

        rendered = {}
        for mode in ("init", "wrapper"):
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
        check("wrapper: app command is `/entitle/entitle run -- /app/server`",
              app.get("command") == ["/entitle/entitle", "run", "--", "/app/server"], app.get("command"))
        check("wrapper: app args kept", app.get("args") == ["--port", "8080"], app.get("args"))
        am = mounts_of(app)
        check("wrapper: binary mounted read-only at /entitle",
              am.get("entitle-bin", {}).get("readOnly") is True and am["entitle-bin"]["mountPath"] == "/entitle", am)
        e = env_of(app)
        check("wrapper: app container gets entitle's env", e.get("ENTITLE_PRODUCT_CODE") == "prod-abc123example" and "ENTITLE_PUBLIC_KEY_FILE" in e, e)
        check("wrapper: no AWS_REGION when region is empty (the IRSA webhook sets it)", "AWS_REGION" not in e, e)
        check("wrapper: existingConfigMap used, none rendered",
              not by_kind(docs, "ConfigMap") and {v["name"]: v for v in pod["volumes"]}["entitle-key"]["configMap"]["name"] == "my-product-entitle-key")
        check("wrapper: no record volume", "entitle-record" not in {v["name"] for v in pod["volumes"]})
        restricted_pss(pod, "wrapper")

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
        ]
        for what, args, field in cases:
            rc, out, err = helm("template", "rel", ex, *base, *args)
            check(f"schema rejects {what}", rc != 0 and field in err, f"rc={rc}\n{err}")
        rc, out, err = helm("template", "rel", ex, "-f", os.path.join(ex, "values.yaml"))
        check("schema rejects the chart's defaults alone (no product code)", rc != 0 and "productCode" in err, err)
        rc, out, err = helm("template", "rel", ex, *base, "--set", "entitle.publicKey=", "--set", "entitle.existingConfigMap=k")
        check("schema accepts existingConfigMap instead of an inline key", rc == 0, err)
        rc, out, err = helm("template", "rel", ex, *base, "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=shared",
                            "--set", "serviceAccount.roleArn=")
        check("an existing ServiceAccount needs no roleArn here", rc == 0 and "serviceAccountName: shared" in out, err)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
