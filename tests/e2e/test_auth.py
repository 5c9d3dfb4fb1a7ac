"""Credentials the server generates, and SigV4 verification of every request."""

import datetime
import os
import re
import secrets
import stat
import string

import pytest

pytestmark = pytest.mark.usefixtures("server_still_serves")


def random_credentials():
    alphabet = string.ascii_uppercase + string.digits
    key = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
    return key, secrets.token_urlsafe(30)[:40]


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def assert_error(response, status, code, *substrings):
    assert (response.status, response.error_code) == (status, code), response
    for text in substrings:
        assert text in response.message, response


def test_credentials_file_is_private_and_well_formed(strait):
    mode = stat.S_IMODE(os.stat(strait.credentials_path).st_mode)
    assert mode == 0o600, oct(mode)
    key, secret = strait.credentials()
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", key), key
    assert len(secret) == 40 and secret.strip() == secret, secret


def test_startup_banner(strait):
    lines = strait.stdout_lines()

    def value(label):
        found = [line.split(":", 1)[1].strip() for line in map(str.strip, lines)
                 if line.startswith(label + ":")]
        assert found, f"no {label!r} line in:\n" + "\n".join(lines)
        return found[0]

    assert value("API endpoint") == strait.endpoint
    assert value("Region") == "us-east-1"
    assert value("Account") == "123456789012"
    credentials = re.fullmatch(r"(\S+)\s+\(profile ([^,)\s]+)(?:, created now)?\)", value("Credentials"))
    assert credentials, value("Credentials")
    path, profile = credentials.groups()
    assert os.path.realpath(path) == os.path.realpath(strait.credentials_path)
    assert profile == "default"
    assert any(re.match(r"export AWS_[A-Z_]+=", line.strip()) for line in lines), lines


def test_valid_signature_is_accepted(signed_request):
    assert signed_request("ListEndpoints", {}).status == 200


def test_unsigned_request_is_rejected(signed_request):
    assert_error(signed_request("ListModels", {}, sign=False),
                 403, "MissingAuthenticationTokenException")


def test_unknown_access_key_is_rejected(signed_request, strait, aws_error):
    assert_error(signed_request("ListModels", {}, credentials=random_credentials()),
                 403, "UnrecognizedClientException")
    with aws_error("UnrecognizedClientException", 403):
        strait.client(*random_credentials()).list_models()


def test_wrong_secret_is_rejected(signed_request, strait, aws_error):
    key, _ = strait.credentials()
    _, wrong_secret = random_credentials()
    assert_error(signed_request("ListModels", {}, credentials=(key, wrong_secret)),
                 403, "InvalidSignatureException")
    with aws_error("InvalidSignatureException", 403):
        strait.client(key, wrong_secret).list_models()


def test_body_changed_after_signing_is_rejected(signed_request):
    response = signed_request("ListModels", {"MaxResults": 1},
                              body_after_signing=b'{"MaxResults": 2}')
    assert_error(response, 403, "InvalidSignatureException")


def test_target_changed_after_signing_is_rejected(signed_request):
    response = signed_request("ListModels", {},
                              headers_after_signing={"X-Amz-Target": "SageMaker.ListEndpoints"})
    assert_error(response, 403, "InvalidSignatureException")


def test_signature_from_two_minutes_ago_is_accepted(signed_request):
    """Proves the frozen-clock signing below really signs a valid request."""
    response = signed_request("ListModels", {},
                              signed_at=utc_now() - datetime.timedelta(minutes=2))
    assert response.status == 200, response


def test_signature_from_ten_minutes_ago_is_expired(signed_request):
    response = signed_request("ListModels", {},
                              signed_at=utc_now() - datetime.timedelta(minutes=10))
    assert_error(response, 403, "InvalidSignatureException", "Signature expired")
