"""Durable state across restarts, and a graceful shutdown that leaves nothing behind.
Each test runs its own servers (strait_factory)."""

import signal

import pytest

TAGS = [{"Key": "owner", "Value": "persistence-test"}]


def stop_gracefully(server, sig=signal.SIGTERM):
    code, took = server.stop(sig)
    assert code == 0, (f"strait did not exit 0 within 10 s of {sig.name} "
                       f"(code {code}, {took:.1f} s)\n{server.output()}")


def test_restart_preserves_state_and_credentials(strait_factory, aws_error):
    first = strait_factory.start()
    res = first.resources()
    model = res.model(tags=TAGS)
    config = res.endpoint_config(model, count=2, tags=TAGS)
    endpoint = res.endpoint(config, tags=TAGS)
    deleted_model = res.model()
    res.sm.delete_model(ModelName=deleted_model)
    before = res.sm.describe_endpoint(EndpointName=endpoint)
    credentials = first.credentials_path.read_bytes()
    stop_gracefully(first)

    second = strait_factory.start(first.data_dir)
    assert second.credentials_path.read_bytes() == credentials
    res = second.resources()
    sm = res.sm

    assert [m["ModelName"] for m in sm.list_models(NameContains=model)["Models"]] == [model]
    assert [c["EndpointConfigName"]
            for c in sm.list_endpoint_configs(NameContains=config)["EndpointConfigs"]] == [config]
    assert [e["EndpointName"] for e in sm.list_endpoints(NameContains=endpoint)["Endpoints"]] == \
        [endpoint]
    with aws_error("ValidationException", 400, "Could not find model"):
        sm.describe_model(ModelName=deleted_model)

    after = res.wait_in_service(endpoint)
    for field in ("EndpointArn", "EndpointConfigName", "CreationTime"):
        assert after[field] == before[field], field
    [v] = after["ProductionVariants"]
    assert (v["CurrentInstanceCount"], v["DesiredInstanceCount"]) == (2, 2)
    assert v["DeployedImages"][0]["SpecifiedImage"] == res.ECHO_IMAGE
    assert second.children(), "InService after restart, but no instance process was started"

    for arn in (first.arn("model", model), first.arn("endpoint-config", config),
                first.arn("endpoint", endpoint)):
        assert sm.list_tags(ResourceArn=arn)["Tags"] == TAGS, arn

    # The restored endpoint is fully managed again: it can be deleted.
    sm.delete_endpoint(EndpointName=endpoint)
    res.wait_deleted(endpoint)
    stop_gracefully(second)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_shutdown_stops_every_instance(sig, strait_factory):
    server = strait_factory.start()
    res = server.resources()
    res.endpoint(res.endpoint_config(count=2))
    res.endpoint(res.endpoint_config())
    children = server.children()
    assert len(children) >= 3, f"expected one process per instance, found {children}"

    stop_gracefully(server, sig)
    assert server.survivors(children) == [], "instance processes outlived the server"
