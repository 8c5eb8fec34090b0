#!/usr/bin/env python3
"""Kubernetes helpers for scripts/validate_deploy.sh (needs PyYAML and jsonschema: the driftd venv has both).

    k8s_tools.py crd SCHEMA.json FILE...     validate the custom resources in FILEs whose
                                             apiVersion/kind the schema fixes (strict: unknown
                                             fields are errors); other documents are skipped
    k8s_tools.py render DIR                  render the kustomization in DIR (fallback when
                                             neither kubectl nor kustomize is installed)
    k8s_tools.py compare A.yaml B.yaml       same objects in both multi-document files?
    k8s_tools.py consistency RENDERED.yaml SECRET_EXAMPLE.yaml GRACE_SECONDS
                                             cross-object references: selectors, ports,
                                             probes, ConfigMap/Secret names and keys, grace
                                             period, security context, NetworkPolicy ports
    k8s_tools.py config RENDERED.yaml OUT.toml
                                             the ConfigMap's driftd.toml: valid TOML, listens
                                             on the container port, holds no secrets; written
                                             to OUT.toml (for `driftd check-config`)
    k8s_tools.py split FILE OUTDIR [SKIP_KIND...]
                                             one file per document (for kubernetes-validate),
                                             leaving out the kinds named

The renderer supports what deploy/kubernetes, its component and deploy/overlays use:
`resources` (files, or directories holding a kustomization), `components` (kind Component),
`namespace` (set on namespaced objects), `labels` (pairs added to metadata.labels; with
includeSelectors also to selectors and pod templates), `commonLabels`, `images`
(newName/newTag/digest on containers' and initContainers' images) and `configMapGenerator`
(`files`, `options.labels`; the name gets kustomize's content hash, and references to it from
pod volumes, envFrom and configMapKeyRef follow). Anything else in a kustomization is an
error, so the fallback never silently renders something different from kustomize; when
kubectl is present, validate_deploy.sh renders with both and compares.
"""
import json
import os
import re
import sys

import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration", "APIService"}
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "commonLabels", "images",
             "components", "configMapGenerator"}
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def cmd_crd(schema_path, files):
    import jsonschema
    schema = json.load(open(schema_path))
    want = (schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"])
    validator = jsonschema.Draft7Validator(schema)
    errors, n = [], 0
    for path in files:
        for doc in load_all(path):
            if (doc.get("apiVersion"), doc.get("kind")) != want:
                continue
            n += 1
            name = (doc.get("metadata") or {}).get("name", "?")
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
                loc = ".".join(str(p) for p in e.absolute_path) or "(top)"
                errors.append(f"{path}: {want[1]}/{name}: {loc}: {e.message}")
            meta = doc.get("metadata") or {}
            if not isinstance(meta.get("name"), str) or not DNS1123.match(meta["name"]) or len(meta["name"]) > 253:
                errors.append(f"{path}: {want[1]}: metadata.name {meta.get('name')!r} is not a DNS-1123 subdomain")
            for key in ("labels", "annotations"):
                m = meta.get(key, {})
                if not isinstance(m, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in m.items()):
                    errors.append(f"{path}: {want[1]}/{name}: metadata.{key} must map strings to strings")
            extra = set(meta) - {"name", "namespace", "labels", "annotations"}
            if extra:
                errors.append(f"{path}: {want[1]}/{name}: unexpected metadata fields {sorted(extra)}")
    for e in errors:
        print(e)
    if n == 0:
        print(f"no {want[1]} found in {' '.join(files)}")
        return 1
    if not errors:
        print(f"{n} {want[1]} object(s) valid against {os.path.basename(schema_path)}")
    return 1 if errors else 0


def add_labels(obj, labels, selectors):
    obj.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    if not selectors:
        return
    spec = obj.get("spec") or {}
    sel = spec.get("selector")
    if isinstance(sel, dict):
        if obj["kind"] in ("Service", "ReplicationController"):
            sel.update(labels)
        else:
            sel.setdefault("matchLabels", {}).update(labels)
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        tmpl.setdefault("metadata", {}).setdefault("labels", {}).update(labels)


def set_images(obj, images):
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or obj.get("spec") or {}
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        img = c.get("image", "")
        name = re.split(r"[@:](?=[^/]*$)", img, maxsplit=1)[0]
        for rule in images:
            if rule["name"] == name:
                new = rule.get("newName", name)
                if "digest" in rule:
                    c["image"] = f"{new}@{rule['digest']}"
                elif "newTag" in rule:
                    c["image"] = f"{new}:{rule['newTag']}"
                else:
                    tag = img[len(name):]
                    c["image"] = new + tag


def kustomize_hash(data):
    """kustomize's name suffix for a generated ConfigMap (api/hasher: sha256 of Go's JSON of
    {"data", "kind", "name"}, first 10 hex digits with 0 1 3 a e mapped to g h k m t). The
    name is hashed empty, as kustomize 5 does for generated objects."""
    import hashlib
    text = json.dumps({"data": data, "kind": "ConfigMap", "name": ""}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def generate_configmaps(directory, k):
    """The ConfigMaps of `configMapGenerator`, and {generator name: hashed name}."""
    docs, names = [], {}
    for g in k.get("configMapGenerator", []):
        unknown = set(g) - {"name", "files", "options"}
        unknown |= set(g.get("options", {})) - {"labels"}
        if unknown:
            raise SystemExit(f"k8s_tools render: unsupported configMapGenerator fields {sorted(unknown)}: use kustomize")
        data = {}
        for f in g.get("files", []):
            key, _, path = f.rpartition("=") if "=" in f else (os.path.basename(f), "", f)
            data[key] = open(os.path.join(directory, path), encoding="utf-8").read()
        name = f"{g['name']}-{kustomize_hash(data)}"
        meta = {"name": name}
        if g.get("options", {}).get("labels"):
            meta = {"labels": dict(g["options"]["labels"]), "name": name}
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
        names[g["name"]] = name
    return docs, names


def rename_configmap_refs(obj, names):
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec")
    if not pod:
        return
    for v in pod.get("volumes") or []:
        if "configMap" in v and v["configMap"].get("name") in names:
            v["configMap"]["name"] = names[v["configMap"]["name"]]
        for src in (v.get("projected") or {}).get("sources") or []:
            if "configMap" in src and src["configMap"].get("name") in names:
                src["configMap"]["name"] = names[src["configMap"]["name"]]
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        for e in c.get("envFrom") or []:
            ref = e.get("configMapRef")
            if ref and ref.get("name") in names:
                ref["name"] = names[ref["name"]]
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
            if ref and ref.get("name") in names:
                ref["name"] = names[ref["name"]]


def transform(docs, k):
    """The kustomization's (or component's) transformers on everything accumulated so far."""
    for d in docs:
        if k.get("namespace") and d["kind"] not in CLUSTER_SCOPED:
            d.setdefault("metadata", {})["namespace"] = k["namespace"]
        if k.get("commonLabels"):
            add_labels(d, k["commonLabels"], True)
        for lab in k.get("labels", []):
            unknown = set(lab) - {"pairs", "includeSelectors"}
            if unknown:
                raise SystemExit(f"k8s_tools render: unsupported labels fields {sorted(unknown)}: use kustomize")
            add_labels(d, lab["pairs"], lab.get("includeSelectors", False))
        set_images(d, k.get("images", []))


def render(directory, kind="Kustomization"):
    k = yaml.safe_load(open(os.path.join(directory, "kustomization.yaml")))
    unknown = set(k) - SUPPORTED
    if unknown:
        raise SystemExit(f"k8s_tools render: unsupported kustomization fields {sorted(unknown)}: use kustomize")
    if k.get("kind", "Kustomization") != kind:
        raise SystemExit(f"k8s_tools render: {directory} is a {k.get('kind')}, expected a {kind}")
    docs = []
    for r in k.get("resources", []):
        path = os.path.join(directory, r)
        docs += render(path) if os.path.isdir(path) else load_all(path)
    generated, names = generate_configmaps(directory, k)
    docs += generated
    for c in k.get("components", []):
        docs += render(os.path.join(directory, c), kind="Component")
    for d in docs:
        rename_configmap_refs(d, names)
    transform(docs, k)
    return docs


def key(d):
    m = d.get("metadata", {})
    return (d.get("apiVersion"), d.get("kind"), m.get("namespace", ""), m.get("name"))


def cmd_compare(a, b):
    da = {key(d): d for d in load_all(a)}
    db = {key(d): d for d in load_all(b)}
    bad = []
    for k in sorted(set(da) | set(db), key=str):
        if k not in da or k not in db:
            bad.append(f"{k} only in {'the first' if k in da else 'the second'} rendering")
        elif da[k] != db[k]:
            bad.append(f"{k} differs:\n{yaml.safe_dump(da[k])}---\n{yaml.safe_dump(db[k])}")
    for x in bad:
        print(x)
    if not bad:
        print(f"{len(da)} objects identical")
    return 1 if bad else 0


def cmd_split(path, outdir, skip):
    os.makedirs(outdir, exist_ok=True)
    n = 0
    for i, d in enumerate(load_all(path)):
        if d.get("kind") in skip:
            continue
        n += 1
        name = f"{i:02d}-{d['kind'].lower()}-{d['metadata']['name']}.yaml"
        with open(os.path.join(outdir, name), "w") as f:
            yaml.safe_dump(d, f, sort_keys=False)
    print(n)
    return 0


def cmd_consistency(rendered, secret_example, min_grace):
    """Cross-object references in the rendered base (what no schema can see)."""
    docs = load_all(rendered)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    errs = []
    ns = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    names = {d["metadata"]["name"] for d in by_kind.get("Namespace", [])}
    if len(ns) != 1 or not ns <= names:
        errs.append(f"objects are in namespaces {sorted(map(str, ns))}, the base creates {sorted(names)}")
    (dep,) = by_kind["Deployment"]
    pod = dep["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    sel = dep["spec"]["selector"]["matchLabels"]
    if not sel.items() <= pod_labels.items():
        errs.append("Deployment selector does not match its pod template labels")

    def selects(matcher, what):
        if not matcher or not matcher.items() <= pod_labels.items():
            errs.append(f"{what} selector {matcher} does not select the driftd pods {pod_labels}")

    spec = pod["spec"]
    (c,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        p = c.get(probe, {}).get("httpGet", {})
        if p.get("port") not in ports and p.get("port") not in ports.values():
            errs.append(f"{probe} uses port {p.get('port')!r}, container ports are {ports}")
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        errs.append("livenessProbe must GET /healthz")
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        errs.append("readinessProbe must GET /readyz")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace <= min_grace:
        errs.append(f"terminationGracePeriodSeconds {grace} must exceed the training grace period {min_grace}s")
    psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
    for ok, what in [(psc.get("runAsNonRoot") is True, "runAsNonRoot"),
                     (psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccompProfile RuntimeDefault"),
                     (csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem"),
                     (csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false"),
                     (csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")]:
        if not ok:
            errs.append(f"pod security: {what} missing")
    # volumes: ConfigMap and Secret exist with the keys used
    cms = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    secret = load_all(secret_example)[0]
    skeys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for v in spec.get("volumes", []):
        if "configMap" in v:
            cm = cms.get(v["configMap"]["name"])
            if not cm:
                errs.append(f"volume {v['name']}: ConfigMap {v['configMap']['name']} is not in the base")
            elif "driftd.toml" not in cm.get("data", {}):
                errs.append(f"ConfigMap {v['configMap']['name']} has no driftd.toml")
        if "secret" in v:
            mode = v["secret"].get("defaultMode", 0o644)
            if psc.get("runAsUser", 0) != 0 and not mode & 0o044:
                errs.append(f"volume {v['name']}: defaultMode {mode:#o} lets only root read the files; "
                            "the pod runs as a non-root user (use 0440 with fsGroup)")
            if v["secret"]["secretName"] != secret["metadata"]["name"]:
                errs.append(f"volume {v['name']}: Secret {v['secret']['secretName']} is not the example's {secret['metadata']['name']}")
            for it in v["secret"].get("items", []):
                if it["key"] not in skeys:
                    errs.append(f"volume {v['name']}: key {it['key']} missing from {secret_example}")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    if mounts.get("/etc/driftd") is None:
        errs.append("the ConfigMap must be mounted at /etc/driftd")
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and (ref["name"] != secret["metadata"]["name"] or ref["key"] not in skeys):
            errs.append(f"env {e['name']}: secret {ref['name']}/{ref['key']} not in {secret_example}")
        if e["name"].endswith("_FILE") and not any(e.get("value", "").startswith(p + "/") for p in mounts):
            errs.append(f"env {e['name']}={e.get('value')} is not under a mounted volume")
    envs = {e["name"] for e in c.get("env", [])}
    for need in ("DRIFTD_DATABASE__URL", "DRIFTD_DATABASE__PASSWORD_FILE", "DRIFTD_HTTP__ADMIN_TOKEN_FILE"):
        if need not in envs:
            errs.append(f"env {need} is not set")
    # Service, ServiceMonitor, PDB, NetworkPolicy
    (svc,) = by_kind["Service"]
    selects(svc["spec"]["selector"], "Service")
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    for p in svc_ports.values():
        if p.get("targetPort") not in ports and p.get("targetPort") not in ports.values():
            errs.append(f"Service port {p['name']} targets {p.get('targetPort')!r}, not a container port")
    for sm in by_kind.get("ServiceMonitor", []):
        if not sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items():
            errs.append("ServiceMonitor selector does not select the Service")
        for ep in sm["spec"]["endpoints"]:
            if ep.get("port") not in svc_ports:
                errs.append(f"ServiceMonitor endpoint port {ep.get('port')!r} is not a Service port name")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        selects(pdb["spec"]["selector"]["matchLabels"], "PodDisruptionBudget")
        if pdb["spec"].get("minAvailable", 0) >= dep["spec"]["replicas"]:
            errs.append("PodDisruptionBudget minAvailable leaves no room for a voluntary disruption")
    for np_ in by_kind.get("NetworkPolicy", []):
        selects(np_["spec"]["podSelector"]["matchLabels"], "NetworkPolicy")
        eg = [p for r in np_["spec"].get("egress", []) for p in r.get("ports", [])]
        if {(p.get("port"), p.get("protocol", "TCP")) for p in eg} != {(5432, "TCP"), (53, "UDP"), (53, "TCP")}:
            errs.append(f"NetworkPolicy egress ports {eg}: expected PostgreSQL 5432 and DNS 53 only")
        ing = [p.get("port") for r in np_["spec"].get("ingress", []) for p in r.get("ports", [])]
        if any(p not in ports.values() and p not in ports for p in ing) or not ing:
            errs.append(f"NetworkPolicy ingress ports {ing} are not the metrics port {ports}")
    if dep["spec"].get("replicas", 1) < 2:
        errs.append("the Deployment should run at least 2 replicas")
    for e in errs:
        print(e)
    if not errs:
        print(f"{len(docs)} objects: selectors, ports, probes, volumes, secret keys, grace period and security context consistent")
    return 1 if errs else 0


def cmd_config(rendered, out_path):
    import tomllib
    docs = load_all(rendered)
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and "driftd.toml" in d.get("data", {})]
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    text = cm["data"]["driftd.toml"]
    errs = []
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        print(f"driftd.toml is not valid TOML: {e}")
        return 1
    ports = {p["containerPort"] for c in dep["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    listen = cfg.get("http", {}).get("listen", "")
    host, _, port = listen.rpartition(":")
    if host != "0.0.0.0" or not port.isdigit() or int(port) not in ports:
        errs.append(f"http.listen = {listen!r}: must be 0.0.0.0:<container port {sorted(ports)}>")
    for sect, key in (("database", "password"), ("http", "admin_token")):
        if key in cfg.get(sect, {}):
            errs.append(f"{sect}.{key} is a secret: it belongs in the Secret, not the ConfigMap")
    # A URL without a password is a placeholder the Deployment's DRIFTD_DATABASE__URL overrides.
    if re.match(r"^[a-z]+://[^/@]*:[^/@]*@", cfg.get("database", {}).get("url", "")):
        errs.append("database.url carries a password: it belongs in the Secret, not the ConfigMap")
    models = cfg.get("models", [])
    if not models or not all("name" in m and "n_features" in m for m in models):
        errs.append("every [[models]] needs name and n_features")
    for e in errs:
        print(e)
    open(out_path, "w").write(text)
    if not errs:
        print(f"driftd.toml: {len(models)} model(s), listens on {listen}, no secrets")
    return 1 if errs else 0


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "config":
        sys.exit(cmd_config(args[0], args[1]))
    if cmd == "consistency":
        sys.exit(cmd_consistency(args[0], args[1], int(args[2])))
    if cmd == "crd":
        sys.exit(cmd_crd(args[0], args[1:]))
    if cmd == "render":
        yaml.safe_dump_all(render(args[0]), sys.stdout, sort_keys=False)
        sys.exit(0)
    if cmd == "compare":
        sys.exit(cmd_compare(args[0], args[1]))
    if cmd == "split":
        sys.exit(cmd_split(args[0], args[1], set(args[2:])))
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
