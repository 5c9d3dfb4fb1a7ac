"""List operations (filters, sorting, pagination) and tagging."""

import datetime
import math
import time
import uuid

import pytest


class Kind:
    """How to create and list one kind of resource."""

    def __init__(self, arn_kind, list_op, key, name_field):
        self.arn_kind, self.list_op, self.key, self.name_field = arn_kind, list_op, key, name_field

    def create(self, resources, name, tags=None):
        if self.arn_kind == "model":
            return resources.model(name=name, tags=tags)
        if self.arn_kind == "endpoint-config":
            return resources.endpoint_config(name=name, tags=tags)
        return resources.endpoint(name=name, tags=tags, wait=False)

    def summaries(self, sm, **kwargs):
        return getattr(sm, self.list_op)(**kwargs)[self.key]

    def names(self, sm, **kwargs):
        return [s[self.name_field] for s in self.summaries(sm, **kwargs)]

    def __repr__(self):
        return self.arn_kind


MODEL = Kind("model", "list_models", "Models", "ModelName")
CONFIG = Kind("endpoint-config", "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName")
ENDPOINT = Kind("endpoint", "list_endpoints", "Endpoints", "EndpointName")
ALL_KINDS = [MODEL, CONFIG, ENDPOINT]


def token():
    """A fragment that only this test's names contain."""
    return "k" + uuid.uuid4().hex[:10]


def create_in_order(kind, resources, names):
    for name in names:
        kind.create(resources, name)
        time.sleep(0.05)  # distinct creation times at millisecond precision


def assert_time_order(summaries, descending):
    times = [s["CreationTime"] for s in summaries]
    assert times == sorted(times, reverse=descending), summaries


@pytest.mark.parametrize("kind", ALL_KINDS, ids=repr)
def test_name_contains_and_sorting(kind, sm, resources, unique_name):
    tag = token()
    created = [f"charlie-{tag}", f"alpha-{tag}", f"bravo-{tag}"]  # creation order != name order
    create_in_order(kind, resources, created)
    kind.create(resources, unique_name("decoy"))  # exists, but must never be listed below

    assert kind.names(sm, NameContains=tag, SortBy="Name", SortOrder="Ascending") == sorted(created)
    assert kind.names(sm, NameContains=tag, SortBy="Name", SortOrder="Descending") == \
        sorted(created, reverse=True)

    default = kind.summaries(sm, NameContains=tag)  # default: CreationTime, Descending
    ascending = kind.summaries(sm, NameContains=tag, SortBy="CreationTime", SortOrder="Ascending")
    assert_time_order(default, descending=True)
    assert_time_order(ascending, descending=False)
    if len({s["CreationTime"] for s in default}) == len(created):
        assert [s[kind.name_field] for s in default] == created[::-1]
        assert [s[kind.name_field] for s in ascending] == created

    first_page = getattr(sm, kind.list_op)(NameContains=tag, SortBy="Name", SortOrder="Ascending",
                                          MaxResults=2)
    assert [s[kind.name_field] for s in first_page[kind.key]] == sorted(created)[:2]
    assert first_page.get("NextToken")


@pytest.mark.parametrize("kind,count,page_size", [(MODEL, 5, 2), (CONFIG, 5, 2), (ENDPOINT, 3, 2)],
                         ids=repr)
def test_paginators_return_every_name_exactly_once(kind, count, page_size, sm, resources):
    tag = token()
    created = [f"p{i}-{tag}" for i in range(count)]
    for name in created:
        kind.create(resources, name)

    paginator = sm.get_paginator(kind.list_op)
    pages = list(paginator.paginate(NameContains=tag, SortBy="Name", SortOrder="Ascending",
                                    PaginationConfig={"PageSize": page_size}))
    seen = [s[kind.name_field] for page in pages for s in page[kind.key]]
    assert seen == sorted(created)  # every name once, sorted across page boundaries
    assert len(pages) == math.ceil(count / page_size)
    assert all(len(page[kind.key]) <= page_size for page in pages)
    assert "NextToken" not in pages[-1] or not pages[-1]["NextToken"]

    # The default order (CreationTime, Descending) must paginate completely too.
    default_pages = paginator.paginate(NameContains=tag, PaginationConfig={"PageSize": page_size})
    seen = [s[kind.name_field] for page in default_pages for s in page[kind.key]]
    assert sorted(seen) == sorted(created)


@pytest.mark.parametrize("kind", [MODEL, CONFIG], ids=repr)
def test_creation_time_filters(kind, sm, resources):
    """boto3 sends these filters as whole epoch seconds, so the two resources are
    created on either side of a whole-second pivot (a whole second apart, so this
    holds even if the server keeps whole seconds)."""
    tag = token()
    early, late = f"early-{tag}", f"late-{tag}"
    kind.create(resources, early)
    [first] = kind.summaries(sm, NameContains=early)
    pivot = math.floor(first["CreationTime"].timestamp()) + 1
    time.sleep(max(0.0, pivot + 1.05 - time.time()))
    kind.create(resources, late)
    [second] = kind.summaries(sm, NameContains=late)
    assert first["CreationTime"].timestamp() < pivot < second["CreationTime"].timestamp()

    pivot_time = datetime.datetime.fromtimestamp(pivot, tz=datetime.timezone.utc)
    assert kind.names(sm, NameContains=tag, CreationTimeBefore=pivot_time) == [early]
    assert kind.names(sm, NameContains=tag, CreationTimeAfter=pivot_time) == [late]
    assert kind.names(sm, NameContains=tag, CreationTimeAfter=pivot_time,
                      CreationTimeBefore=pivot_time) == []
    assert sorted(kind.names(sm, NameContains=tag,
                             CreationTimeAfter=pivot_time - datetime.timedelta(seconds=60),
                             CreationTimeBefore=pivot_time + datetime.timedelta(seconds=60))) == \
        sorted([early, late])


@pytest.mark.usefixtures("server_still_serves")
@pytest.mark.parametrize("kind", ALL_KINDS, ids=repr)
def test_invalid_next_token_is_rejected(kind, sm, aws_error):
    with aws_error("ValidationException", 400):
        getattr(sm, kind.list_op)(NextToken="this-is-not-a-token-" + uuid.uuid4().hex)


def test_list_endpoints_status_equals_and_sort_by_status(sm, resources):
    tag = token()
    good = resources.endpoint(name=f"good-{tag}")
    bad = resources.endpoint(resources.endpoint_config(resources.model(image="/nonexistent/serve")),
                             name=f"bad-{tag}", wait=False)
    resources.wait_status(bad, {"Failed"})

    assert ENDPOINT.names(sm, NameContains=tag, StatusEquals="InService") == [good]
    assert ENDPOINT.names(sm, NameContains=tag, StatusEquals="Failed") == [bad]
    assert ENDPOINT.names(sm, NameContains=tag, StatusEquals="Creating") == []

    statuses = [e["EndpointStatus"]
                for e in ENDPOINT.summaries(sm, NameContains=tag, SortBy="Status",
                                            SortOrder="Ascending")]
    assert statuses == ["Failed", "InService"]
    assert ENDPOINT.names(sm, NameContains=tag, SortBy="Status", SortOrder="Descending") == \
        [good, bad]


# --------------------------------------------------------------------------
# Tags
# --------------------------------------------------------------------------

def tag_dict(sm, arn):
    tags = sm.list_tags(ResourceArn=arn)["Tags"]
    as_dict = {t["Key"]: t["Value"] for t in tags}
    assert len(as_dict) == len(tags), f"duplicate keys: {tags}"
    return as_dict


@pytest.mark.parametrize("kind", ALL_KINDS, ids=repr)
def test_tags_on_create_add_overwrite_delete(kind, sm, strait, resources, unique_name):
    name = unique_name("tagged")
    kind.create(resources, name, tags=[{"Key": "env", "Value": "test"},
                                       {"Key": "team", "Value": "a"}])
    arn = strait.arn(kind.arn_kind, name)
    assert tag_dict(sm, arn) == {"env": "test", "team": "a"}

    response = sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "b"},
                                                   {"Key": "owner", "Value": "me"}])
    assert {t["Key"]: t["Value"] for t in response["Tags"]} == {"team": "b", "owner": "me"}
    assert tag_dict(sm, arn) == {"env": "test", "team": "b", "owner": "me"}

    sm.delete_tags(ResourceArn=arn, TagKeys=["env", "owner"])
    assert tag_dict(sm, arn) == {"team": "b"}


@pytest.mark.usefixtures("server_still_serves")
def test_tags_on_missing_resources_are_rejected(sm, strait, resources, unique_name, aws_error):
    missing = strait.arn("model", unique_name("never-created"))
    with aws_error("ValidationException", 400):
        sm.list_tags(ResourceArn=missing)
    with aws_error("ValidationException", 400):
        sm.add_tags(ResourceArn=missing, Tags=[{"Key": "k", "Value": "v"}])

    deleted = resources.model(tags=[{"Key": "k", "Value": "v"}])
    sm.delete_model(ModelName=deleted)
    with aws_error("ValidationException", 400):
        sm.list_tags(ResourceArn=strait.arn("model", deleted))
