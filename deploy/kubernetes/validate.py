#!/usr/bin/env python3
"""Validates what the kustomize directories render, object by object.

    python3 deploy/kubernetes/validate.py [DIR ...]

DIRs default to base, overlays/production, overlays/production-with-redis and
overlays/prometheus-operator (relative to this file). For each, `kubectl kustomize DIR`
renders the manifests; then

- every built-in object is validated with kubernetes-validate in strict mode (unknown
  fields fail) against the oldest and the newest Kubernetes version we support;
- every Prometheus Operator object (ServiceMonitor, PrometheusRule, AlertmanagerConfig)
  is validated by crd-validate/validate.mjs against the schemas of
  @kubernetes-models/prometheus-operator (install it with
  `npm ci --prefix deploy/kubernetes/crd-validate`; .ci/run does);
- checks no schema can make: the probes, the security context, the config mount, the
  queue volume, the shutdown grace period, the image tag, what the Services, the
  ServiceMonitor and the PodDisruptionBudget select, and that probes and scrapes speak
  HTTPS where the bridge has a web configuration (on a Secret volume). Workloads other
  than the bridge's (the Redis of components/redis) get the checks that are not about
  the bridge: a pinned image, resources, probes, a non-root read-only security context.

Prints one line per object and one per problem, and exits 1 if there is any problem
(2 if a tool is missing). Needs python3 with kubernetes-validate, kubectl and node.
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_DIRS = (
    "base",
    "overlays/production",
    "overlays/production-with-redis",
    "overlays/prometheus-operator",
)
CRD_VALIDATOR = HERE / "crd-validate" / "validate.mjs"
INSTALL_HINT = "bash .ci/run installs it"

# The oldest Kubernetes release the manifests must work on, and the newest that the
# pinned kubernetes-validate knows: a field added after the first or removed by the
# second fails.
KUBERNETES_VERSIONS = ("1.33", "1.37")

# What the image and the bridge expect (deploy/Dockerfile, docs/commands.md "Endpoints").
CONTAINER = "alertmanager-dingtalk"
PORT = 8060
UID = 65532
LIVENESS_PATH = "/-/healthy"
READINESS_PATH = "/-/ready"
# docs/commands.md "Shutdown": requests in flight get up to 5 s before shutdown_timeout starts.
IN_FLIGHT_SECONDS = 5

WORKLOADS = ("Deployment", "StatefulSet")
CRD_GROUP = "monitoring.coreos.com/"


def fail_setup(message):
    print(f"validate.py: {message}", file=sys.stderr)
    sys.exit(2)


try:
    import yaml
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError
except ImportError as error:
    fail_setup(f"{error}: pip install kubernetes-validate==1.37.0 ({INSTALL_HINT})")


def render(directory):
    """The objects `kubectl kustomize` renders for `directory`."""
    if shutil.which("kubectl") is None:
        fail_setup(f"kubectl not found on PATH ({INSTALL_HINT})")
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True
    )
    if result.returncode != 0:
        return None, result.stderr.strip()
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc], None


def name_of(obj):
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def validate_builtin(obj):
    """Schema problems of a built-in object, one string per Kubernetes version."""
    problems = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except ValidationError as error:
            path = ".".join(str(part) for part in error.path) or "(top level)"
            problems.append(f"Kubernetes {version} schema: {path}: {error.message}")
        except SchemaNotFoundError as error:
            problems.append(f"Kubernetes {version}: {error.message}")
    return problems


def validate_crds(objects):
    """Schema problems of Prometheus Operator objects: a list parallel to `objects`."""
    if not objects:
        return []
    if shutil.which("node") is None:
        fail_setup(f"node not found on PATH, needed for {CRD_VALIDATOR.name}")
    if not (CRD_VALIDATOR.parent / "node_modules").is_dir():
        fail_setup(
            f"{CRD_VALIDATOR.parent}/node_modules is missing: run "
            f"`npm ci --prefix {CRD_VALIDATOR.parent}` ({INSTALL_HINT})"
        )
    result = subprocess.run(
        ["node", str(CRD_VALIDATOR)],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        fail_setup(f"{CRD_VALIDATOR.name} failed:\n{result.stderr}")
    verdicts = json.loads(result.stdout)
    return [[f"prometheus-operator schema: {v}"] if v else [] for v in verdicts]


def seconds(duration):
    """A config duration (`10s`, `1m30s`, `24h`) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+)(ms|h|m|s)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(int(n) * units[u] for n, u in parts)


def bridge_container(pod):
    """The bridge's container in `pod`."""
    return next(c for c in pod["containers"] if c["name"] == CONTAINER)


def bridge_config(objects, pod):
    """The parsed config.yaml of the ConfigMap that `pod` mounts, or a problem."""
    container = bridge_container(pod)
    args = container.get("args", [])
    if "--config" not in args or args.index("--config") + 1 >= len(args):
        return None, "the container's args give no --config FILE"
    config_path = pathlib.PurePosixPath(args[args.index("--config") + 1])
    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    for volume in pod.get("volumes", []):
        mount = mounts.get(volume["name"])
        if "configMap" not in volume or mount is None:
            continue
        if pathlib.PurePosixPath(mount["mountPath"]) != config_path.parent:
            continue
        name = volume["configMap"]["name"]
        configmap = next(
            (o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name),
            None,
        )
        if configmap is None:
            return None, f"ConfigMap {name} (mounted at {mount['mountPath']}) is not rendered"
        text = configmap.get("data", {}).get(config_path.name)
        if text is None:
            return None, f"ConfigMap {name} has no key {config_path.name}"
        return yaml.safe_load(text), None
    return None, f"no ConfigMap volume is mounted at {config_path.parent}"


def serves_https(container):
    """Whether the bridge's `container` is given a web configuration, and so serves HTTPS.

    The repository's web configurations all have tls_server_config; one without it
    (basic auth over plain HTTP) would have to be told apart here."""
    return "--web.config.file" in container.get("args", [])


def web_config_problem(pod, container):
    """A problem of the --web.config.file argument of the bridge's `container`, or
    None: the file must be on a Secret (or projected) volume, since it may hold basic
    auth hashes and names the TLS key."""
    args = container.get("args", [])
    index = args.index("--web.config.file")
    if index + 1 >= len(args):
        return "--web.config.file is given no FILE"
    directory = pathlib.PurePosixPath(args[index + 1]).parent
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        if pathlib.PurePosixPath(mount["mountPath"]) != directory:
            continue
        volume = volumes.get(mount["name"], {})
        if "secret" in volume or "projected" in volume:
            return None
        return f"the web configuration's directory {directory} must be a Secret or projected volume"
    return f"no volume is mounted at {directory}, the web configuration's directory"


def is_bridge(obj):
    """Whether `obj` is the bridge's Deployment or StatefulSet (it runs CONTAINER)."""
    if obj.get("kind") not in WORKLOADS:
        return False
    containers = obj["spec"]["template"]["spec"].get("containers", [])
    return any(c.get("name") == CONTAINER for c in containers)


def check_container_basics(pod, container, uid=None):
    """Problems of any workload's container: security context, image tag, resources."""
    problems = []
    # The container's securityContext overrides the pod's, field by field.
    pod_context = pod.get("securityContext", {})
    context = {**pod_context, **container.get("securityContext", {})}
    expected = {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
    }
    if uid is not None:
        expected |= {"runAsUser": uid, "runAsGroup": uid}
    for key, value in expected.items():
        if context.get(key) != value:
            problems.append(f"securityContext.{key} must be {value}, is {context.get(key)}")
    if uid is None and context.get("runAsUser") == 0:
        problems.append("securityContext.runAsUser must not be 0")
    if "ALL" not in context.get("capabilities", {}).get("drop", []):
        problems.append("securityContext.capabilities.drop must include ALL")
    if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("securityContext.seccompProfile.type must be RuntimeDefault")

    image = container.get("image", "")
    if "@" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
        problems.append(f"image {image!r} must carry a version tag or a digest, not latest")

    resources = container.get("resources", {})
    if "memory" not in resources.get("limits", {}):
        problems.append("resources.limits.memory must be set")
    if not {"cpu", "memory"} <= resources.get("requests", {}).keys():
        problems.append("resources.requests must set cpu and memory")
    return problems


def check_other_workload(obj):
    """What a schema cannot see in a workload beside the bridge (components/redis)."""
    pod = obj["spec"]["template"]["spec"]
    problems = []
    for container in pod.get("containers", []):
        found = check_container_basics(pod, container)
        for probe_name in ("livenessProbe", "readinessProbe"):
            if probe_name not in container:
                found.append(f"{probe_name} must be set")
        problems += [f"container {container['name']}: {p}" for p in found]
    return problems


def check_workload(obj, objects):
    """What a schema cannot see in the bridge's Deployment or StatefulSet."""
    problems = []
    spec = obj["spec"]
    pod = spec["template"]["spec"]
    containers = {c["name"]: c for c in pod.get("containers", [])}
    container = containers.get(CONTAINER)
    if container is None:
        return [f"no container named {CONTAINER}"]

    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if ports.get("http") != PORT:
        problems.append(f"container port `http` must be {PORT}, is {ports.get('http')}")
    https = serves_https(container)
    for probe_name, path in (("livenessProbe", LIVENESS_PATH), ("readinessProbe", READINESS_PATH)):
        probe = container.get(probe_name, {}).get("httpGet")
        if probe is None:
            problems.append(f"{probe_name} must be an httpGet of {path}")
            continue
        if probe.get("path") != path:
            problems.append(f"{probe_name} path must be {path}, is {probe.get('path')}")
        if probe.get("port") not in ("http", PORT):
            problems.append(f"{probe_name} port must be `http` ({PORT}), is {probe.get('port')}")
        scheme = "HTTPS" if https else "HTTP"
        if probe.get("scheme", "HTTP") != scheme:
            problems.append(
                f"{probe_name} scheme must be {scheme}, as the bridge serves it, "
                f"is {probe.get('scheme', 'HTTP')}"
            )
    if https:
        problem = web_config_problem(pod, container)
        if problem:
            problems.append(problem)

    problems += check_container_basics(pod, container, uid=UID)

    config, problem = bridge_config(objects, pod)
    if problem:
        return problems + [problem]
    delivery = config.get("delivery") or {}

    # Shutdown: the kubelet's SIGKILL must not cut the bridge's own shutdown short.
    shutdown = seconds(str(delivery.get("shutdown_timeout", "10s")))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= IN_FLIGHT_SECONDS + shutdown:
        problems.append(
            f"terminationGracePeriodSeconds ({grace}) must exceed {IN_FLIGHT_SECONDS} s "
            f"for requests in flight + delivery.shutdown_timeout ({shutdown:g} s)"
        )

    # The queue: absolute (a relative path lands in the read-only ConfigMap mount) and
    # on a writable volume (the root filesystem is read-only).
    queue_dir = delivery.get("queue_dir")
    if delivery.get("mode", "queued") == "queued" and queue_dir:
        if not queue_dir.startswith("/"):
            problems.append(f"delivery.queue_dir {queue_dir!r} must be absolute")
        else:
            writable = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
            writable |= {
                t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])
            }
            mounted = [
                m
                for m in container.get("volumeMounts", [])
                if m["mountPath"].rstrip("/") == queue_dir.rstrip("/")
            ]
            if not mounted or mounted[0]["name"] not in writable or mounted[0].get("readOnly"):
                problems.append(
                    f"delivery.queue_dir {queue_dir} must be a writable emptyDir or "
                    f"volumeClaimTemplate mount"
                )
    return problems


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def selected_workloads(selector, objects):
    """The workloads whose pods `selector` (a label map) matches."""
    return [
        o
        for o in objects
        if o["kind"] in WORKLOADS
        and matches(selector, o["spec"]["template"]["metadata"].get("labels", {}))
    ]


def check_services(objects):
    """Problems of the Services and ServiceMonitors: what selects what. By object name."""
    problems = {}
    services = [o for o in objects if o["kind"] == "Service"]
    for service in services:
        selected = selected_workloads(service["spec"].get("selector"), objects)
        if not selected:
            problems.setdefault(name_of(service), []).append("its selector matches no pod")
        elif len(selected) > 1:
            # Say, the bridge's Service sending webhooks to the Redis pod too.
            problems.setdefault(name_of(service), []).append(
                f"its selector matches the pods of {[name_of(o) for o in selected]}"
            )
    for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
        selector = monitor["spec"].get("selector", {}).get("matchLabels", {})
        selected = [s for s in services if matches(selector, s["metadata"].get("labels", {}))]
        if len(selected) != 1:
            problems.setdefault(name_of(monitor), []).append(
                f"must select exactly one Service, selects {[name_of(s) for s in selected]}"
            )
            continue
        ports = {p.get("name") for p in selected[0]["spec"]["ports"]}
        bridges = [
            w
            for w in selected_workloads(selected[0]["spec"].get("selector"), objects)
            if is_bridge(w)
        ]
        https = any(serves_https(bridge_container(w["spec"]["template"]["spec"])) for w in bridges)
        for endpoint in monitor["spec"].get("endpoints", []):
            if endpoint.get("port") not in ports:
                problems.setdefault(name_of(monitor), []).append(
                    f"endpoint port {endpoint.get('port')} is not a port of {name_of(selected[0])}"
                )
            scheme = endpoint.get("scheme", "http")
            if scheme != ("https" if https else "http"):
                problems.setdefault(name_of(monitor), []).append(
                    f"endpoint scheme is {scheme}, but the bridge serves "
                    f"{'HTTPS (components/prometheus-operator-tls)' if https else 'HTTP'}"
                )
    return problems


def check_disruption_budgets(objects):
    """A PDB must leave at least one pod evictable, or node drains hang. By object name."""
    problems = {}
    for pdb in (o for o in objects if o["kind"] == "PodDisruptionBudget"):
        spec = pdb["spec"]
        selected = selected_workloads(spec.get("selector", {}).get("matchLabels"), objects)
        if not selected:
            problems[name_of(pdb)] = ["its selector matches no pod"]
            continue
        replicas = sum(o["spec"].get("replicas", 1) for o in selected)
        if "minAvailable" in spec and isinstance(spec["minAvailable"], int):
            if spec["minAvailable"] >= replicas:
                problems[name_of(pdb)] = [
                    f"minAvailable {spec['minAvailable']} with {replicas} replica(s) "
                    f"blocks every eviction (node drains hang)"
                ]
        if spec.get("maxUnavailable") == 0:
            problems[name_of(pdb)] = ["maxUnavailable 0 blocks every eviction"]
    return problems


def validate_directory(directory):
    """Prints the verdict on each object rendered from `directory`; False if any failed."""
    print(f"== {directory.relative_to(HERE) if directory.is_relative_to(HERE) else directory}")
    objects, error = render(directory)
    if objects is None:
        print(f"  INVALID: kubectl kustomize failed:\n{error}")
        return False
    if not any(is_bridge(o) for o in objects):
        print(f"  INVALID: renders no Deployment or StatefulSet with a container {CONTAINER}")
        return False

    crds = [o for o in objects if str(o.get("apiVersion", "")).startswith(CRD_GROUP)]
    crd_problems = dict(zip(map(id, crds), validate_crds(crds)))
    extra = check_services(objects)
    for name, found in check_disruption_budgets(objects).items():
        extra.setdefault(name, []).extend(found)

    ok = True
    for obj in objects:
        if id(obj) in crd_problems:
            problems = list(crd_problems[id(obj)])
        else:
            problems = validate_builtin(obj)
            if obj["kind"] in WORKLOADS:
                try:
                    if is_bridge(obj):
                        problems += check_workload(obj, objects)
                    else:
                        problems += check_other_workload(obj)
                except (KeyError, TypeError, ValueError, StopIteration) as error:
                    problems.append(f"cannot run the sanity checks: {error!r}")
        problems += extra.get(name_of(obj), [])
        if problems:
            ok = False
            print(f"  INVALID {name_of(obj)}:")
            for problem in problems:
                print(f"    - {problem}")
        else:
            print(f"  ok      {name_of(obj)}")
    return ok


def main(argv):
    directories = [pathlib.Path(a).resolve() for a in argv] or [HERE / d for d in DEFAULT_DIRS]
    results = [validate_directory(d) for d in directories]
    if not all(results):
        print("validate.py: some objects are invalid (see INVALID above)", file=sys.stderr)
        return 1
    print(f"validate.py: all objects valid ({len(directories)} directories)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
