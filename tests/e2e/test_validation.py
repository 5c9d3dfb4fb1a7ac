"""Error shapes for bad input: missing resources, duplicates, field validation,
malformed requests. After every test the server must still serve."""

import uuid

import pytest

pytestmark = pytest.mark.usefixtures("server_still_serves")

VALIDATION = ("validation error", "failed to satisfy constraint")


# --------------------------------------------------------------------------
# Missing and duplicate resources
# --------------------------------------------------------------------------

NOT_FOUND_CASES = {
    "describe-model": ("describe_model", lambda res, n: {"ModelName": n}, "Could not find model"),
    "delete-model": ("delete_model", lambda res, n: {"ModelName": n}, "Could not find model"),
    "describe-endpoint-config": ("describe_endpoint_config",
                                 lambda res, n: {"EndpointConfigName": n},
                                 "Could not find endpoint configuration"),
    "delete-endpoint-config": ("delete_endpoint_config", lambda res, n: {"EndpointConfigName": n},
                               "Could not find endpoint configuration"),
    "describe-endpoint": ("describe_endpoint", lambda res, n: {"EndpointName": n},
                          "Could not find endpoint"),
    "delete-endpoint": ("delete_endpoint", lambda res, n: {"EndpointName": n},
                        "Could not find endpoint"),
    "update-endpoint": ("update_endpoint",
                        lambda res, n: {"EndpointName": n,
                                        "EndpointConfigName": res.endpoint_config()},
                        "Could not find endpoint"),
    "update-weights": ("update_endpoint_weights_and_capacities",
                       lambda res, n: {"EndpointName": n, "DesiredWeightsAndCapacities": [
                           {"VariantName": "AllTraffic", "DesiredWeight": 1.0}]},
                       "Could not find endpoint"),
}


@pytest.mark.parametrize("case", NOT_FOUND_CASES.values(), ids=list(NOT_FOUND_CASES))
def test_missing_resource(case, sm, resources, unique_name, aws_error):
    operation, build, message = case
    with aws_error("ValidationException", 400, message):
        getattr(sm, operation)(**build(resources, unique_name("missing")))


CREATORS = {
    "model": lambda res, name=None: res.model(name=name),
    "endpoint-config": lambda res, name=None: res.endpoint_config(name=name),
    "endpoint": lambda res, name=None: res.endpoint(name=name, wait=False),
}


@pytest.mark.parametrize("create", CREATORS.values(), ids=list(CREATORS))
def test_duplicate_create_is_rejected(create, resources, aws_error):
    name = create(resources)
    with aws_error("ValidationException", 400, "Cannot create already existing"):
        create(resources, name)


def test_endpoint_config_naming_a_missing_model(sm, resources, unique_name, aws_error):
    config = unique_name("config")
    with aws_error("ValidationException", 400, "Could not find model"):
        resources.endpoint_config(name=config,
                                  variants=[resources.variant(unique_name("missing-model"))])
    with aws_error("ValidationException", 400, "Could not find endpoint configuration"):
        sm.describe_endpoint_config(EndpointConfigName=config)


def test_endpoint_naming_a_missing_config(sm, resources, unique_name, aws_error):
    endpoint = unique_name("endpoint")
    with aws_error("ValidationException", 400, "Could not find endpoint configuration"):
        resources.endpoint(unique_name("missing-config"), name=endpoint, wait=False)
    with aws_error("ValidationException", 400, "Could not find endpoint"):
        sm.describe_endpoint(EndpointName=endpoint)


def test_rejected_updates_leave_the_endpoint_in_service(sm, resources, unique_name, aws_error):
    config = resources.endpoint_config()
    endpoint = resources.endpoint(config)
    with aws_error("ValidationException", 400, "Could not find endpoint configuration"):
        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=unique_name("missing"))
    with aws_error("ValidationException", 400):
        sm.update_endpoint_weights_and_capacities(
            EndpointName=endpoint,
            DesiredWeightsAndCapacities=[{"VariantName": "NoSuchVariant", "DesiredWeight": 1.0}])
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", config)


# --------------------------------------------------------------------------
# Field validation by the server (client-side validation is switched off)
# --------------------------------------------------------------------------

def _config_name():
    return "config-" + uuid.uuid4().hex[:16]


def _config_with(res, **overrides):
    spec = res.variant(res.model())
    spec.update(overrides)
    return {"EndpointConfigName": _config_name(), "ProductionVariants": [spec]}


FIELD_CASES = {
    "model-name-bad-char": ("create_model", lambda res: {
        "ModelName": "bad_name!", "PrimaryContainer": {"Image": res.ECHO_IMAGE}}),
    "model-name-64-chars": ("create_model", lambda res: {
        "ModelName": "a" * 64, "PrimaryContainer": {"Image": res.ECHO_IMAGE}}),
    "model-name-10000-chars": ("create_model", lambda res: {
        "ModelName": "a" * 10000, "PrimaryContainer": {"Image": res.ECHO_IMAGE}}),
    "model-name-empty": ("create_model", lambda res: {
        "ModelName": "", "PrimaryContainer": {"Image": res.ECHO_IMAGE}}),
    "endpoint-name-bad-char": ("create_endpoint", lambda res: {
        "EndpointName": "bad_name!", "EndpointConfigName": res.endpoint_config()}),
    "describe-endpoint-name-bad-char": ("describe_endpoint", lambda res: {
        "EndpointName": "bad_name!"}),
    "instance-count-0": ("create_endpoint_config",
                         lambda res: _config_with(res, InitialInstanceCount=0)),
    "instance-type-bogus": ("create_endpoint_config",
                            lambda res: _config_with(res, InstanceType="ml.bogus")),
    "variant-weight-negative": ("create_endpoint_config",
                                lambda res: _config_with(res, InitialVariantWeight=-1.0)),
    "no-variants": ("create_endpoint_config", lambda res: {
        "EndpointConfigName": _config_name(), "ProductionVariants": []}),
    "sort-order-sideways": ("list_models", lambda res: {"SortOrder": "Sideways"}),
    "models-sort-by-status": ("list_models", lambda res: {"SortBy": "Status"}),
    "status-equals-bogus": ("list_endpoints", lambda res: {"StatusEquals": "Sleeping"}),
    "max-results-0": ("list_models", lambda res: {"MaxResults": 0}),
    "max-results-101": ("list_endpoint_configs", lambda res: {"MaxResults": 101}),
}


@pytest.mark.parametrize("case", FIELD_CASES.values(), ids=list(FIELD_CASES))
def test_field_validation(case, sm, sm_raw, resources, aws_error):
    operation, build = case
    kwargs = build(resources)
    with aws_error("ValidationException", 400, *VALIDATION):
        getattr(sm_raw, operation)(**kwargs)
    if operation == "create_endpoint_config":  # nothing half-created
        with aws_error("ValidationException", 400, "Could not find endpoint configuration"):
            sm.describe_endpoint_config(EndpointConfigName=kwargs["EndpointConfigName"])


# --------------------------------------------------------------------------
# Requests boto3 would never send
# --------------------------------------------------------------------------

def test_well_formed_raw_request_succeeds(signed_request):
    """The raw-request helper itself works, so the failures below are the server's."""
    response = signed_request("ListModels", {"MaxResults": 1})
    assert response.status == 200, response
    assert isinstance(response.json()["Models"], list)


@pytest.mark.parametrize("operation,body", [
    ("CreateModel", {}),
    ("CreateModel", {"PrimaryContainer": {"Image": "strait/echo"}}),
    ("CreateEndpoint", {"EndpointName": "only-a-name"}),
    ("DescribeEndpoint", {}),
    ("AddTags", {"Tags": [{"Key": "k", "Value": "v"}]}),
], ids=["create-model-empty", "create-model-no-name", "create-endpoint-no-config",
        "describe-endpoint-empty", "add-tags-no-arn"])
def test_missing_required_member(operation, body, signed_request):
    response = signed_request(operation, body)
    assert (response.status, response.error_code) == (400, "ValidationException"), response


def test_wrong_member_type(signed_request):
    response = signed_request("CreateModel", {"ModelName": 123,
                                              "PrimaryContainer": {"Image": "strait/echo"}})
    assert response.status == 400, response
    assert response.error_code in ("ValidationException", "SerializationException"), response


@pytest.mark.parametrize("body", [b'{"ModelName": ', b"not json at all", b'{"ModelName": "x",}',
                                  b"\xff\xfe\x00garbage"],
                         ids=["truncated", "text", "trailing-comma", "binary"])
def test_malformed_json_body(body, signed_request):
    response = signed_request("DescribeModel", raw_body=body)
    assert (response.status, response.error_code) == (400, "SerializationException"), response


@pytest.mark.parametrize("target", ["SageMaker.NoSuchOp", "SageMaker.ListModelz"])
def test_unknown_operation(target, signed_request):
    response = signed_request(None, {}, target=target)
    assert (response.status, response.error_code) == (400, "UnknownOperationException"), response
