"""Refused object-store credentials: an S3 server that checks signatures (moto's server with
authentication on, in its own process on 127.0.0.1) refuses a wrong secret; the command stops with
one line naming the store and exit 2, and nothing is recorded or left in the cache."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import duckdb
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.environments import STAGING
from elt_platform.errors import ObjectStoreUnavailable
from elt_platform_tests.conftest import make_settings, run_cli

BUCKET = "elt-locked"
S3_ACCESS = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'  # noqa: E501


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def locked_s3(tmp_path_factory):
    """moto's S3 server requiring signed requests from a known IAM user; yields (endpoint, key
    id, secret). The first three calls (create the user, its policy, its key) are unauthenticated:
    that is how moto lets a test set up its only identity."""
    import boto3

    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                time.sleep(0.1)
        setup = {"endpoint_url": endpoint, "region_name": "us-east-1"}
        setup |= {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="elt")
        iam.put_user_policy(UserName="elt", PolicyName="s3", PolicyDocument=S3_ACCESS)
        key = iam.create_access_key(UserName="elt")["AccessKey"]
        key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=key_id, aws_secret_access_key=secret,
        )  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        yield endpoint, key_id, secret
    finally:
        server.terminate()
        server.wait(timeout=10)


def _settings(root, endpoint, key_id, secret):
    with pytest.MonkeyPatch.context() as mp:  # s3fs reads the usual AWS_* variables
        mp.setenv("AWS_ACCESS_KEY_ID", key_id)
        mp.setenv("AWS_SECRET_ACCESS_KEY", secret)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        url = f"s3://{BUCKET}/versions?endpoint_url={endpoint}"
        return make_settings(root, ELT_VERSIONS_URL=url), dict(os.environ)


def test_a_wrong_secret_is_one_line_naming_the_store_and_records_nothing(tmp_path, locked_s3):
    endpoint, key_id, secret = locked_s3
    right, right_env = _settings(tmp_path / "right", endpoint, key_id, secret)
    wrong, wrong_env = _settings(tmp_path / "wrong", endpoint, key_id, secret[::-1])
    con = duckdb.connect()

    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            mp.setenv(var, right_env[var])
        good = open_warehouse(right).versions.write_query(
            con, "raw/t", "SELECT 1 AS n", environment=STAGING
        )
        assert good.version_id  # the right key can write

    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            mp.setenv(var, wrong_env[var])
        from s3fs import S3FileSystem

        S3FileSystem.clear_instance_cache()  # this process opened the store with the right key
        wh = open_warehouse(wrong)
        with pytest.raises(ObjectStoreUnavailable) as refused:
            wh.versions.write_query(con, "raw/t", "SELECT 2 AS n", environment=STAGING)
        message = str(refused.value)
        assert message.startswith(f"could not read the object store s3://{BUCKET}/versions")
        assert "SignatureDoesNotMatch" in message or "Forbidden" in message, message
        assert "\n" not in message and secret[::-1] not in message
        assert wh.versions.list() == []  # nothing recorded
        cached = wrong.warehouse_dir / "versions"
        assert [p for p in cached.glob("*/*") if p.parent.name != "_pending"] == []

        env = {**os.environ, "ELT_HOME": str(wrong.home), "DAGSTER_HOME": str(wrong.dagster_home)}
        env["ELT_VERSIONS_URL"] = wrong.versions_url
        if wrong.metadata_url:
            env["ELT_METADATA_URL"] = wrong.metadata_url
        proc = run_cli(wrong, "gc", "--dry-run", env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: could not list the object store"), proc.stderr
    assert "Traceback" not in proc.stderr and secret[::-1] not in proc.stderr
