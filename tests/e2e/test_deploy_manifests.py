"""deploy/kubernetes: the manifests, with their parameters filled in as the README's
walk-through does (envsubst), validate against the Kubernetes API models of the
`kubernetes` Python client (client-side validation: required fields and types; the
enum values are asserted here, as the models take any string) and,
for the Argo Workflow, against hera's models generated from Argo's OpenAPI schema. A
round trip through the models must give the manifest back unchanged, so a misspelled
or misplaced field (which the models would drop) fails too."""

import json
import pathlib
import string

import pytest
import yaml

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
PARAMS = {
    "NAME": "users-window",
    "IMAGE": "streamport:0.1.0",
    "PLAN_URI": "oss://my-bucket/streamport-plans/users/20260101T1000",
    "TASKS": "8",
    "PARALLELISM": "4",
    "SCHEDULE_TIME": "2026-01-01 10:00:00",
}


def load(name, params=PARAMS):
    text = string.Template((DEPLOY / name).read_text()).substitute(params)
    return yaml.safe_load(text)


def kube_model(doc, kind):
    from kubernetes.client import ApiClient, Configuration
    config = Configuration()
    config.client_side_validation = True
    api = ApiClient(config)
    obj = api.deserialize(json.dumps(doc), kind, "application/json")
    return obj, api.sanitize_for_serialization(obj)


def without_nulls(value):
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("name", ["plan-job.yaml", "tasks-job.yaml", "commit-job.yaml"])
def test_jobs_validate_against_the_kubernetes_models(name):
    doc = load(name)
    obj, back = kube_model(doc, "V1Job")
    assert without_nulls(back) == doc
    spec = obj.spec.template.spec
    assert spec.restart_policy == "Never"
    assert spec.containers[0].image == "streamport:0.1.0"
    assert spec.containers[0].env_from[0].secret_ref.name == "streamport-credentials"
    assert "oss://my-bucket/streamport-plans/users/20260101T1000" in spec.containers[0].args
    assert spec.volumes[0].config_map.name == "users-window-job"


def test_the_tasks_job_is_an_indexed_job_with_per_index_retries():
    obj, _ = kube_model(load("tasks-job.yaml"), "V1Job")
    s = obj.spec
    assert (s.completion_mode, s.completions, s.parallelism) == ("Indexed", 8, 4)
    assert s.backoff_limit_per_index >= 1 and s.max_failed_indexes == 0
    assert s.pod_replacement_policy == "Failed"
    args = s.template.spec.containers[0].args
    assert args[0] == "task" and "--index" not in args  # JOB_COMPLETION_INDEX


def test_a_broken_manifest_is_refused():
    doc = load("tasks-job.yaml")
    del doc["spec"]["template"]["spec"]["containers"][0]["name"]
    with pytest.raises(ValueError, match="name"):
        kube_model(doc, "V1Job")
    doc = load("tasks-job.yaml")
    doc["spec"]["completions"] = "eight"
    with pytest.raises(ValueError, match="completions"):
        kube_model(doc, "V1Job")
    doc = load("tasks-job.yaml")
    doc["spec"]["backofLimitPerIndex"] = 3
    _, back = kube_model(doc, "V1Job")
    assert without_nulls(back) != doc, "a misspelled field is dropped by the model: the round trip catches it"


def test_the_secret_and_the_configmap_validate():
    obj, back = kube_model(yaml.safe_load((DEPLOY / "secret.example.yaml").read_text()), "V1Secret")
    assert obj.metadata.name == "streamport-credentials"
    sources = json.loads((DEPLOY / "datasources.json").read_text())
    assert set(sources) == {"otsstream", "oss", "odps_first"}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "users-window-job"},
                 "data": {"job.json": "{}", "datasources.json": json.dumps(sources)}}
    _, back = kube_model(configmap, "V1ConfigMap")
    assert without_nulls(back) == configmap


def test_the_argo_workflow_validates_against_the_argo_models():
    from hera.workflows.models import Workflow
    doc = load("argo-workflow.yaml")
    wf = Workflow.model_validate(doc) if hasattr(Workflow, "model_validate") else Workflow.parse_obj(doc)
    dumped = wf.model_dump(by_alias=True, exclude_none=True, mode="json") if hasattr(wf, "model_dump") \
        else json.loads(wf.json(by_alias=True, exclude_none=True))
    assert dumped == doc
    templates = {t.name: t for t in wf.spec.templates}
    assert wf.spec.entrypoint == "main" and wf.spec.on_exit == "exit-handler"
    assert templates["main"].parallelism == 4
    main = {t["name"]: t for t in dumped["spec"]["templates"]}["main"]
    assert [[s["name"] for s in group] for group in main["steps"]] == [["plan"], ["task"], ["commit"]]
    assert main["steps"][1][0]["withSequence"] == {"count": "8"}
    for name in ("plan", "task", "commit", "abort"):
        container = templates[name].container
        assert container.image == "streamport:0.1.0" and container.args[0] == name
        assert "oss://my-bucket/streamport-plans/users/20260101T1000" in container.args
    assert templates["task"].retry_strategy is not None
    bad = load("argo-workflow.yaml")
    bad["spec"]["templates"][1]["container"]["image"] = ["not", "a", "string"]
    with pytest.raises(Exception):
        Workflow.model_validate(bad) if hasattr(Workflow, "model_validate") else Workflow.parse_obj(bad)
