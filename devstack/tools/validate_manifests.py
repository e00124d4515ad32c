"""Validate rendered Kubernetes manifests: core kinds with kubernetes-validate (strict schemas), CRDs
(KEDA ScaledObject, Prometheus ServiceMonitor) with this project's schemas in `crd-schemas/`, and the
object-name and label rules the API server enforces but JSON schemas do not express.

Runs under the kubernetes-validate venv that `fetch_tools.py` builds:

    .cache/tools/kubernetes-validate/bin/python devstack/tools/validate_manifests.py \
        --kube-version 1.29 --kube-version 1.35 rendered.yaml [...]

Prints one line per problem and a summary; exits 1 when any document is invalid. A kind with no
schema at all is an error: nothing passes unvalidated.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from kubernetes_validate import utils as kv

CRD_SCHEMAS = Path(__file__).resolve().parent / "crd-schemas"
# apiVersion group -> schema file stem prefix; the rest of the stem is "<kind>-<group short>-<version>".
CRD_GROUPS = {"keda.sh": "keda", "monitoring.coreos.com": "monitoring"}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Kinds whose names become DNS labels (Service names, pod hostnames) and so must be <= 63 characters.
_LABEL_NAMED_KINDS = {"Service", "Deployment", "Job"}


def _crd_schema(doc: dict[str, Any]) -> dict[str, Any] | None:
    group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
    short = CRD_GROUPS.get(group)
    if short is None:
        return None
    path = CRD_SCHEMAS / f"{str(doc.get('kind', '')).lower()}-{short}-{version}.json"
    if not path.exists():
        return None
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def _meta_problems(doc: dict[str, Any]) -> list[str]:
    meta = doc.get("metadata") or {}
    name = str(meta.get("name", ""))
    problems = []
    if not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        problems.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    if doc.get("kind") in _LABEL_NAMED_KINDS and (len(name) > 63 or not _DNS_LABEL.match(name)):
        problems.append(f"metadata.name {name!r} must be a DNS-1123 label (<= 63 characters)")
    spec = doc.get("spec") or {}
    completions = spec.get("completions")
    if doc.get("kind") == "Job" and spec.get("completionMode") == "Indexed" and isinstance(completions, int):
        # Pods get the hostname <job>-<index>, which must itself be a DNS label.
        hostname = f"{name}-{max(completions - 1, 0)}"
        if len(hostname) > 63:
            problems.append(f"pod hostname {hostname!r} of this Indexed Job exceeds 63 characters")
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(f"label {key}={value!r} is not a valid label value")
    return problems


def validate_document(doc: dict[str, Any], kube_versions: list[str]) -> list[str]:
    """Every problem found in one manifest, as readable strings (empty when valid)."""
    problems = _meta_problems(doc)
    crd = _crd_schema(doc)
    if crd is not None:
        for error in jsonschema.Draft202012Validator(crd).iter_errors(doc):
            problems.append(f"{'.'.join(map(str, error.absolute_path))}: {error.message}")
        return problems
    for version in kube_versions:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            problems.append(f"k8s {version}: {path}: {exc.message}")
        except kv.SchemaNotFoundError as exc:
            problems.append(f"no schema: {exc.message}")
    return problems


def load_documents(path: Path) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for doc in docs:
        if not isinstance(doc, dict):
            raise SystemExit(f"{path}: a document is not a mapping: {doc!r:.80}")
    return docs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kube-version", action="append", required=True, help="e.g. 1.29 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print a JSON report instead of text")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()

    report: list[dict[str, Any]] = []
    for path in args.files:
        for doc in load_documents(path):
            meta = doc.get("metadata") or {}
            report.append({
                "file": str(path),
                "kind": doc.get("kind"),
                "apiVersion": doc.get("apiVersion"),
                "name": meta.get("name"),
                "problems": validate_document(doc, args.kube_version),
            })  # fmt: skip
    invalid = [item for item in report if item["problems"]]
    if args.json:
        print(json.dumps(report))
    else:
        for item in invalid:
            for problem in item["problems"]:
                print(f"ERROR {item['file']}: {item['kind']}/{item['name']}: {problem}")
        print(f"{len(report)} manifests checked against Kubernetes {', '.join(args.kube_version)}: "
              f"{len(invalid)} invalid")  # fmt: skip
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
