"""Issue 7: the EC2 API subset (VPCs, subnets, security groups, zones, interface endpoints) through boto3's `ec2`
client and `aws ec2`, interface endpoints as real listeners guarded by their security groups, private DNS, and the
SageMaker guide's own private-endpoint workflow end to end.

Each test that makes VPCs uses its own 127.N.0.0/16 block (VPC blocks may not overlap on one server), so clients can
bind real source addresses in them: every address stays on loopback.
"""

import http.client
import itertools
import json
import re
import socket
import time
import uuid
from unittest import mock
from urllib.parse import urlsplit

import botocore.httpsession
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from botocore.exceptions import ClientError

from conftest import REGION, expect_aws_error, variant
from test_invoke import MODEL_SCRIPT, _write_executable

RUNTIME_SERVICE = f"com.amazonaws.{REGION}.sagemaker.runtime"
API_SERVICE = f"com.amazonaws.{REGION}.sagemaker.api"
PRIVATE_NAME = f"runtime.sagemaker.{REGION}.amazonaws.com"
_blocks = itertools.count(40)


def next_block():
    """A fresh 127.N.0.0/16 for one test's VPC."""
    return f"127.{next(_blocks)}"


@pytest.fixture(scope="module")
def model_image(tmp_path_factory):
    return _write_executable(tmp_path_factory.mktemp("images") / "model", MODEL_SCRIPT)


class Network:
    """Creates VPC resources and removes them again, newest first."""

    def __init__(self, ec2):
        self.ec2 = ec2
        self.undo = []

    def vpc(self, cidr, **kwargs):
        vpc = self.ec2.create_vpc(CidrBlock=cidr, **kwargs)["Vpc"]
        self.undo.append(lambda: self.ec2.delete_vpc(VpcId=vpc["VpcId"]))
        return vpc

    def subnet(self, vpc_id, cidr, zone):
        subnet = self.ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]
        self.undo.append(lambda: self.ec2.delete_subnet(SubnetId=subnet["SubnetId"]))
        return subnet

    def group(self, vpc_id, name=None):
        group = self.ec2.create_security_group(
            GroupName=name or f"g-{uuid.uuid4().hex[:8]}", Description="test", VpcId=vpc_id)["GroupId"]
        self.undo.append(lambda: self.ec2.delete_security_group(GroupId=group))
        return group

    def endpoint(self, vpc_id, subnets, groups, service=RUNTIME_SERVICE, private_dns=False):
        endpoint = self.ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=vpc_id, ServiceName=service, SubnetIds=subnets,
            SecurityGroupIds=groups, PrivateDnsEnabled=private_dns)["VpcEndpoint"]
        self.undo.append(lambda: self.ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]]))
        return endpoint

    def runtime_endpoint_in(self, block, zone, allow):
        """A VPC `block`.0.0/16 with one subnet `block`.1.0/24 in `zone`, a group admitting `allow` on every port
        and protocol, and a runtime interface endpoint there (its listener: `block`.1.1). Returns the endpoint."""
        vpc = self.vpc(f"{block}.0.0/16")["VpcId"]
        subnet = self.subnet(vpc, f"{block}.1.0/24", zone)["SubnetId"]
        group = self.group(vpc)
        self.ec2.authorize_security_group_ingress(GroupId=group, IpProtocol="-1", CidrIp=allow)
        return self.endpoint(vpc, [subnet], [group])

    def enable_dns_hostnames(self, vpc_id):
        self.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})

    def cleanup(self):
        while self.undo:
            try:
                self.undo.pop()()
            except ClientError:
                pass


@pytest.fixture
def net(ec2):
    network = Network(ec2)
    yield network
    network.cleanup()


def port_of(server):
    return urlsplit(server.endpoint).port


def connect_from(source, address, port, timeout=5):
    """A TCP connection to address:port whose source is `source`."""
    return socket.create_connection((address, port), timeout=timeout, source_address=(source, 0))


def answered_http(source, address, port):
    """Whether an HTTP request from `source` gets an HTTP answer. None: nothing listens there (yet); False: the
    listener closed the connection unanswered."""
    try:
        with connect_from(source, address, port) as sock:
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1")
    except ConnectionRefusedError:
        return None
    except (ConnectionResetError, BrokenPipeError):
        return False


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# --------------------------------------------------------------------------
# The network a new server starts with
# --------------------------------------------------------------------------

def test_a_new_server_has_a_default_vpc_subnets_group_and_runtime_endpoint(ec2, strait):
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1 and vpcs[0]["IsDefault"] and vpcs[0]["State"] == "available"
    vpc = vpcs[0]["VpcId"]
    assert re.fullmatch(r"vpc-[0-9a-f]{17}", vpc)
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    assert {(s["SubnetId"], s["AvailabilityZone"], s["CidrBlock"]) for s in subnets} == {
        ("subnet-00000000000000001", "us-east-1a", "127.0.1.0/24"),
        ("subnet-00000000000000002", "us-east-1b", "127.0.2.0/24"),
        ("subnet-00000000000000003", "us-east-1c", "127.0.3.0/24"),
    }
    assert all(s["VpcId"] == vpc for s in subnets)
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}])
    assert len(groups["SecurityGroups"]) == 1
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [(z["ZoneName"], z["ZoneId"], z["State"]) for z in zones] == [
        ("us-east-1a", "use1-az1", "available"), ("us-east-1b", "use1-az2", "available"),
        ("us-east-1c", "use1-az3", "available")]
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    assert len(endpoints) == 1
    endpoint = endpoints[0]
    assert endpoint["ServiceName"] == RUNTIME_SERVICE and endpoint["VpcEndpointType"] == "Interface"
    assert sorted(endpoint["SubnetIds"]) == sorted(s["SubnetId"] for s in subnets)
    assert len(endpoint["NetworkInterfaceIds"]) == 3 and endpoint["PrivateDnsEnabled"] is True
    names = [e["DnsName"] for e in endpoint["DnsEntries"]]
    assert names[0] == f"{endpoint['VpcEndpointId']}-{names[0].split('-')[2].split('.')[0]}" \
        f".runtime.sagemaker.{REGION}.vpce.amazonaws.com"
    assert PRIVATE_NAME in names and sum("-us-east-1" in n for n in names) == 3


def test_describe_availability_zones_and_endpoint_services(ec2):
    services = ec2.describe_vpc_endpoint_services()
    assert services["ServiceNames"] == [API_SERVICE, RUNTIME_SERVICE]
    runtime = ec2.describe_vpc_endpoint_services(ServiceNames=[RUNTIME_SERVICE])["ServiceDetails"][0]
    assert runtime["PrivateDnsName"] == PRIVATE_NAME
    assert runtime["ServiceType"] == [{"ServiceType": "Interface"}]
    assert runtime["AvailabilityZones"] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    with expect_aws_error("InvalidServiceName", 400, "does not exist"):
        ec2.describe_vpc_endpoint_services(ServiceNames=["com.amazonaws.us-east-1.s3"])
    one = ec2.describe_availability_zones(ZoneNames=["us-east-1b"])["AvailabilityZones"]
    assert [z["ZoneName"] for z in one] == ["us-east-1b"]
    by_id = ec2.describe_availability_zones(Filters=[{"Name": "zone-id", "Values": ["use1-az3"]}])
    assert [z["ZoneName"] for z in by_id["AvailabilityZones"]] == ["us-east-1c"]


# --------------------------------------------------------------------------
# VPCs, subnets, security groups
# --------------------------------------------------------------------------

def test_vpc_subnet_and_group_lifecycle(ec2, net):
    block = next_block()
    vpc = net.vpc(f"{block}.7.9/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "seed"}]}])
    vpc_id = vpc["VpcId"]
    assert vpc["CidrBlock"] == f"{block}.0.0/16" and vpc["IsDefault"] is False
    assert vpc["Tags"] == [{"Key": "Name", "Value": "seed"}]
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["CidrBlock"] == f"{block}.0.0/16"
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["se*"]}])["Vpcs"]] \
        == [vpc_id]
    # DNS attributes: support on, hostnames off for a new VPC.
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    assert not ec2.describe_vpc_attribute(
        VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    net.enable_dns_hostnames(vpc_id)
    assert ec2.describe_vpc_attribute(
        VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]

    a = net.subnet(vpc_id, f"{block}.1.0/24", "us-east-1a")
    b = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{block}.2.0/24", AvailabilityZoneId="use1-az2")["Subnet"]
    net.undo.append(lambda: ec2.delete_subnet(SubnetId=b["SubnetId"]))
    assert (a["AvailabilityZone"], b["AvailabilityZone"]) == ("us-east-1a", "us-east-1b")
    assert a["AvailableIpAddressCount"] == 251 and a["DefaultForAz"] is False
    listed = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert sorted(s["SubnetId"] for s in listed) == sorted([a["SubnetId"], b["SubnetId"]])
    with expect_aws_error("InvalidSubnet.Conflict", 400, "conflicts with another subnet"):
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{block}.1.128/25", AvailabilityZone="us-east-1a")
    with expect_aws_error("InvalidSubnet.Range", 400):
        ec2.create_subnet(VpcId=vpc_id, CidrBlock="127.250.1.0/24", AvailabilityZone="us-east-1a")
    with expect_aws_error("InvalidParameterValue", 400, "us-east-1a, us-east-1b, us-east-1c"):
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{block}.3.0/24", AvailabilityZone="us-east-1z")

    group = net.group(vpc_id, name="web")
    with expect_aws_error("InvalidGroup.Duplicate", 400, "already exists"):
        ec2.create_security_group(GroupName="WEB", Description="again", VpcId=vpc_id)
    with expect_aws_error("InvalidGroup.NotFound", 400, "default VPC"):
        ec2.describe_security_groups(GroupNames=["web"])  # names are looked up in the default VPC
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": f"{block}.1.0/24"}]}])
    with expect_aws_error("InvalidPermission.Duplicate", 400, "already exists"):
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": f"{block}.1.0/24"}]}])
    ec2.authorize_security_group_ingress(GroupId=group, IpProtocol="-1", CidrIp=f"{block}.2.5/32")
    described = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    permissions = {(p["IpProtocol"], p.get("FromPort"), tuple(r["CidrIp"] for r in p["IpRanges"]))
                   for p in described["IpPermissions"]}
    assert permissions == {("tcp", 443, (f"{block}.1.0/24",)), ("-1", None, (f"{block}.2.5/32",))}
    assert described["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    ec2.revoke_security_group_ingress(GroupId=group, IpProtocol="-1", CidrIp=f"{block}.2.5/32")
    with expect_aws_error("InvalidPermission.NotFound", 400):
        ec2.revoke_security_group_ingress(GroupId=group, IpProtocol="-1", CidrIp=f"{block}.2.5/32")

    # Deletions that would orphan something are refused.
    with expect_aws_error("DependencyViolation", 400, "has dependencies"):
        ec2.delete_vpc(VpcId=vpc_id)
    default_group = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    with expect_aws_error("CannotDelete", 400, "cannot be deleted by a user"):
        ec2.delete_security_group(GroupId=default_group["GroupId"])
    net.cleanup()
    with expect_aws_error("InvalidVpcID.NotFound", 400, vpc_id):
        ec2.describe_vpcs(VpcIds=[vpc_id])
    assert not ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]


def test_bad_vpc_and_subnet_requests(ec2, net):
    with expect_aws_error("InvalidParameterValue", 400, "not a valid CIDR block"):
        ec2.create_vpc(CidrBlock="127.300.0.0/16")
    with expect_aws_error("InvalidVpc.Range", 400):
        ec2.create_vpc(CidrBlock="127.0.0.0/8")
    with expect_aws_error("InvalidParameterValue", 400, "overlaps"):
        ec2.create_vpc(CidrBlock="127.0.0.0/16")  # the default VPC's block
    with expect_aws_error("InvalidVpcID.NotFound", 400):
        ec2.create_subnet(VpcId="vpc-0123456789abcdef0", CidrBlock="127.99.1.0/24")
    with expect_aws_error("InvalidVpcID.Malformed", 400):
        ec2.describe_vpc_attribute(VpcId="nope", Attribute="enableDnsSupport")
    with expect_aws_error("InvalidSubnetID.NotFound", 400):
        ec2.delete_subnet(SubnetId="subnet-0123456789abcdef0")
    with expect_aws_error("InvalidGroup.NotFound", 400):
        ec2.delete_security_group(GroupId="sg-0123456789abcdef0")
    with expect_aws_error("InvalidParameterValue", 400, "filter"):
        ec2.describe_vpcs(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    with expect_aws_error("DryRunOperation", 400):
        ec2.create_vpc(CidrBlock="127.98.0.0/16", DryRun=True)
    with expect_aws_error("DryRunOperation", 400):
        ec2.describe_vpcs(DryRun=True)
    assert not ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["127.98.0.0/16"]}])["Vpcs"]


def test_describe_pages_with_max_results_and_next_token(ec2, net):
    block = next_block()
    vpc = net.vpc(f"{block}.0.0/16")["VpcId"]
    for i in range(6):
        net.subnet(vpc, f"{block}.{i}.0/24", "us-east-1a")
    seen, token = [], None
    while True:
        kwargs = {"Filters": [{"Name": "vpc-id", "Values": [vpc]}], "MaxResults": 5}
        if token:
            kwargs["NextToken"] = token
        page = ec2.describe_subnets(**kwargs)
        seen += [s["SubnetId"] for s in page["Subnets"]]
        token = page.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 6


def test_the_aws_cli_speaks_to_the_ec2_api(cli, strait):
    result = cli.run("describe-vpcs", "--filters", "Name=is-default,Values=true", service="ec2")
    assert result.returncode == 0, result
    assert result.json()["Vpcs"][0]["IsDefault"] is True
    bad = cli.run("delete-vpc", "--vpc-id", "vpc-0123456789abcdef0", service="ec2")
    assert bad.returncode != 0 and "InvalidVpcID.NotFound" in bad.stderr


# --------------------------------------------------------------------------
# Bad bytes on the EC2 API
# --------------------------------------------------------------------------

def raw_ec2(strait, body, sign=True, content_type="application/x-www-form-urlencoded; charset=utf-8"):
    """POSTs `body` to the EC2 API, signed (service ec2) by botocore; returns (status, text)."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    key, secret = strait.credentials()
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=strait.endpoint + "/", data=body, headers={"Content-Type": content_type})
    if sign:
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "ec2", REGION).add_auth(request)
    prepared = request.prepare()
    url = urlsplit(strait.endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.request("POST", "/", body=prepared.body, headers=dict(prepared.headers))
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


@pytest.mark.parametrize("body, code", [
    (b"Version=2016-11-15", "MissingAction"),
    (b"Action=RunInstances&Version=2016-11-15", "InvalidAction"),
    (b"Action=CreateVpc&Version=2016-11-15&CidrBlok=127.1.0.0/16", "UnknownParameter"),
    (b"Action=DescribeVpcs&Version=2016-11-15&MaxResults=lots", "InvalidParameterValue"),
    (b"Action=DescribeVpcs&Version=2016-11-15&DryRun=maybe", "InvalidParameterValue"),
    (b"Action=DescribeVpcs&VpcId.x=vpc-1", "InvalidParameterValue"),
    (b"Action=DescribeVpcs&VpcId.1=vpc-1&VpcId.1=vpc-2", "InvalidParameterValue"),
    (b"Action=DescribeVpcs&Filter.1.Name.Deeper=x", "UnknownParameter"),
    (b"Action=DescribeVpcs&Filter=x", "UnknownParameter"),
    (b"Action=CreateVpc&CidrBlock=%ZZ", "InvalidParameterValue"),
    (b"Action=CreateVpc&CidrBlock=%FF%FE", "InvalidParameterValue"),
    (b"Action=CreateSubnet&CidrBlock=127.1.0.0/24", "MissingParameter"),
    (b"Action=CreateVpcEndpoint&VpcId=vpc-1&VpcEndpointType=Bogus", "InvalidParameterValue"),
    (b"Action=DescribeVpcs&" + b"A." * 5000 + b"=1", "UnknownParameter"),
    (b"Action=" + b"A" * 5000, "InvalidAction"),
    (b"&".join(b"VpcId.%d=v" % i for i in range(1, 10_002)) + b"&Action=DescribeVpcs", "InvalidParameterValue"),
])
def test_bad_query_bytes_get_ec2_errors(strait, body, code):
    status, text = raw_ec2(strait, body)
    assert status == 400, text
    assert f"<Code>{code}</Code>" in text, text
    assert "<RequestID>" in text and len(text) < 2000, text[:2000]


def test_unsigned_and_wrongly_scoped_ec2_calls_are_refused(strait, ec2):
    status, text = raw_ec2(strait, b"Action=DescribeVpcs&Version=2016-11-15", sign=False)
    assert status == 400 and "<Code>MissingAuthenticationTokenException</Code>" in text
    sagemaker_signed = strait.client(service="sagemaker")
    # A request signed for sagemaker is refused by the EC2 API (scope names the service).
    key, secret = strait.credentials()
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=strait.endpoint + "/", data=b"Action=DescribeVpcs",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "sagemaker", REGION).add_auth(request)
    prepared = request.prepare()
    url = urlsplit(strait.endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request("POST", "/", body=prepared.body, headers=dict(prepared.headers))
    response = connection.getresponse()
    assert response.status == 400 and b"correct service: 'ec2'" in response.read()
    connection.close()
    assert sagemaker_signed.list_models()["Models"] is not None  # the SageMaker API is undisturbed


# --------------------------------------------------------------------------
# Models' VpcConfig
# --------------------------------------------------------------------------

def test_create_model_checks_vpc_config_against_the_network(sm, resources, net, ec2):
    group = resources.default_security_group()
    name = f"m-{uuid.uuid4().hex[:8]}"
    container = {"Image": "strait/echo"}
    with expect_aws_error("ValidationException", 400, "subnet-0123456789abcdef0", "does not exist"):
        sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=resources.ROLE_ARN,
                        VpcConfig={"SecurityGroupIds": [group], "Subnets": ["subnet-0123456789abcdef0"]})
    with expect_aws_error("ValidationException", 400, "sg-0123456789abcdef0", "does not exist"):
        sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=resources.ROLE_ARN,
                        VpcConfig={"SecurityGroupIds": ["sg-0123456789abcdef0"],
                                   "Subnets": ["subnet-00000000000000001"]})
    block = next_block()
    other = net.vpc(f"{block}.0.0/16")["VpcId"]
    other_subnet = net.subnet(other, f"{block}.1.0/24", "us-east-1a")["SubnetId"]
    with expect_aws_error("ValidationException", 400, "one VPC"):
        sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=resources.ROLE_ARN,
                        VpcConfig={"SecurityGroupIds": [group], "Subnets": [other_subnet]})
    with expect_aws_error("ValidationException", 400):
        sm.describe_model(ModelName=name)


def test_a_deployment_whose_vpc_config_subnet_is_gone_fails(resources, net, ec2, model_image):
    """A subnet may be deleted while only a model names it (no endpoint runs there); an endpoint of that model then
    fails with the reason instead of running somewhere else."""
    block = next_block()
    vpc = net.vpc(f"{block}.0.0/16")["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{block}.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    model = f"m-{uuid.uuid4().hex[:8]}"
    resources.sm.create_model(ModelName=model, PrimaryContainer={"Image": model_image},
                              ExecutionRoleArn=resources.ROLE_ARN,
                              VpcConfig={"SecurityGroupIds": [net.group(vpc)], "Subnets": [subnet["SubnetId"]]})
    resources.models.append(model)
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    endpoint = resources.endpoint(resources.endpoint_config(model), wait=False)
    resources.wait_status(endpoint, {"Failed"})
    reason = resources.sm.describe_endpoint(EndpointName=endpoint)["FailureReason"]
    assert subnet["SubnetId"] in reason and "do not exist" in reason, reason


def test_a_subnet_in_use_by_an_endpoint_cannot_be_deleted(resources, net, ec2, model_image):
    block = next_block()
    vpc = net.vpc(f"{block}.0.0/16")["VpcId"]
    subnet = net.subnet(vpc, f"{block}.1.0/24", "us-east-1b")["SubnetId"]
    group = net.group(vpc)
    model = f"m-{uuid.uuid4().hex[:8]}"
    resources.sm.create_model(ModelName=model, PrimaryContainer={"Image": model_image},
                              ExecutionRoleArn=resources.ROLE_ARN,
                              VpcConfig={"SecurityGroupIds": [group], "Subnets": [subnet]})
    resources.models.append(model)
    endpoint = resources.endpoint(resources.endpoint_config(model))
    with expect_aws_error("DependencyViolation", 400):
        ec2.delete_subnet(SubnetId=subnet)
    with expect_aws_error("DependencyViolation", 400):
        ec2.delete_security_group(GroupId=group)
    resources.delete_endpoint(endpoint)
    ec2.delete_security_group(GroupId=group)
    net.undo.remove(net.undo[-1])


# --------------------------------------------------------------------------
# Interface endpoints: listeners and security groups
# --------------------------------------------------------------------------

def test_interface_endpoint_listeners_enforce_security_groups(ec2, net, strait):
    block = next_block()
    port = port_of(strait)
    vpc = net.vpc(f"{block}.0.0/16")["VpcId"]
    a = net.subnet(vpc, f"{block}.1.0/24", "us-east-1a")["SubnetId"]
    b = net.subnet(vpc, f"{block}.2.0/24", "us-east-1b")["SubnetId"]
    group = net.group(vpc)
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": f"{block}.1.0/24"}]}])
    endpoint = net.endpoint(vpc, [a, b], [group])
    assert endpoint["State"] == "available" and endpoint["PrivateDnsEnabled"] is False
    listener_a, listener_b = f"{block}.1.1", f"{block}.2.1"
    # The listeners open right after the call returns.
    assert wait_until(lambda: answered_http(f"{block}.1.50", listener_a, port) is not None
                      and answered_http(f"{block}.1.50", listener_b, port) is not None)
    # Allowed: a client in subnet a, to either listener. Refused: a client in subnet b and one outside the VPC.
    assert answered_http(f"{block}.1.50", listener_a, port) is True
    assert answered_http(f"{block}.1.50", listener_b, port) is True
    assert answered_http(f"{block}.2.50", listener_a, port) is False
    assert answered_http("127.0.0.1", listener_b, port) is False
    metrics = http.client.HTTPConnection(urlsplit(strait.endpoint).hostname, port, timeout=5)
    metrics.request("GET", "/metrics")
    text = metrics.getresponse().read().decode()
    denied = {line.split("address=\"")[1].split("\"")[0]: int(line.rsplit(" ", 1)[1])
              for line in text.splitlines() if line.startswith("strait_vpc_endpoint_denied_connections_total{")
              and endpoint["VpcEndpointId"] in line}
    assert denied == {listener_a: 1, listener_b: 1}, text
    assert [e["NetworkInterfaceIds"] for e in ec2.describe_vpc_endpoints(
        VpcEndpointIds=[endpoint["VpcEndpointId"]])["VpcEndpoints"]] == [endpoint["NetworkInterfaceIds"]]
    # A rule change applies to the next connection.
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": f"{block}.2.0/24"}]}])
    assert answered_http(f"{block}.2.50", listener_a, port) is True
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": f"{block}.2.0/24"}]}])
    assert answered_http(f"{block}.2.50", listener_a, port) is False
    # A rule naming a security group admits the network interfaces that carry it: here the interface of an API
    # endpoint in subnet b with group `peers`, and nothing else in subnet b.
    peers = net.group(vpc)
    api = net.endpoint(vpc, [b], [peers], service=API_SERVICE)
    api_address = f"{block}.2.2"
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": peers}]}])
    assert answered_http(api_address, listener_a, port) is True
    assert answered_http(f"{block}.2.3", listener_a, port) is False
    ec2.delete_vpc_endpoints(VpcEndpointIds=[api["VpcEndpointId"]])
    # Removing a subnet closes its listener; deleting the endpoint closes the rest.
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint["VpcEndpointId"], RemoveSubnetIds=[b])
    assert wait_until(lambda: not can_connect(f"{block}.1.50", listener_b, port))
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
    assert wait_until(lambda: not can_connect(f"{block}.1.50", listener_a, port))


def can_connect(source, address, port):
    try:
        with connect_from(source, address, port, timeout=1):
            return True
    except OSError:
        return False


def test_vpc_endpoint_rules(ec2, net):
    block = next_block()
    vpc = net.vpc(f"{block}.0.0/16")["VpcId"]
    a = net.subnet(vpc, f"{block}.1.0/24", "us-east-1a")["SubnetId"]
    a2 = net.subnet(vpc, f"{block}.3.0/24", "us-east-1a")["SubnetId"]
    group = net.group(vpc)
    with expect_aws_error("InvalidParameter", 400, "enableDnsSupport and enableDnsHostnames"):
        ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=vpc, ServiceName=RUNTIME_SERVICE,
                                SubnetIds=[a], SecurityGroupIds=[group], PrivateDnsEnabled=True)
    with expect_aws_error("DuplicateSubnetsInSameZone", 400):
        ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=vpc, ServiceName=RUNTIME_SERVICE,
                                SubnetIds=[a, a2], SecurityGroupIds=[group], PrivateDnsEnabled=False)
    with expect_aws_error("InvalidServiceName", 400):
        ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=vpc, ServiceName="com.amazonaws.x.s3",
                                SubnetIds=[a], SecurityGroupIds=[group])
    with expect_aws_error("InvalidParameter", 400, "Gateway"):
        ec2.create_vpc_endpoint(VpcEndpointType="Gateway", VpcId=vpc, ServiceName=RUNTIME_SERVICE)
    net.enable_dns_hostnames(vpc)
    first = net.endpoint(vpc, [a], [group], private_dns=True)
    assert first["Groups"] == [{"GroupId": group, "GroupName": ec2.describe_security_groups(
        GroupIds=[group])["SecurityGroups"][0]["GroupName"]}]
    with expect_aws_error("InvalidParameter", 400, "conflicting DNS domain"):
        ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=vpc, ServiceName=RUNTIME_SERVICE,
                                SubnetIds=[a], SecurityGroupIds=[group], PrivateDnsEnabled=True)
    api = net.endpoint(vpc, [a], [group], service=API_SERVICE, private_dns=True)
    assert any(e["DnsName"] == f"api.sagemaker.{REGION}.amazonaws.com" for e in api["DnsEntries"])
    with expect_aws_error("DependencyViolation", 400):
        ec2.delete_subnet(SubnetId=a)
    with expect_aws_error("DependencyViolation", 400):
        ec2.delete_security_group(GroupId=group)
    gone = ec2.delete_vpc_endpoints(VpcEndpointIds=["vpce-0123456789abcdef0"])
    assert gone["Unsuccessful"][0]["Error"]["Code"] == "InvalidVpcEndpoint.NotFound"
    ec2.create_tags(Resources=[first["VpcEndpointId"]], Tags=[{"Key": "team", "Value": "ml"}])
    tagged = ec2.describe_vpc_endpoints(Filters=[{"Name": "tag:team", "Values": ["ml"]}])["VpcEndpoints"]
    assert [e["VpcEndpointId"] for e in tagged] == [first["VpcEndpointId"]]


def test_the_network_survives_a_restart(strait_factory):
    server = strait_factory.start()
    ec2 = server.client(service="ec2")
    block = next_block()
    # Every port is allowed: the restarted server listens on another one. (Nothing to clean up: the server goes.)
    endpoint = Network(ec2).runtime_endpoint_in(block, "us-east-1c", allow=f"{block}.1.0/24")
    subnet, group = endpoint["SubnetIds"][0], endpoint["Groups"][0]["GroupId"]
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    server.stop()
    again = strait_factory.start(data_dir=server.data_dir)
    ec2 = again.client(service="ec2")
    assert ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"] == default_vpc
    assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["CidrBlock"] == f"{block}.1.0/24"
    rules = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    assert rules[0]["IpProtocol"] == "-1" and rules[0]["IpRanges"] == [{"CidrIp": f"{block}.1.0/24"}]
    kept = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])["VpcEndpoints"][0]
    assert kept["NetworkInterfaceIds"] == endpoint["NetworkInterfaceIds"]
    # The listener is open again, on the new port.
    assert wait_until(lambda: answered_http(f"{block}.1.9", f"{block}.1.1", port_of(again)) is True)


# --------------------------------------------------------------------------
# Private DNS and the seed's workflow
# --------------------------------------------------------------------------

def dns_address(server):
    line = next(line for line in server.stdout_lines() if "Private DNS:" in line)
    host, port = line.split("Private DNS:")[1].strip().rsplit(":", 1)
    return host, int(port)


def resolve(server, name, source, rdtype="A", tcp=False):
    host, port = dns_address(server)
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, host, port=port, source=source, timeout=5)


def addresses(response):
    return sorted(item.address for rrset in response.answer for item in rrset)


@pytest.fixture
def seeded(strait_factory, model_image):
    """The SageMaker guide's private endpoint, built with boto3 only: a VPC with DNS hostnames, two subnets in two
    zones, a security group allowing the client subnet, a runtime interface endpoint with private DNS, a model with
    that VpcConfig, and an endpoint with 2 instances."""
    server = strait_factory.start(args=["--dns-listen", "127.0.0.1:0"])
    ec2, sm = server.client(service="ec2"), server.client()
    port = port_of(server)
    block = next_block()
    vpc = ec2.create_vpc(CidrBlock=f"{block}.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet_a = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{block}.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    subnet_b = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{block}.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    sg = ec2.create_security_group(GroupName="clients", Description="the client subnet", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": f"{block}.1.0/24"}]}])
    endpoint = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=vpc, ServiceName=RUNTIME_SERVICE,
        SubnetIds=[subnet_a["SubnetId"], subnet_b["SubnetId"]], SecurityGroupIds=[sg],
        PrivateDnsEnabled=True)["VpcEndpoint"]
    sm.create_model(ModelName="seed-model", PrimaryContainer={"Image": model_image},
                    ExecutionRoleArn="arn:aws:iam::123456789012:role/StraitExecutionRole",
                    VpcConfig={"SecurityGroupIds": [sg], "Subnets": [subnet_a["SubnetId"], subnet_b["SubnetId"]]})
    sm.create_endpoint_config(EndpointConfigName="seed-config",
                              ProductionVariants=[variant("seed-model", count=2)])
    sm.create_endpoint(EndpointName="seed", EndpointConfigName="seed-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="seed", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return server, block, endpoint, port


def runtime_from(server, source, url):
    """A sagemaker-runtime client whose connections leave from `source`."""
    original = botocore.httpsession.URLLib3Session._get_pool_manager_kwargs

    def with_source(self, **extra):
        kwargs = original(self, **extra)
        kwargs["source_address"] = (source, 0)
        return kwargs

    patcher = mock.patch.object(botocore.httpsession.URLLib3Session, "_get_pool_manager_kwargs", with_source)
    patcher.start()
    try:
        return server.runtime(url)
    finally:
        patcher.stop()


def test_the_seed_workflow_keeps_calls_private_and_in_the_callers_zone(seeded):
    server, block, endpoint, port = seeded
    client_a = f"{block}.1.77"
    # The client in zone a resolves the runtime's own name through Strait's DNS: zone a's listener only.
    answer = resolve(server, PRIVATE_NAME, client_a)
    assert answer.rcode() == dns.rcode.NOERROR and answer.flags & dns.flags.AA
    assert addresses(answer) == [f"{block}.1.1"]
    rt = runtime_from(server, client_a, f"http://{addresses(answer)[0]}:{port}")
    for _ in range(10):
        response = rt.invoke_endpoint(EndpointName="seed", ContentType="text/csv", Body=b"1.0,2.0,3.0")
        served = json.loads(response["Body"].read())
        assert served["body"] == "1.0,2.0,3.0"
        assert served["address"].startswith(f"{block}.1."), served  # a zone-a instance
    # A client the security group does not allow (zone b's subnet) is refused at the connection.
    client_b = f"{block}.2.77"
    assert addresses(resolve(server, PRIVATE_NAME, client_b)) == [f"{block}.2.1"]
    refused = runtime_from(server, client_b, f"http://{block}.2.1:{port}")
    with pytest.raises(Exception) as failure:
        refused.invoke_endpoint(EndpointName="seed", ContentType="text/csv", Body=b"1,2,3")
    assert "Connection" in type(failure.value).__name__ or "connection" in str(failure.value).lower(), failure.value


def test_private_dns_answers(seeded):
    server, block, endpoint, port = seeded
    names = [e["DnsName"] for e in endpoint["DnsEntries"]]
    regional = names[0]
    zonal_b = next(n for n in names if "-us-east-1b." in n)
    # The endpoint's own names answer every client; the regional one lists both listeners.
    assert addresses(resolve(server, regional, "127.0.0.1")) == [f"{block}.1.1", f"{block}.2.1"]
    assert addresses(resolve(server, zonal_b.upper(), f"{block}.1.5")) == [f"{block}.2.1"]
    # Over TCP too.
    assert addresses(resolve(server, zonal_b, f"{block}.1.5", tcp=True)) == [f"{block}.2.1"]
    # A client of the VPC outside its subnets gets every listener of its VPC's endpoint.
    assert addresses(resolve(server, PRIVATE_NAME, f"{block}.9.9")) == [f"{block}.1.1", f"{block}.2.1"]
    # A client of the default VPC gets the default endpoint (the zonal endpoints) of its zone.
    assert addresses(resolve(server, PRIVATE_NAME, "127.0.2.200")) == ["127.0.2.1"]
    # AAAA: no records; names Strait does not own: REFUSED.
    aaaa = resolve(server, PRIVATE_NAME, f"{block}.1.5", rdtype="AAAA")
    assert aaaa.rcode() == dns.rcode.NOERROR and not aaaa.answer
    assert resolve(server, "example.com", f"{block}.1.5").rcode() == dns.rcode.REFUSED
    # Bad bytes: garbage gets FORMERR or silence, and the server keeps answering.
    host, dns_port = dns_address(server)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        for garbage in (b"", b"\x00" * 5, b"\x12\x34" + b"\x01\x00" + b"\x00\x02" + b"\x00" * 6 + b"\xc0\x0c",
                        bytes(range(256))):
            sock.sendto(garbage, (host, dns_port))
            try:
                reply, _ = sock.recvfrom(512)
                assert reply[3] & 0x0F in (1, 4), reply  # FORMERR or NOTIMP
            except socket.timeout:
                pass
    with socket.create_connection((host, dns_port), timeout=5) as stream:
        stream.sendall(b"\x00\x05hello")  # too short to be a query: the connection is closed
        assert stream.recv(512) == b""
    assert addresses(resolve(server, zonal_b, f"{block}.1.5")) == [f"{block}.2.1"]
    # Turning DNS hostnames off withdraws the private name.
    ec2 = server.client(service="ec2")
    ec2.modify_vpc_attribute(VpcId=endpoint["VpcId"], EnableDnsHostnames={"Value": False})
    withdrawn = resolve(server, PRIVATE_NAME, f"{block}.1.5")
    assert withdrawn.rcode() == dns.rcode.NOERROR and not withdrawn.answer


def test_a_wildcard_listener_applies_interface_endpoints_security_groups(strait_factory):
    """With --listen 0.0.0.0 the regional listener owns every address on its port: it applies the security groups of
    the interface endpoint whose address a connection came in on, and serves other addresses as before."""
    server = strait_factory.start(args=["--listen", "0.0.0.0:0"])
    server.endpoint = server.endpoint.replace("0.0.0.0", "127.0.0.1")  # talk to it on loopback
    port = port_of(server)
    block = next_block()
    Network(server.client(service="ec2")).runtime_endpoint_in(block, "us-east-1a", allow=f"{block}.1.0/25")
    assert answered_http(f"{block}.1.5", f"{block}.1.1", port) is True
    assert answered_http(f"{block}.1.200", f"{block}.1.1", port) is False
    assert answered_http(f"{block}.1.200", "127.0.0.1", port) is True  # not an interface address


def test_an_interface_address_held_by_another_process_is_tried_again(ec2, net, strait):
    """When an interface's address cannot be bound (another process holds it), the listener opens once it is free:
    Strait tries again every 5 s."""
    block = next_block()
    port = port_of(strait)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind((f"{block}.1.1", port))
    squatter.listen(1)
    try:
        net.runtime_endpoint_in(block, "us-east-1a", allow=f"{block}.0.0/16")
        time.sleep(0.5)
    finally:
        squatter.close()
    assert wait_until(lambda: answered_http(f"{block}.1.9", f"{block}.1.1", port) is True, timeout=12)
