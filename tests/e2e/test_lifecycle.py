"""Model, endpoint-config and endpoint lifecycles through boto3 and the AWS CLI."""

import datetime
import time

import pytest
from botocore.exceptions import ClientError, WaiterError

# SageMaker returns timestamps; botocore parses them into aware datetimes.
NOW_SLACK = datetime.timedelta(minutes=1)


def assert_recent(timestamp):
    assert isinstance(timestamp, datetime.datetime), timestamp
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now - NOW_SLACK <= timestamp <= now + NOW_SLACK, timestamp


def variants_by_name(described):
    return {v["VariantName"]: v for v in described["ProductionVariants"]}


def assert_variant_settled(described, name, weight, count, image):
    v = variants_by_name(described)[name]
    assert v["CurrentWeight"] == pytest.approx(weight), v
    assert v["DesiredWeight"] == pytest.approx(weight), v
    assert v["CurrentInstanceCount"] == count, v
    assert v["DesiredInstanceCount"] == count, v
    images = v["DeployedImages"]
    assert len(images) == 1, v
    assert images[0]["SpecifiedImage"] == image, images
    assert images[0]["ResolvedImage"], images
    assert_recent(images[0]["ResolutionTime"])


# --------------------------------------------------------------------------
# boto3
# --------------------------------------------------------------------------

def test_create_describe_list_delete_model(sm, strait, resources, unique_name, aws_error):
    name = unique_name("Mixed-Case-Model")  # the ARN lowercases the name
    response = sm.create_model(ModelName=name, PrimaryContainer={"Image": resources.ECHO_IMAGE},
                               ExecutionRoleArn=resources.ROLE_ARN)
    resources.models.append(name)
    assert response["ModelArn"] == strait.arn("model", name)
    assert response["ModelArn"].endswith(name.lower())

    described = sm.describe_model(ModelName=name)
    assert described["ModelName"] == name
    assert described["ModelArn"] == strait.arn("model", name)
    assert described["PrimaryContainer"]["Image"] == resources.ECHO_IMAGE
    assert described["ExecutionRoleArn"] == resources.ROLE_ARN
    assert_recent(described["CreationTime"])

    listed = sm.list_models(NameContains=name)["Models"]
    assert [(m["ModelName"], m["ModelArn"]) for m in listed] == [(name, strait.arn("model", name))]
    assert listed[0]["CreationTime"] == described["CreationTime"]

    sm.delete_model(ModelName=name)
    with aws_error("ValidationException", 400, "Could not find model"):
        sm.describe_model(ModelName=name)
    assert sm.list_models(NameContains=name)["Models"] == []


def test_create_describe_list_delete_endpoint_config(sm, strait, resources, unique_name,
                                                     aws_error):
    model = resources.model()
    name = unique_name("config")
    response = sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[resources.variant(model, name="Primary", count=2, weight=0.5)])
    resources.configs.append(name)
    assert response["EndpointConfigArn"] == strait.arn("endpoint-config", name)

    described = sm.describe_endpoint_config(EndpointConfigName=name)
    assert described["EndpointConfigName"] == name
    assert described["EndpointConfigArn"] == strait.arn("endpoint-config", name)
    assert_recent(described["CreationTime"])
    [v] = described["ProductionVariants"]
    assert (v["VariantName"], v["ModelName"], v["InstanceType"], v["InitialInstanceCount"]) == \
        ("Primary", model, resources.INSTANCE_TYPE, 2)
    assert v["InitialVariantWeight"] == pytest.approx(0.5)

    listed = sm.list_endpoint_configs(NameContains=name)["EndpointConfigs"]
    assert [(c["EndpointConfigName"], c["EndpointConfigArn"]) for c in listed] == \
        [(name, strait.arn("endpoint-config", name))]

    sm.delete_endpoint_config(EndpointConfigName=name)
    with aws_error("ValidationException", 400, "Could not find endpoint configuration"):
        sm.describe_endpoint_config(EndpointConfigName=name)


def test_endpoint_create_update_delete_with_waiters(sm, strait, resources, unique_name,
                                                    aws_error):
    model = resources.model()
    first_config = resources.endpoint_config(model)
    name = unique_name("endpoint")
    response = sm.create_endpoint(EndpointName=name, EndpointConfigName=first_config)
    resources.endpoints.append(name)
    assert response["EndpointArn"] == strait.arn("endpoint", name)
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating"

    described = resources.wait_in_service(name)
    assert described["EndpointName"] == name
    assert described["EndpointArn"] == strait.arn("endpoint", name)
    assert described["EndpointConfigName"] == first_config
    assert described["EndpointStatus"] == "InService"
    assert "FailureReason" not in described
    assert_recent(described["CreationTime"])
    assert described["LastModifiedTime"] >= described["CreationTime"]
    assert_variant_settled(described, "AllTraffic", 1.0, 1, resources.ECHO_IMAGE)

    [summary] = sm.list_endpoints(NameContains=name)["Endpoints"]
    assert (summary["EndpointName"], summary["EndpointArn"], summary["EndpointStatus"]) == \
        (name, strait.arn("endpoint", name), "InService")

    # UpdateEndpoint to a config with two instances.
    second_config = resources.endpoint_config(model, count=2)
    response = sm.update_endpoint(EndpointName=name, EndpointConfigName=second_config)
    assert response["EndpointArn"] == strait.arn("endpoint", name)
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating"
    updated = resources.wait_in_service(name)
    assert updated["EndpointConfigName"] == second_config
    assert updated["CreationTime"] == described["CreationTime"]
    assert updated["LastModifiedTime"] >= described["LastModifiedTime"]
    assert_variant_settled(updated, "AllTraffic", 1.0, 2, resources.ECHO_IMAGE)

    # DeleteEndpoint: Deleting, then gone.
    sm.delete_endpoint(EndpointName=name)
    try:
        status = sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
        assert status == "Deleting"
    except ClientError:
        pass  # already gone: the waiter below must agree
    resources.wait_deleted(name)
    with aws_error("ValidationException", 400, "Could not find endpoint"):
        sm.describe_endpoint(EndpointName=name)
    assert sm.list_endpoints(NameContains=name)["Endpoints"] == []


def test_update_endpoint_weights_and_capacities(sm, resources):
    config = resources.endpoint_config(resources.model(), resources.model())
    name = resources.endpoint(config)
    before = sm.describe_endpoint(EndpointName=name)
    assert_variant_settled(before, "v0", 1.0, 1, resources.ECHO_IMAGE)
    assert_variant_settled(before, "v1", 1.0, 1, resources.ECHO_IMAGE)

    sm.update_endpoint_weights_and_capacities(
        EndpointName=name,
        DesiredWeightsAndCapacities=[
            {"VariantName": "v0", "DesiredWeight": 3.0, "DesiredInstanceCount": 2},
            {"VariantName": "v1", "DesiredWeight": 0.5, "DesiredInstanceCount": 1},
        ])
    during = sm.describe_endpoint(EndpointName=name)
    assert during["EndpointStatus"] == "Updating"
    assert variants_by_name(during)["v0"]["DesiredInstanceCount"] == 2

    after = resources.wait_in_service(name)
    assert after["EndpointConfigName"] == config
    assert_variant_settled(after, "v0", 3.0, 2, resources.ECHO_IMAGE)
    assert_variant_settled(after, "v1", 0.5, 1, resources.ECHO_IMAGE)

    # Scale back down: the count really follows the desired one.
    sm.update_endpoint_weights_and_capacities(
        EndpointName=name,
        DesiredWeightsAndCapacities=[{"VariantName": "v0", "DesiredInstanceCount": 1}])
    after = resources.wait_in_service(name)
    assert_variant_settled(after, "v0", 3.0, 1, resources.ECHO_IMAGE)


@pytest.mark.parametrize("image", ["/nonexistent/serve", "no-such-registry.example/none:latest"],
                         ids=["missing-path", "unreachable-registry"])
def test_unresolvable_image_fails_and_only_delete_works(sm, resources, aws_error, image):
    name, failed = resources.failing_endpoint(image)
    assert failed["EndpointStatus"] == "Failed"
    assert "image" in failed.get("FailureReason", "").lower(), failed

    # The in-service waiter must stop on Failed rather than run out of attempts.
    started = time.monotonic()
    with pytest.raises(WaiterError, match="terminal failure state"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name,
                                                  WaiterConfig=resources.FAST_WAIT)
    assert time.monotonic() - started < 10

    with aws_error("ValidationException", 400):
        sm.update_endpoint(EndpointName=name, EndpointConfigName=resources.endpoint_config())
    with aws_error("ValidationException", 400):
        sm.update_endpoint_weights_and_capacities(
            EndpointName=name,
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 2.0}])
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Failed"

    sm.delete_endpoint(EndpointName=name)
    resources.wait_deleted(name)


# --------------------------------------------------------------------------
# AWS CLI (its waiters poll every 30 s, so status changes are polled here and
# the waiter commands run once the state is reached: their first check passes)
# --------------------------------------------------------------------------

def cli_wait(cli, endpoint, done, timeout=60):
    """Polls describe-endpoint until done(result) is true; returns the result."""
    deadline = time.monotonic() + timeout
    while True:
        result = cli.run("describe-endpoint", "--endpoint-name", endpoint)
        if done(result):
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {endpoint}: {result!r}"
        time.sleep(0.5)


def in_service(result):
    if result.returncode != 0:
        raise AssertionError(repr(result))
    status = result.json()["EndpointStatus"]
    assert status in ("Creating", "Updating", "InService"), result
    return status == "InService"


def gone(result):
    if result.returncode == 0:
        assert result.json()["EndpointStatus"] == "Deleting", result
        return False
    assert "ValidationException" in result.stderr and "Could not find endpoint" in result.stderr, \
        result
    return True


def test_cli_lifecycle(cli, strait, resources, unique_name):
    model, config, endpoint = unique_name("cli-model"), unique_name("cli-config"), \
        unique_name("cli-endpoint")
    # Registered first so teardown removes them even if a step below fails.
    resources.models.append(model)
    resources.configs.append(config)
    resources.endpoints.append(endpoint)

    created = cli("create-model", "--model-name", model,
                  "--primary-container", f"Image={resources.ECHO_IMAGE}",
                  "--execution-role-arn", resources.ROLE_ARN)
    assert created["ModelArn"] == strait.arn("model", model)
    assert cli("describe-model", "--model-name", model)["PrimaryContainer"]["Image"] == \
        resources.ECHO_IMAGE

    created = cli("create-endpoint-config", "--endpoint-config-name", config,
                  "--production-variants",
                  f"VariantName=AllTraffic,ModelName={model},InstanceType={resources.INSTANCE_TYPE},"
                  "InitialInstanceCount=1,InitialVariantWeight=1.0",
                  "--tags", "Key=team,Value=cli")
    assert created["EndpointConfigArn"] == strait.arn("endpoint-config", config)
    assert cli("list-tags", "--resource-arn", created["EndpointConfigArn"])["Tags"] == \
        [{"Key": "team", "Value": "cli"}]

    created = cli("create-endpoint", "--endpoint-name", endpoint, "--endpoint-config-name", config)
    assert created["EndpointArn"] == strait.arn("endpoint", endpoint)
    cli_wait(cli, endpoint, in_service)
    cli("wait", "endpoint-in-service", "--endpoint-name", endpoint)

    described = cli("describe-endpoint", "--endpoint-name", endpoint)
    assert (described["EndpointName"], described["EndpointConfigName"],
            described["EndpointStatus"]) == (endpoint, config, "InService")
    [v] = described["ProductionVariants"]
    assert (v["CurrentInstanceCount"], v["CurrentWeight"]) == (1, 1.0)
    assert v["DeployedImages"][0]["SpecifiedImage"] == resources.ECHO_IMAGE

    listed = cli("list-endpoints", "--name-contains", endpoint)["Endpoints"]
    assert [e["EndpointName"] for e in listed] == [endpoint]

    cli("update-endpoint-weights-and-capacities", "--endpoint-name", endpoint,
        "--desired-weights-and-capacities",
        "VariantName=AllTraffic,DesiredWeight=2.0,DesiredInstanceCount=2")
    described = cli_wait(cli, endpoint, in_service).json()
    [v] = described["ProductionVariants"]
    assert (v["CurrentWeight"], v["DesiredWeight"]) == (2.0, 2.0)
    assert (v["CurrentInstanceCount"], v["DesiredInstanceCount"]) == (2, 2)

    cli("delete-endpoint", "--endpoint-name", endpoint)
    cli_wait(cli, endpoint, gone)
    cli("wait", "endpoint-deleted", "--endpoint-name", endpoint)

    cli("delete-endpoint-config", "--endpoint-config-name", config)
    cli("delete-model", "--model-name", model)
    failure = cli.fails("describe-model", "--model-name", model)
    assert "ValidationException" in failure.stderr and "Could not find model" in failure.stderr
    assert cli("list-models", "--name-contains", model)["Models"] == []
