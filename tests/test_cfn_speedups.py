"""An emulator host's moto deploys without the work no answer depends on (``devtools/cfn_speedups.py``): JSON
templates are read as JSON, with the dictionaries moto's YAML loader gives, no AMI catalogue is built, and a KMS
key's key pair is generated when first used."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from moto.cloudformation.models import Stack
from moto.cloudformation.utils import yaml_tag_constructor

from devtools.emulator import FAKE_CREDENTIALS, LocalAws
from tests.support import deployed as dp

sample_assembly = dp.sample_assembly  # the session's sample assembly (a fixture)


@pytest.fixture(scope="module", autouse=True)
def emulator_host() -> None:
    """This process as an emulator host: what ``LocalAws`` installs in moto (the server is not started)."""
    LocalAws()


@pytest.fixture
def yaml_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The documents PyYAML's ``load`` is asked to read from here on."""
    read: list[str] = []
    load = yaml.load

    def counting(stream: Any, Loader: Any) -> Any:
        read.append(stream)
        return load(stream, Loader=Loader)

    monkeypatch.setattr(yaml, "load", counting)
    return read


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def moto_yaml(text: str) -> Any:
    """What moto's own parser reads a template as (YAML first, with its short-form tags)."""
    yaml.add_multi_constructor("", yaml_tag_constructor)
    return yaml.load(text, Loader=yaml.Loader)


def test_every_template_of_the_sample_reads_as_moto_reads_it_without_yaml(
    sample_assembly: Path, yaml_loads: list[str]
) -> None:
    templates = sorted(sample_assembly.glob("*.template.json"))
    assert len(templates) >= 6, templates
    parsed = {path.name: Stack.parse_template(path.read_text()) for path in templates}
    assert yaml_loads == []  # read as JSON
    for path in templates:
        assert parsed[path.name] == moto_yaml(path.read_text()), path.name


def test_a_yaml_template_with_short_form_tags_is_read_as_before(yaml_loads: list[str]) -> None:
    text = (
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n"
        "Outputs:\n  A:\n    Value: !GetAtt Q.Arn\n  U:\n    Value: !Ref Q\n"
    )
    assert Stack.parse_template(text) == {
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"A": {"Value": {"Fn::GetAtt": ["Q", "Arn"]}}, "U": {"Value": {"Ref": "Q"}}},
    }
    assert len(yaml_loads) == 1


def test_a_stack_and_a_change_set_of_a_json_template_deploy_without_yaml(aws: None, yaml_loads: list[str]) -> None:
    template = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q-1"}}}})
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    cloudformation.create_stack(StackName="one", TemplateBody=template)
    cloudformation.create_change_set(StackName="two", TemplateBody=template, ChangeSetName="c", ChangeSetType="CREATE")
    assert boto3.client("sqs", region_name="us-east-1").list_queues()["QueueUrls"][0].endswith("/q-1")
    assert yaml_loads == []


def test_an_account_s_ec2_backend_holds_no_ami_catalogue(aws: None) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    assert ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"].startswith("vpc-")
    assert ec2.describe_images(Owners=["amazon"])["Images"] == []


def test_an_emulator_host_that_does_not_deploy_does_not_import_moto_s_cloudformation() -> None:
    """The template patch waits for moto's CloudFormation models to be imported (~1.2 CPU s): the fault
    tests' and the benchmarks' emulators never deploy a stack. Imported later, they are patched then."""
    probe = (
        "import sys\n"
        "from devtools.emulator import LocalAws\n"
        "LocalAws()\n"
        "print('moto.cloudformation.models' in sys.modules)\n"
        "from moto.cloudformation.models import Stack\n"
        "print(hasattr(Stack.parse_template, '__wrapped__'))\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, env={"PYTHONPATH": str(root)}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


def test_a_kms_key_generates_its_key_pair_when_first_used_and_signs_as_before(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    generated: list[int] = []
    generate = rsa.generate_private_key

    def counting(public_exponent: int, key_size: int) -> rsa.RSAPrivateKey:
        generated.append(key_size)
        return generate(public_exponent=public_exponent, key_size=key_size)

    monkeypatch.setattr(rsa, "generate_private_key", counting)
    kms = boto3.client("kms", region_name="us-east-1")
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    assert (
        kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=symmetric, Plaintext=b"x")["CiphertextBlob"])["Plaintext"] == b"x"
    )
    signing = kms.create_key(KeySpec="RSA_3072", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    assert generated == []  # neither key has used a key pair yet
    signed = kms.sign(KeyId=signing, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    verified = kms.verify(KeyId=signing, Message=b"m", Signature=signed, SigningAlgorithm="RSASSA_PSS_SHA_256")
    assert verified["SignatureValid"] and generated == [3072]
    assert kms.get_public_key(KeyId=signing)["PublicKey"] and generated == [3072]
