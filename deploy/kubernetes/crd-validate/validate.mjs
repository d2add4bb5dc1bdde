// Validates Prometheus Operator objects against the schemas that
// @kubernetes-models/prometheus-operator generates from the operator's Go types.
// ../validate.py runs it; it is not meant to be run by hand.
//
// stdin: a JSON array of objects. stdout: a JSON array, one entry per object, in order:
// null when the object is valid, otherwise a string saying why not. Exit status 0 when
// it could judge every object (valid or not), 1 on a usage error.
//
// What the schemas check: types, required fields, enums and patterns (such as
// durations: `interval: 30 seconds` fails). What they do not: unknown fields, because
// the generated schemas allow additional properties; the API server prunes those.

import * as v1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import * as v1alpha1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1";
import * as v1beta1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1beta1";

const models = {
  "monitoring.coreos.com/v1": v1,
  "monitoring.coreos.com/v1alpha1": v1alpha1,
  "monitoring.coreos.com/v1beta1": v1beta1,
};

function judge(object) {
  const version = models[object?.apiVersion];
  const Model = version?.[object?.kind];
  if (typeof Model !== "function" || typeof Model.prototype.validate !== "function") {
    return `no schema for apiVersion ${object?.apiVersion} kind ${object?.kind}`;
  }
  try {
    new Model(object).validate();
    return null;
  } catch (error) {
    return error.message;
  }
}

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
let objects;
try {
  objects = JSON.parse(input);
} catch (error) {
  console.error(`validate.mjs: stdin is not JSON: ${error.message}`);
  process.exit(1);
}
if (!Array.isArray(objects)) {
  console.error("validate.mjs: stdin must be a JSON array of objects");
  process.exit(1);
}
process.stdout.write(JSON.stringify(objects.map(judge)) + "\n");
