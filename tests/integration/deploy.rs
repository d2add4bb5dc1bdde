//! The deployment files under `deploy/`: what `kubectl kustomize` renders for each
//! Kubernetes directory is valid (deploy/kubernetes/validate.py), the config inside each
//! rendered ConfigMap passes `check` with exactly the credentials the manifests provide,
//! the replicas never add up to more than DingTalk's 20 messages a minute per robot
//! (each with its own rate window, or sharing one through Redis with `cluster:`), the
//! Redis of components/redis never evicts the bridge's keys, the Ingress of
//! components/actions-ingress exposes only the action pages, and the Dockerfile (which
//! cannot be built here) agrees with the manifests.
//!
//! Needs `python3` with kubernetes-validate, `kubectl`, and `node` with
//! deploy/kubernetes/crd-validate installed: `bash .ci/run` installs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use testkit::temp_dir;

use crate::BINARY;

/// The kustomize directories, relative to deploy/kubernetes.
const DIRECTORIES: [&str; 4] = [
    "base",
    "overlays/production",
    "overlays/production-with-redis",
    "overlays/prometheus-operator",
];

/// The bridge's container in the Deployment or StatefulSet.
const CONTAINER: &str = "alertmanager-dingtalk";

/// DingTalk blocks a robot for 10 minutes once it gets more than this many messages in
/// a minute (docs/delivery.md, "Rate limit").
const DINGTALK_PER_MINUTE: u64 = 20;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kubernetes_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// Fails, rather than skips, when a tool the tests drive is missing.
fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` not found on PATH: the deploy tests need it; `bash .ci/run` installs it"
    );
}

/// Runs `python3 deploy/kubernetes/validate.py ARGS`; returns success and its output.
fn validator(args: &[&Path]) -> (bool, String) {
    require("python3");
    require("kubectl");
    let output = Command::new("python3")
        .arg(kubernetes_dir().join("validate.py"))
        .args(args)
        .output()
        .expect("run validate.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The objects `kubectl kustomize` renders for a directory under deploy/kubernetes.
fn render(directory: &str) -> Vec<Value> {
    require("kubectl");
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(kubernetes_dir().join(directory))
        .output()
        .expect("run kubectl kustomize");
    assert!(
        output.status.success(),
        "kubectl kustomize {directory} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("kustomize output is UTF-8");
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("kustomize output of {directory} is not YAML: {e}"))
        .into_iter()
        .filter(|doc| !doc.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

/// The bridge's Deployment or StatefulSet: the one that runs the container `CONTAINER`
/// (components/redis adds a Deployment of its own).
fn workload<'a>(objects: &'a [Value], directory: &str) -> &'a Value {
    let workloads: Vec<_> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
        .filter(|o| {
            o["spec"]["template"]["spec"]["containers"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["name"] == CONTAINER))
        })
        .collect();
    assert_eq!(
        workloads.len(),
        1,
        "{directory}: expected one Deployment or StatefulSet running {CONTAINER}"
    );
    workloads[0]
}

fn container(workload: &Value) -> &Value {
    workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == CONTAINER))
        .unwrap_or_else(|| panic!("no container {CONTAINER} in {workload}"))
}

/// The `--config` path in the container's args.
fn config_path(container: &Value) -> String {
    container_arg(container, "--config").expect("--config in the container's args")
}

/// The value the container's args give `flag` (`--flag VALUE`), if any.
fn container_arg(container: &Value, flag: &str) -> Option<String> {
    let args: Vec<&str> = container["args"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let at = args.iter().position(|a| *a == flag)?;
    Some(args.get(at + 1)?.to_string())
}

/// The volume mounted at `mount_path` in the container, and the mount.
fn volume_at<'a>(workload: &'a Value, mount_path: &str) -> Option<(&'a Value, &'a Value)> {
    let mount = container(workload)["volumeMounts"]
        .as_array()?
        .iter()
        .find(|m| m["mountPath"] == mount_path)?;
    let volume = workload["spec"]["template"]["spec"]["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == mount["name"])?;
    Some((volume, mount))
}

/// The config.yaml text of the ConfigMap the bridge's `--config` points into: taken
/// from the rendered objects, not from the source file.
fn rendered_config(objects: &[Value], directory: &str) -> String {
    let workload = workload(objects, directory);
    let path = config_path(container(workload));
    let (dir, file) = path.rsplit_once('/').expect("absolute --config path");
    let (volume, _) = volume_at(workload, dir)
        .unwrap_or_else(|| panic!("{directory}: nothing is mounted at {dir}"));
    let name = volume["configMap"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{directory}: {dir} is not a ConfigMap volume"));
    let configmap = find(objects, "ConfigMap", name)
        .unwrap_or_else(|| panic!("{directory}: ConfigMap {name} is not rendered"));
    configmap["data"][file]
        .as_str()
        .unwrap_or_else(|| panic!("{directory}: ConfigMap {name} has no {file}"))
        .to_owned()
}

/// The decoded data of a rendered Secret.
fn secret_data(secret: &Value) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    for (key, value) in secret["data"].as_object().into_iter().flatten() {
        // kubectl folds long values over several lines.
        let base64: String = value
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let bytes = STANDARD.decode(base64).expect("Secret data is base64");
        data.insert(key.clone(), String::from_utf8(bytes).expect("UTF-8 secret"));
    }
    for (key, value) in secret["stringData"].as_object().into_iter().flatten() {
        data.insert(key.clone(), value.as_str().unwrap_or_default().to_owned());
    }
    data
}

#[test]
fn validator_passes_for_every_kustomize_directory() {
    let directories: Vec<PathBuf> = DIRECTORIES
        .iter()
        .map(|d| kubernetes_dir().join(d))
        .collect();
    let args: Vec<&Path> = directories.iter().map(PathBuf::as_path).collect();
    let (success, output) = validator(&args);
    assert!(success, "validate.py failed:\n{output}");
    for directory in DIRECTORIES {
        assert!(output.contains(&format!("== {directory}")), "{output}");
    }
    assert!(output.contains("ok      ServiceMonitor/"), "{output}");
    assert!(output.contains("ok      AlertmanagerConfig/"), "{output}");
    assert!(output.contains("ok      StatefulSet/"), "{output}");
    assert!(
        output.contains("ok      Deployment/alertmanager-dingtalk-redis"),
        "{output}"
    );
}

/// A temporary directory for a kustomization of the test's own, and deploy/kubernetes as
/// a path relative to it: kustomize accepts only relative paths to other kustomizations.
fn temp_kustomization_dir(what: &str) -> (PathBuf, String) {
    let dir = temp_dir(what).canonicalize().unwrap();
    let up = "../".repeat(dir.components().count() - 1);
    let kubernetes = kubernetes_dir().canonicalize().unwrap();
    let kubernetes = kubernetes.strip_prefix("/").expect("absolute path");
    (dir, format!("{up}{}", kubernetes.display()))
}

/// The Prometheus Operator objects are a component, so the production overlay can take
/// them too, as docs/deploy.md says: the one that scrapes over HTTPS, since
/// production serves HTTPS; the plain one is refused there.
#[test]
fn production_with_the_prometheus_operator_component_validates() {
    let (dir, kubernetes) = temp_kustomization_dir("deploy-production-monitored");
    let kustomization = |component: &str| {
        let text = format!(
            "resources:\n  - {kubernetes}/overlays/production\n\
             components:\n  - {kubernetes}/components/{component}\n"
        );
        std::fs::write(dir.join("kustomization.yaml"), text).unwrap();
    };
    kustomization("prometheus-operator-tls");
    let (success, output) = validator(&[&dir]);
    assert!(success, "{output}");
    for kind in [
        "StatefulSet",
        "ServiceMonitor",
        "PrometheusRule",
        "AlertmanagerConfig",
    ] {
        assert!(
            output.contains(&format!("ok      {kind}/")),
            "{kind}:\n{output}"
        );
    }
    kustomization("prometheus-operator");
    let (success, output) = validator(&[&dir]);
    assert!(!success, "{output}");
    assert!(
        output.contains("endpoint scheme is http, but the bridge serves HTTPS"),
        "{output}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The namespace the manifests' host names carry (the certificate's name in web.yml, the
/// AlertmanagerConfig's webhook URL): docs/deploy.md applies them with `-n monitoring`.
const NAMESPACE: &str = "monitoring";

/// The one webhook of the AlertmanagerConfig that `directory` renders, after checking
/// that its route sends to that webhook's receiver and that its URL is the bridge's
/// Alertmanager endpoint on the base Service,
/// `SCHEME://NAME.NAMESPACE.svc:PORT/alertmanager`, with the Service's name and the
/// number of its port `http`.
fn alertmanager_webhook<'a>(objects: &'a [Value], directory: &str, scheme: &str) -> &'a Value {
    let config = find(objects, "AlertmanagerConfig", "alertmanager-dingtalk")
        .unwrap_or_else(|| panic!("{directory}: no AlertmanagerConfig alertmanager-dingtalk"));
    assert_eq!(
        config["apiVersion"], "monitoring.coreos.com/v1alpha1",
        "{directory}: {config}"
    );
    let receivers = config["spec"]["receivers"].as_array().expect("receivers");
    assert_eq!(receivers.len(), 1, "{directory}: {config}");
    assert_eq!(
        config["spec"]["route"]["receiver"], receivers[0]["name"],
        "{directory}: the route must send to the bridge's receiver: {config}"
    );
    let webhooks = receivers[0]["webhookConfigs"]
        .as_array()
        .expect("webhookConfigs");
    assert_eq!(webhooks.len(), 1, "{directory}: {config}");
    let webhook = &webhooks[0];

    let service = find(objects, "Service", "alertmanager-dingtalk")
        .unwrap_or_else(|| panic!("{directory}: no Service alertmanager-dingtalk"));
    let name = service["metadata"]["name"].as_str().unwrap();
    let port = service["spec"]["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["name"] == "http"))
        .unwrap_or_else(|| panic!("{directory}: the Service has no port `http`"))["port"]
        .as_u64()
        .expect("a port number");
    assert_eq!(
        webhook["url"],
        format!("{scheme}://{name}.{NAMESPACE}.svc:{port}/alertmanager"),
        "{directory}: {webhook}"
    );
    // As deploy/alertmanager/alertmanager.yml: the bridge decides per strategy whether
    // resolved alerts are sent, and routes every alert of a group.
    assert_eq!(
        webhook["sendResolved"].as_bool(),
        Some(true),
        "{directory}: {webhook}"
    );
    assert_eq!(webhook["maxAlerts"], 0, "{directory}: {webhook}");
    webhook
}

/// components/prometheus-operator's AlertmanagerConfig posts to the bridge's Service at
/// `/alertmanager`: over plain HTTP without a token on the base, which serves that; and,
/// with components/prometheus-operator-tls on the production overlay, over HTTPS,
/// checking the certificate against the CA of the Secret the bridge serves it from, with
/// the bearer token of the Secret and key the bridge reads its own copy from.
#[test]
fn the_alertmanager_config_posts_to_the_bridges_service() {
    let directory = "overlays/prometheus-operator";
    let objects = render(directory);
    let webhook = alertmanager_webhook(&objects, directory, "http");
    assert!(
        webhook.get("httpConfig").is_none(),
        "{directory}: the base requires no token and serves no TLS: {webhook}"
    );

    let (dir, kubernetes) = temp_kustomization_dir("deploy-production-alertmanagerconfig");
    let text = format!(
        "resources:\n  - {kubernetes}/overlays/production\n\
         components:\n  - {kubernetes}/components/prometheus-operator-tls\n"
    );
    std::fs::write(dir.join("kustomization.yaml"), text).unwrap();
    let directory = dir.to_str().unwrap();
    let objects = render(directory);
    let webhook = alertmanager_webhook(&objects, directory, "https");
    let http = &webhook["httpConfig"];

    // The bearer token: the Secret and key mounted where auth.bearer_token_file reads it.
    let authorization = &http["authorization"];
    assert_eq!(authorization["type"], "Bearer", "{webhook}");
    let credentials = &authorization["credentials"];
    assert_eq!(
        credentials["name"], "alertmanager-dingtalk-tokens",
        "{webhook}"
    );
    assert_eq!(credentials["key"], "bearer-token", "{webhook}");
    let config: Value =
        serde_saphyr::from_str(&rendered_config(&objects, directory)).expect("config is YAML");
    let token_file = config["auth"]["bearer_token_file"]
        .as_str()
        .expect("production requires a bearer token (auth.bearer_token_file)");
    let (token_dir, token_name) = token_file.rsplit_once('/').expect("an absolute path");
    let workload = workload(&objects, directory);
    let (volume, _) = volume_at(workload, token_dir)
        .unwrap_or_else(|| panic!("nothing is mounted at {token_dir}"));
    assert_eq!(
        volume["secret"]["secretName"], credentials["name"],
        "{volume}"
    );
    let item = volume["secret"]["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["path"] == token_name))
        .unwrap_or_else(|| panic!("the token volume lists no {token_name}: {volume}"));
    assert_eq!(item["key"], credentials["key"], "{volume}");

    // TLS: the CA of the certificate Secret that the bridge's web configuration serves,
    // for the name the certificate is issued for, which the ServiceMonitor checks too.
    let tls = &http["tlsConfig"];
    assert_eq!(
        tls["ca"]["secret"]["name"], "alertmanager-dingtalk-tls",
        "{webhook}"
    );
    assert_eq!(tls["ca"]["secret"]["key"], "ca.crt", "{webhook}");
    assert!(tls.get("insecureSkipVerify").is_none(), "{webhook}");
    assert_eq!(
        tls["serverName"],
        format!("alertmanager-dingtalk.{NAMESPACE}.svc"),
        "{webhook}"
    );
    let monitor =
        find(&objects, "ServiceMonitor", "alertmanager-dingtalk").expect("the ServiceMonitor");
    assert_eq!(
        tls["serverName"], monitor["spec"]["endpoints"][0]["tlsConfig"]["serverName"],
        "{monitor}"
    );
    let web_config = container_arg(container(workload), "--web.config.file")
        .expect("production serves HTTPS (--web.config.file)");
    let (web_dir, _) = web_config.rsplit_once('/').expect("an absolute path");
    let (volume, _) =
        volume_at(workload, web_dir).unwrap_or_else(|| panic!("nothing is mounted at {web_dir}"));
    let serves_from_ca_secret = volume["projected"]["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|source| source["secret"]["name"] == tls["ca"]["secret"]["name"]);
    assert!(
        serves_from_ca_secret,
        "the bridge's certificate must come from the Secret whose CA Alertmanager checks: {volume}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// components/actions-ingress on the production overlay: valid, its Ingress routes only
/// `/act/` to the bridge's Service, and the NetworkPolicy lets the Ingress controller in
/// beside Alertmanager and Prometheus.
#[test]
fn the_actions_ingress_exposes_only_the_action_pages() {
    let (dir, kubernetes) = temp_kustomization_dir("deploy-production-actions");
    let text = format!(
        "resources:\n  - {kubernetes}/overlays/production\n\
         components:\n  - {kubernetes}/components/actions-ingress\n"
    );
    std::fs::write(dir.join("kustomization.yaml"), text).unwrap();
    let (success, output) = validator(&[&dir]);
    assert!(success, "{output}");
    assert!(output.contains("ok      Ingress/"), "{output}");

    let objects = render(dir.to_str().unwrap());
    let ingress = find(&objects, "Ingress", "alertmanager-dingtalk-actions").expect("the Ingress");
    let rules = ingress["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{ingress}");
    let paths = rules[0]["http"]["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 1, "{ingress}");
    assert_eq!(paths[0]["path"], "/act/");
    assert_eq!(paths[0]["pathType"], "Prefix");
    let service = find(&objects, "Service", "alertmanager-dingtalk").expect("the Service");
    let backend = &paths[0]["backend"]["service"];
    assert_eq!(backend["name"], "alertmanager-dingtalk");
    assert_eq!(
        backend["port"]["number"],
        service["spec"]["ports"][0]["port"]
    );
    assert!(ingress["spec"].get("defaultBackend").is_none(), "{ingress}");

    let policy = find(&objects, "NetworkPolicy", "alertmanager-dingtalk").expect("the policy");
    let ingress_rules = policy["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress_rules.len(), 2, "{policy}");
    assert_eq!(
        ingress_rules[1]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "ingress-nginx"
    );
    assert_eq!(ingress_rules[1]["ports"][0]["port"], 8060);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The validator fails where it should: a green run above means something.
#[test]
fn validator_rejects_broken_manifests() {
    let (dir, kubernetes) = temp_kustomization_dir("deploy-broken");
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!(
            r#"resources:
  - {kubernetes}/overlays/prometheus-operator
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: {{name: alertmanager-dingtalk}}
      spec:
        template:
          spec:
            terminationGracePeriodSeconds: 10
            containers:
              - name: alertmanager-dingtalk
                livenessProbes: {{}}
                readinessProbe: {{httpGet: {{path: /-/healthy, scheme: HTTPS}}}}
                securityContext: {{runAsUser: 0}}
  - patch: |-
      apiVersion: monitoring.coreos.com/v1
      kind: ServiceMonitor
      metadata: {{name: alertmanager-dingtalk}}
      spec:
        endpoints:
          - port: http
            interval: 30 seconds
  - patch: |-
      apiVersion: policy/v1
      kind: PodDisruptionBudget
      metadata: {{name: alertmanager-dingtalk}}
      spec: {{minAvailable: 1, maxUnavailable: null}}
"#
        ),
    )
    .unwrap();
    let (success, output) = validator(&[&dir]);
    assert!(!success, "validate.py accepted broken manifests:\n{output}");
    for expected in [
        "INVALID Deployment/alertmanager-dingtalk",
        "'livenessProbes' was unexpected",
        "readinessProbe path must be /-/ready",
        "readinessProbe scheme must be HTTP, as the bridge serves it, is HTTPS",
        "securityContext.runAsUser must be 65532, is 0",
        "terminationGracePeriodSeconds (10) must exceed",
        "INVALID ServiceMonitor/alertmanager-dingtalk",
        "interval must match pattern",
        "blocks every eviction",
    ] {
        assert!(output.contains(expected), "no `{expected}` in:\n{output}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each rendered config passes `check` given only what the pod would have: the
/// environment from its `env` and `envFrom` Secrets, and the files of its Secret
/// volumes (written to a temporary directory that replaces the mount path).
#[test]
fn every_rendered_config_passes_check_with_what_the_manifests_provide() {
    let certificate_key = rcgen::KeyPair::generate().unwrap();
    let certificate = rcgen::CertificateParams::new(vec!["alertmanager-dingtalk".to_owned()])
        .unwrap()
        .self_signed(&certificate_key)
        .unwrap();
    for directory in DIRECTORIES {
        let objects = render(directory);
        let workload = workload(&objects, directory);
        let container = container(workload);
        let mut config = rendered_config(&objects, directory);
        // `check` parses the Redis URL it reads from this file, so a dummy value for it
        // must still be a URL.
        let parsed: Value = serde_saphyr::from_str(&config).expect("config is YAML");
        let redis_url_file = parsed["cluster"]["redis_url_file"]
            .as_str()
            .map(str::to_owned);
        let dir = temp_dir("deploy-check");

        let mut env = BTreeMap::new();
        for var in container["env"].as_array().into_iter().flatten() {
            if let Some(value) = var["value"].as_str() {
                env.insert(var["name"].as_str().unwrap().to_owned(), value.to_owned());
            }
        }
        for source in container["envFrom"].as_array().into_iter().flatten() {
            let name = source["secretRef"]["name"]
                .as_str()
                .expect("envFrom is a secretRef");
            let secret = find(&objects, "Secret", name)
                .unwrap_or_else(|| panic!("{directory}: envFrom Secret {name} not rendered"));
            env.extend(secret_data(secret));
        }

        // Secret volumes (or projected ones made of Secrets): a rendered Secret gives its
        // data; a Secret created outside the manifests (production) gives the keys its
        // volume lists, with dummy values: a certificate and its key for tls.crt and
        // tls.key, a Redis URL for the file cluster.redis_url_file names, a token for
        // the others.
        let mut web_config = container_arg(container, "--web.config.file");
        for (index, mount) in container["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mount_path = mount["mountPath"].as_str().unwrap();
            // None for a volumeClaimTemplate (the production queue).
            let Some((volume, _)) = volume_at(workload, mount_path) else {
                continue;
            };
            let secrets: Vec<(&str, &Value)> = match volume["projected"]["sources"].as_array() {
                Some(sources) => sources
                    .iter()
                    .filter_map(|s| Some((s["secret"]["name"].as_str()?, &s["secret"])))
                    .collect(),
                None => volume["secret"]["secretName"]
                    .as_str()
                    .map(|name| (name, &volume["secret"]))
                    .into_iter()
                    .collect(),
            };
            if secrets.is_empty() {
                continue;
            }
            let files = dir.join(format!("secret-volume-{index}"));
            std::fs::create_dir_all(&files).unwrap();
            for (name, source) in secrets {
                let data = find(&objects, "Secret", name).map(secret_data);
                let items: Vec<(String, String)> = match source["items"].as_array() {
                    Some(items) => items
                        .iter()
                        .map(|i| {
                            (
                                i["key"].as_str().unwrap().into(),
                                i["path"].as_str().unwrap().into(),
                            )
                        })
                        .collect(),
                    None => data
                        .clone()
                        .unwrap_or_else(|| panic!("{directory}: Secret {name} lists no items"))
                        .into_keys()
                        .map(|k| (k.clone(), k))
                        .collect(),
                };
                for (key, path) in items {
                    let is_redis_url =
                        redis_url_file.as_deref() == Some(format!("{mount_path}/{path}").as_str());
                    let value = match &data {
                        Some(data) => data[&key].clone(),
                        None if key == "tls.crt" => certificate.pem(),
                        None if key == "tls.key" => certificate_key.serialize_pem(),
                        None if is_redis_url => format!("redis://dummy-{key}:6379/0\n"),
                        None => format!("dummy-{key}\n"),
                    };
                    std::fs::write(files.join(path), value).unwrap();
                }
            }
            let mount_dir = format!("{mount_path}/");
            let files_dir = format!("{}/", files.display());
            config = config.replace(&mount_dir, &files_dir);
            web_config = web_config.map(|file| file.replace(&mount_dir, &files_dir));
        }

        std::fs::write(dir.join("config.yaml"), &config).unwrap();
        // A clean environment: a variable set in the developer's shell must not hide
        // one the manifests fail to provide.
        let mut check = Command::new(BINARY);
        check
            .args(["check", "--config"])
            .arg(dir.join("config.yaml"));
        if let Some(web_config) = &web_config {
            check.args(["--web.config.file", web_config]);
        }
        let output = check.env_clear().envs(&env).output().expect("run check");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{directory}: the rendered config fails `check`:\n{stderr}\nconfig:\n{config}"
        );
        assert!(
            stdout.contains("queue in /var/lib/alertmanager-dingtalk"),
            "{directory}: {stdout}"
        );
        if directory.starts_with("overlays/production") {
            // Production requires a bearer token (auth.bearer_token_file) and serves
            // HTTPS with the certificate of the Secret alertmanager-dingtalk-tls.
            assert!(
                stdout.contains("bearer token required"),
                "{directory}: {stdout}"
            );
            assert!(
                stdout.contains("\nweb: TLS (client certificates: NoClientCert)"),
                "{directory}: {stdout}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `rate_limit` as (count, window in seconds): `20/min`, `1/s`, `5/90s`, `10/1m30s`.
fn rate_limit(text: &str) -> (u64, u64) {
    let (count, per) = text.split_once('/').expect("COUNT/PER");
    let window = match per {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        duration => {
            let mut total = 0;
            let mut number = String::new();
            for c in duration.chars() {
                match c {
                    '0'..='9' => number.push(c),
                    'h' | 'm' | 's' => {
                        let n: u64 = number.parse().expect("duration number");
                        total += n * [3600, 60, 1]["hms".find(c).unwrap()];
                        number.clear();
                    }
                    _ => panic!("rate_limit {text}: teach this test the unit {c}"),
                }
            }
            total
        }
    };
    (count.trim().parse().expect("COUNT"), window)
}

/// Regression guard: more than 20 messages a minute to a robot, and DingTalk blocks it
/// for 10 minutes. Without `cluster:` each replica keeps its own rate window, so adding
/// a replica without lowering `rate_limit` lets a storm through: replicas x `rate_limit`
/// must stay within 20 a minute. With `cluster:` the replicas share one window through
/// Redis, so each robot's `rate_limit` alone must; and while Redis is lost each replica
/// falls back to a window of `rate_limit` / `cluster.replicas` of its own, which add up
/// to at most `rate_limit` only if `cluster.replicas` counts every replica the workload
/// runs (`check` makes sure each share is at least 1).
#[test]
fn replicas_times_rate_limit_stays_within_dingtalks_20_per_minute() {
    for directory in DIRECTORIES {
        let objects = render(directory);
        let replicas = workload(&objects, directory)["spec"]["replicas"]
            .as_u64()
            .unwrap_or(1);
        let config: Value =
            serde_saphyr::from_str(&rendered_config(&objects, directory)).expect("config is YAML");
        // How many rate windows send to each robot at once.
        let windows = match &config["cluster"] {
            Value::Null => replicas,
            cluster => {
                let sharing = cluster["replicas"].as_u64().unwrap_or(1);
                assert!(
                    sharing >= replicas,
                    "{directory}: cluster.replicas {sharing} is less than the {replicas} \
                     replicas deployed: without Redis their fallback windows would exceed \
                     each robot's rate_limit"
                );
                1
            }
        };
        let robots = config["robots"].as_object().expect("robots");
        assert!(!robots.is_empty(), "{directory}: no robots");
        for (name, robot) in robots {
            let (count, window) = robot["rate_limit"]
                .as_str()
                .map(rate_limit)
                .unwrap_or((DINGTALK_PER_MINUTE, 60));
            // windows * count per window <= 20 per 60 s, in integers.
            assert!(
                windows * count * 60 <= DINGTALK_PER_MINUTE * window,
                "{directory}: {windows} rate window(s) x rate_limit {count}/{window}s for \
                 robot {name} exceed DingTalk's {DINGTALK_PER_MINUTE}/min"
            );
        }
    }
}

/// components/redis holds the replicas' shared rate windows and pauses: a Redis that
/// evicted them would let a storm through, and two of them (more replicas, or a rolling
/// update) would each count a window of their own. And it is the Service the Secret's
/// redis-url names.
#[test]
fn the_redis_component_never_evicts_the_bridges_keys() {
    let directory = "overlays/production-with-redis";
    let objects = render(directory);
    let redis = find(&objects, "Deployment", "alertmanager-dingtalk-redis")
        .unwrap_or_else(|| panic!("{directory}: no Deployment alertmanager-dingtalk-redis"));
    let args: Vec<&str> = redis["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let flag = |name: &str| {
        args.iter()
            .position(|a| *a == name)
            .and_then(|at| args.get(at + 1).copied())
    };
    assert_eq!(flag("--maxmemory-policy"), Some("noeviction"), "{args:?}");
    assert!(flag("--maxmemory").is_some(), "a memory bound: {args:?}");
    assert_eq!(redis["spec"]["replicas"], 1, "{directory}: one Redis");
    assert_eq!(
        redis["spec"]["strategy"]["type"], "Recreate",
        "{directory}: never two Redis at once"
    );
    let service = find(&objects, "Service", "alertmanager-dingtalk-redis")
        .unwrap_or_else(|| panic!("{directory}: no Service alertmanager-dingtalk-redis"));
    assert_eq!(service["spec"]["ports"][0]["port"], 6379, "{service}");
}

#[test]
fn production_lets_only_alertmanager_and_prometheus_in_and_the_bridge_out_to_dns_dingtalk_alertmanager_and_redis()
 {
    for directory in ["overlays/production", "overlays/production-with-redis"] {
        let objects = render(directory);
        let policy = find(&objects, "NetworkPolicy", "alertmanager-dingtalk")
            .unwrap_or_else(|| panic!("{directory}: no NetworkPolicy alertmanager-dingtalk"));
        let spec = &policy["spec"];
        let bridge = find(&objects, "StatefulSet", "alertmanager-dingtalk")
            .unwrap_or_else(|| panic!("{directory}: no StatefulSet"));
        // It selects the bridge's pods.
        let pod_labels = &bridge["spec"]["template"]["metadata"]["labels"];
        for (key, value) in spec["podSelector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(&pod_labels[key], value, "{directory}: {key}");
        }
        assert_eq!(
            spec["policyTypes"],
            serde_json::json!(["Ingress", "Egress"])
        );
        let ingress = spec["ingress"].as_array().unwrap();
        assert_eq!(ingress.len(), 1, "{directory}: {ingress:?}");
        assert_eq!(ingress[0]["ports"][0]["port"], 8060);
        let from = &ingress[0]["from"][0]["podSelector"]["matchExpressions"][0];
        assert_eq!(
            from["values"],
            serde_json::json!(["alertmanager", "prometheus"])
        );
        let egress_ports: Vec<i64> = spec["egress"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rule| rule["ports"].as_array().unwrap().iter())
            .filter_map(|port| port["port"].as_i64())
            .collect();
        assert_eq!(
            egress_ports,
            [53, 53, 443, 9093, 6379, 26379],
            "{directory}"
        );
    }
}

/// The arguments of every `name` instruction (`EXPOSE`, `COPY`, ...) in a Dockerfile.
fn instructions<'a>(dockerfile: &'a str, name: &str) -> Vec<&'a str> {
    dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(str::trim)
        .collect()
}

/// The Dockerfile cannot be built here (no Docker engine), so what it must agree on with
/// the manifests is checked as text: the image tag deployed, the default config (one
/// source), the queue volume, the user and the port.
#[test]
fn image_and_dockerfile_agree_with_the_manifests() {
    let objects = render("base");
    let workload = workload(&objects, "base");
    let container = container(workload);
    let image = container["image"].as_str().unwrap();
    assert_eq!(
        image.rsplit_once(':').map(|(_, tag)| tag),
        Some(env!("CARGO_PKG_VERSION")),
        "base image {image}: deploy the version in Cargo.toml (kustomization.yaml `images:`)"
    );

    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let config_path = config_path(container);
    assert!(
        instructions(&dockerfile, "COPY")
            .contains(&format!("deploy/kubernetes/base/config.yaml {config_path}").as_str()),
        "the image's default config must be the base's config.yaml at {config_path}"
    );
    let dockerignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    assert!(
        dockerignore
            .lines()
            .any(|l| l.trim() == "!deploy/kubernetes/base/config.yaml"),
        ".dockerignore must let deploy/kubernetes/base/config.yaml into the build context"
    );
    assert_eq!(
        instructions(&dockerfile, "CMD"),
        [format!(r#"["--config", "{config_path}"]"#)]
    );

    let config: Value = serde_saphyr::from_str(&rendered_config(&objects, "base")).unwrap();
    let queue_dir = config["delivery"]["queue_dir"].as_str().unwrap();
    assert_eq!(
        instructions(&dockerfile, "VOLUME"),
        [format!(r#"["{queue_dir}"]"#)]
    );
    let security = &container["securityContext"];
    assert_eq!(
        instructions(&dockerfile, "USER"),
        [format!(
            "{}:{}",
            security["runAsUser"], security["runAsGroup"]
        )]
    );
    let port = container["ports"][0]["containerPort"].to_string();
    assert_eq!(instructions(&dockerfile, "EXPOSE"), [port.as_str()]);
    assert!(
        config["listen"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{port}")),
        "listen and containerPort differ"
    );
}
