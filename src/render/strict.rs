//! The config check's look for variables a template reads that templates are not given,
//! such as `alert.lables` for `alert.labels`, which a render would show as empty: the
//! template is rendered on a firing and a resolved sample group with undefined values as
//! errors. Label and annotation maps answer every name (an alert may or may not have
//! any label), so only the names of the data model itself are checked, and only on the
//! branches the samples take.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use minijinja::value::{Enumerator, Object, ObjectRepr, Serde, Value};
use minijinja::{ErrorKind, UndefinedBehavior};

use super::attempts::map_entries;
use super::view::{AlertView, GroupView};
use super::{Renderer, TemplateError, TemplatePart, key};
use crate::ingest::{self, Alert};
use crate::oncall::OnCallView;

/// Fields of the views that are maps of any names: labels and annotations.
const ANY_NAME: [&str; 6] = [
    "labels",
    "key_labels",
    "annotations",
    "group_labels",
    "common_labels",
    "common_annotations",
];

/// A firing and a resolved alert of one group, as Alertmanager sends them.
const SAMPLE: &str = r#"{
  "version": "4", "status": "firing", "receiver": "dingtalk", "groupKey": "{}:{alertname=\"Sample\"}",
  "groupLabels": {"alertname": "Sample"}, "commonLabels": {"alertname": "Sample", "severity": "critical"},
  "commonAnnotations": {"summary": "sample"}, "externalURL": "http://alertmanager.example:9093",
  "alerts": [
    {"status": "firing", "labels": {"alertname": "Sample", "severity": "critical", "instance": "a:9100"},
     "annotations": {"summary": "sample"}, "startsAt": "2024-05-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
     "generatorURL": "http://prometheus.example:9090/graph", "fingerprint": "0000000000000001"},
    {"status": "resolved", "labels": {"alertname": "Sample", "severity": "critical", "instance": "b:9100"},
     "annotations": {"summary": "sample"}, "startsAt": "2024-05-01T00:00:00Z", "endsAt": "2024-05-01T00:10:00Z",
     "generatorURL": "http://prometheus.example:9090/graph", "fingerprint": "0000000000000002"}
  ]
}"#;

/// The first place template `name` reads a variable templates are not given, per part,
/// on the firing group and on its resolved alert alone.
pub(super) fn unknown_variables(
    renderer: &Renderer,
    name: &str,
    schedules: &[&str],
) -> Vec<TemplateError> {
    let Ok(notification) = ingest::parse(SAMPLE.as_bytes()) else {
        return Vec::new();
    };
    let mut env = renderer.env.clone();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // An hour after the sample alerts started.
    let now = Timestamp::from_second(1_714_525_200).unwrap_or(Timestamp::UNIX_EPOCH);
    let all: Vec<&Alert> = notification.alerts.iter().collect();
    let groups = [all.clone(), all[1..].to_vec()];
    let mut errors = Vec::new();
    for part in [TemplatePart::Title, TemplatePart::Text] {
        let Ok(template) = env.get_template(&key(name, part)) else {
            continue;
        };
        let failure = groups.iter().find_map(|alerts| {
            let context = context(renderer, &notification, alerts, schedules, now);
            template
                .render(context)
                .err()
                .filter(|e| e.kind() == ErrorKind::UndefinedError)
        });
        if let Some(error) = failure {
            errors.push(TemplateError {
                name: name.to_owned(),
                part,
                line: error.line(),
                message: "reads a variable templates are not given (a typo?), which would show as empty or fail the render; docs/templates.md lists the template variables".to_owned(),
            });
        }
    }
    errors
}

/// What the template would see, with label and annotation maps that answer every name.
fn context(
    renderer: &Renderer,
    notification: &ingest::Notification,
    alerts: &[&Alert],
    schedules: &[&str],
    now: Timestamp,
) -> Value {
    let on_call = schedules
        .iter()
        .map(|schedule| {
            let member = OnCallView {
                name: "Sample".to_owned(),
                ..OnCallView::default()
            };
            ((*schedule).to_owned(), member)
        })
        .collect();
    let group = GroupView::new(notification, alerts, "HertzBeat", now).with_on_call(&on_call);
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|alert| {
            let view = AlertView::new(alert, &renderer.timezone, &group);
            Value::from(any_name_maps(Value::from(Serde(&view))))
        })
        .collect();
    let mut context = any_name_maps(Value::from(Serde(&group)));
    context.insert(Value::from("alerts"), Value::from(alerts));
    Value::from(context)
}

/// The entries of `view` (a map), its label and annotation maps made to answer every
/// name.
fn any_name_maps(view: Value) -> BTreeMap<Value, Value> {
    map_entries(&view)
        .into_iter()
        .map(|(key, value)| {
            let any = key.as_str().is_some_and(|k| ANY_NAME.contains(&k));
            (
                key,
                if any {
                    Value::from_object(AnyName(value))
                } else {
                    value
                },
            )
        })
        .collect()
}

/// A map that answers `""` for names it does not have.
#[derive(Debug)]
struct AnyName(Value);

impl Object for AnyName {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let value = self.0.get_item(key).ok().filter(|v| !v.is_undefined());
        Some(value.unwrap_or_else(|| Value::from("")))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<Value> = self.0.try_iter().into_iter().flatten().collect();
        Enumerator::Values(keys)
    }
}
