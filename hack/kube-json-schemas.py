#!/usr/bin/env python3
"""Writes the JSON schemas kubeconform validates manifests against, without any network.

kubeconform looks a manifest's schema up by kind and API version, in files named
`<kind>-<first label of the group>-<version>.json` (core kinds: `<kind>-<version>.json`). Its
usual source is a GitHub repository we cannot reach, so this script writes the same layout
from inputs we have offline:

  --swagger FILE  the OpenAPI v2 document of the Kubernetes release the cluster runs
                  (api/openapi-spec/swagger.json of the k8s.io/kubernetes Go module, which is
                  what its kube-apiserver serves at /openapi/v2): one schema per built-in kind.
  --crd FILE      CustomResourceDefinition YAML files: one schema per served version.

The schemas are strict: an object that lists its properties rejects any other (the API
server would drop such a field silently, which hides typos), except where Kubernetes keeps
unknown fields (x-kubernetes-preserve-unknown-fields). References stay references, to a
`definitions` section inside each file, so recursive types (a CRD's JSONSchemaProps) work.
"""

import argparse
import json
import os
import sys

import yaml

DEFS = "#/definitions/"
INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
# A quantity is written as a string ("500m", "1Gi") or a bare number (cpu: 1).
QUANTITY = {"oneOf": [{"type": "string"}, {"type": "number"}]}
QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
OBJECT_META_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def file_name(kind, group, version):
    short_group = group.split(".")[0].lower()
    group_part = f"-{short_group}" if short_group else ""
    return f"{kind.lower()}{group_part}-{version.lower()}.json"


def strict_swagger(node):
    """A copy of a Swagger 2 schema node as a strict draft-4 JSON schema."""
    if not isinstance(node, dict):
        return node
    if node.get("format") == "int-or-string":
        return dict(INT_OR_STRING, description=node.get("description", ""))
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: strict_swagger(prop) for name, prop in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = strict_swagger(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [strict_swagger(v) for v in value]
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def refs(node, found):
    """Adds the definition names `node` refers to, directly, to `found`."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(DEFS):
            found.add(ref[len(DEFS):])
        for key, value in node.items():
            # A property may be called "$ref" (JSONSchemaProps has one): only values count.
            if key == "properties" and isinstance(value, dict):
                for prop in value.values():
                    refs(prop, found)
            elif key != "$ref":
                refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def closure(definitions, roots):
    """The definitions reachable from `roots`."""
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in definitions:
            sys.exit(f"kube-json-schemas: unknown definition {name}")
        seen.add(name)
        found = set()
        refs(definitions[name], found)
        todo.extend(found - seen)
    return seen


def load_swagger(path):
    with open(path) as f:
        raw = json.load(f)["definitions"]
    definitions = {name: strict_swagger(schema) for name, schema in raw.items()}
    definitions[QUANTITY_DEF] = dict(QUANTITY, description=raw[QUANTITY_DEF].get("description", ""))
    return definitions


def with_definitions(root, definitions, roots):
    schema = {"$schema": "http://json-schema.org/draft-04/schema#"}
    schema.update(root)
    needed = closure(definitions, roots)
    if needed:
        schema["definitions"] = {name: definitions[name] for name in sorted(needed)}
    return schema


def swagger_schemas(definitions):
    """(file name, schema) of every kind in the document."""
    written = {}
    for name, definition in sorted(definitions.items()):
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            fname = file_name(gvk["kind"], gvk["group"], gvk["version"])
            if written.get(fname, name) != name:
                sys.exit(f"kube-json-schemas: {written[fname]} and {name} both map to {fname}")
            written[fname] = name
    for fname, name in sorted(written.items()):
        yield fname, with_definitions(definitions[name], definitions, [name])


def strict_structural(node, embedded=False):
    """A copy of a CRD's structural (OpenAPI v3) schema node as a strict draft-4 schema."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: strict_structural(prop) for name, prop in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = strict_structural(value) if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [strict_structural(v) for v in value]
        elif key in ("nullable", "x-kubernetes-validations", "default", "example"):
            # CEL rules need the API server; defaults do not constrain what a manifest holds.
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-embedded-resource") or embedded:
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    keeps_unknown = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not keeps_unknown:
        out["additionalProperties"] = False
    return out


def crd_schemas(paths, definitions):
    """(file name, schema) of every served version of every CRD in `paths`."""
    for path in paths:
        with open(path) as f:
            documents = [d for d in yaml.safe_load_all(f) if d]
        for crd in documents:
            if crd.get("kind") != "CustomResourceDefinition":
                sys.exit(f"kube-json-schemas: {path} holds a {crd.get('kind')}, not a CustomResourceDefinition")
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                raw = version.get("schema", {}).get("openAPIV3Schema")
                if raw is None:
                    sys.exit(f"kube-json-schemas: {path} version {version['name']} has no schema")
                root = strict_structural(raw, embedded=True)
                props = root["properties"]
                props["apiVersion"] = {"enum": [f"{spec['group']}/{version['name']}"]}
                props["kind"] = {"enum": [spec["names"]["kind"]]}
                roots = []
                if definitions and OBJECT_META_DEF in definitions:
                    props["metadata"] = {"$ref": DEFS + OBJECT_META_DEF}
                    roots.append(OBJECT_META_DEF)
                fname = file_name(spec["names"]["kind"], spec["group"], version["name"])
                yield fname, with_definitions(root, definitions or {}, roots)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory to write the schemas to")
    parser.add_argument("--swagger", help="OpenAPI v2 document of a Kubernetes release")
    parser.add_argument("--crd", nargs="*", default=[], help="CustomResourceDefinition YAML files")
    parser.add_argument("--builtin", action="store_true",
                        help="write the built-in kinds of --swagger (otherwise it only serves ObjectMeta to --crd)")
    args = parser.parse_args()
    if args.builtin and not args.swagger:
        parser.error("--builtin needs --swagger")

    definitions = load_swagger(args.swagger) if args.swagger else None
    os.makedirs(args.out, exist_ok=True)
    count = 0
    schemas = crd_schemas(args.crd, definitions)
    if args.builtin:
        schemas = list(swagger_schemas(definitions)) + list(schemas)
    for fname, schema in schemas:
        with open(os.path.join(args.out, fname), "w") as f:
            json.dump(schema, f, indent=None, separators=(",", ":"), sort_keys=True)
        count += 1
    print(f"kube-json-schemas: wrote {count} schemas to {args.out}")


if __name__ == "__main__":
    main()
