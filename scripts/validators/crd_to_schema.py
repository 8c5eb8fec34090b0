#!/usr/bin/env python3
"""Turn a CustomResourceDefinition's OpenAPI schema into a strict JSON schema for validation.

    crd_to_schema.py CRD.yaml VERSION SOURCE-NOTE > OUT.schema.json   (needs PyYAML)

Keeps the structural keywords of `versions[VERSION].schema.openAPIV3Schema`, drops the
descriptions, defaults and x-kubernetes-* annotations, and adds `additionalProperties: false`
to every object that lists its properties (the API server prunes or, with strict field
validation, rejects unknown fields there; kubernetes-validate --strict does the same for
built-in kinds). Used to produce servicemonitor.v1.schema.json from the Prometheus Operator's
CRD, because kubernetes-validate has no schemas for custom resources.
"""
import json
import sys

import yaml

DROP = {"description", "default", "example", "format"}


def strict(node):
    if isinstance(node, list):
        return [strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items() if k not in DROP and not k.startswith("x-kubernetes-")}
    if "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def main():
    crd_path, version, note = sys.argv[1:4]
    crd = yaml.safe_load(open(crd_path))
    spec = crd["spec"]
    ver = next(v for v in spec["versions"] if v["name"] == version)
    schema = strict(ver["schema"]["openAPIV3Schema"])
    schema["properties"]["apiVersion"] = {"const": f"{spec['group']}/{version}"}
    schema["properties"]["kind"] = {"const": spec["names"]["kind"]}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    out = {"$schema": "http://json-schema.org/draft-07/schema#", "$comment": note}
    out.update(schema)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
