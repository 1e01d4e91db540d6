"""Lifecycle rules with boto3 against a real objd whose lifecycle day lasts
two seconds (`--lifecycle-day-seconds 2`, the test clock): the
configuration kept and refused as S3 keeps and refuses it, the
x-amz-expiration header, and each expiration action applied by the
background scanner (prefix, tag and size filters, versioned buckets,
delete markers, unfinished uploads, Object Lock)."""

import datetime
import json
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config
from conftest import ACCESS_KEY, SECRET_KEY, Objd, eventually, outcome

DAY = 2  # seconds in a lifecycle day of the test server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Objd(tmp_path_factory.mktemp("lifecycle") / "drives", extra=["--lifecycle-day-seconds", str(DAY)])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def s3(server):
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_configurations_round_trip_and_bad_ones_are_refused(s3):
    s3.create_bucket(Bucket="lc-config")
    assert outcome(lambda: s3.get_bucket_lifecycle_configuration(Bucket="lc-config")) \
        == "NoSuchLifecycleConfiguration"
    rules = [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}},
        {"ID": "temp", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "temp", "Value": "yes"}],
                            "ObjectSizeGreaterThan": 10}},
         "Expiration": {"Date": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)}},
        {"ID": "versions", "Status": "Disabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2}},
        {"ID": "tidy", "Status": "Enabled", "Filter": {"Prefix": ""},
         "Expiration": {"ExpiredObjectDeleteMarker": True},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket="lc-config", LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket="lc-config")["Rules"]
    assert got == rules

    def refused(rule):
        return outcome(lambda: s3.put_bucket_lifecycle_configuration(
            Bucket="lc-config", LifecycleConfiguration={"Rules": [dict({"ID": "r", "Status": "Enabled",
                                                                         "Filter": {"Prefix": ""}}, **rule)]}))

    assert refused({"Expiration": {"Days": 0}}) == "InvalidArgument"
    assert refused({"Expiration": {"Days": 1, "Date": datetime.datetime(2030, 1, 1)}}) == "MalformedXML"
    assert refused({"Expiration": {"Days": 1, "ExpiredObjectDeleteMarker": True}}) == "MalformedXML"
    assert refused({"Expiration": {"Date": datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)}}) \
        == "InvalidArgument"
    assert refused({"Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}) == "InvalidStorageClass"
    assert refused({"NoncurrentVersionExpiration": {"NewerNoncurrentVersions": 2}}) == "MalformedXML"
    assert refused({}) == "InvalidArgument"
    twice = [{"ID": "same", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}] * 2
    assert outcome(lambda: s3.put_bucket_lifecycle_configuration(
        Bucket="lc-config", LifecycleConfiguration={"Rules": twice})) == "InvalidArgument"
    # Refusals change nothing.
    assert s3.get_bucket_lifecycle_configuration(Bucket="lc-config")["Rules"] == rules
    s3.delete_bucket_lifecycle(Bucket="lc-config")
    assert outcome(lambda: s3.get_bucket_lifecycle_configuration(Bucket="lc-config")) \
        == "NoSuchLifecycleConfiguration"


def test_objects_expire_by_prefix_tag_and_size_and_say_when(server, s3):
    s3.create_bucket(Bucket="lc-expire")
    s3.put_bucket_lifecycle_configuration(Bucket="lc-expire", LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}},
        {"ID": "tagged", "Status": "Enabled", "Filter": {"Tag": {"Key": "temp", "Value": "yes"}},
         "Expiration": {"Days": 1}},
        {"ID": "big", "Status": "Enabled", "Filter": {"ObjectSizeGreaterThan": 100}, "Expiration": {"Days": 1}},
    ]})
    put = s3.put_object(Bucket="lc-expire", Key="tmp/a", Body=b"a")
    assert 'rule-id="tmp"' in put["Expiration"] and "expiry-date=" in put["Expiration"]
    s3.put_object(Bucket="lc-expire", Key="keep/tagged", Body=b"t", Tagging="temp=yes")
    s3.put_object(Bucket="lc-expire", Key="keep/big", Body=b"x" * 101)
    s3.put_object(Bucket="lc-expire", Key="keep/plain", Body=b"p")
    s3.put_object(Bucket="lc-expire", Key="keep/other-tag", Body=b"o", Tagging="temp=no")
    head = s3.head_object(Bucket="lc-expire", Key="keep/tagged")
    assert 'rule-id="tagged"' in head["Expiration"]
    assert "Expiration" not in s3.head_object(Bucket="lc-expire", Key="keep/plain")
    assert 'rule-id="big"' in s3.get_object(Bucket="lc-expire", Key="keep/big")["Expiration"]
    assert eventually(lambda: keys(s3, "lc-expire") == ["keep/other-tag", "keep/plain"]), keys(s3, "lc-expire")
    # Nothing else goes on later passes.
    time.sleep(2 * DAY)
    assert keys(s3, "lc-expire") == ["keep/other-tag", "keep/plain"]
    # The passes are counted in the metrics.
    token = json.loads(server.admin("metrics", "token"))["token"]
    req = urllib.request.Request(f"{server.endpoint}/_strata/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as r:
        text = r.read().decode()
    counts = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith("strata_lifecycle_")}
    assert counts["strata_lifecycle_passes_total"] >= 2, counts
    assert counts["strata_lifecycle_versions_expired_total"] >= 3, counts


def test_versioned_buckets_hide_expire_noncurrent_and_tidy_markers(s3):
    b = "lc-versions"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2", b"3", b"4"):
        s3.put_object(Bucket=b, Key="doc", Body=body)
    s3.put_object(Bucket=b, Key="gone", Body=b"g")
    s3.delete_object(Bucket=b, Key="gone", VersionId=s3.list_object_versions(Bucket=b, Prefix="gone")
                     ["Versions"][0]["VersionId"])
    s3.delete_object(Bucket=b, Key="marker-only")  # a delete marker with nothing behind it
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "current", "Status": "Enabled", "Filter": {"Prefix": "doc"}, "Expiration": {"Days": 3}},
        {"ID": "old", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
        {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "marker"},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]})

    def versions(key):
        v = s3.list_object_versions(Bucket=b, Prefix=key)
        return ([x["Size"] for x in v.get("Versions", [])], len(v.get("DeleteMarkers", [])))

    # Noncurrent: "3" is kept (the newest noncurrent), "1" and "2" go.
    assert eventually(lambda: versions("doc") == ([1, 1], 0)), versions("doc")
    assert [s3.get_object(Bucket=b, Key="doc")["Body"].read()] == [b"4"]
    # The lone delete marker goes.
    assert eventually(lambda: versions("marker-only") == ([], 0)), versions("marker-only")
    # The current version expires behind a delete marker; the data stays
    # as a noncurrent version until its own rule takes it.
    assert eventually(lambda: outcome(lambda: s3.head_object(Bucket=b, Key="doc")) == "404", 20)
    sizes, markers = versions("doc")
    assert markers == 1 and len(sizes) >= 1


def test_unfinished_uploads_are_aborted_and_locked_versions_kept(s3):
    s3.create_bucket(Bucket="lc-uploads")
    up = s3.create_multipart_upload(Bucket="lc-uploads", Key="big.bin")["UploadId"]
    s3.upload_part(Bucket="lc-uploads", Key="big.bin", UploadId=up, PartNumber=1, Body=b"p")
    s3.put_bucket_lifecycle_configuration(Bucket="lc-uploads", LifecycleConfiguration={"Rules": [
        {"ID": "abort", "Status": "Enabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
    assert eventually(lambda: "Uploads" not in s3.list_multipart_uploads(Bucket="lc-uploads"))
    assert outcome(lambda: s3.list_parts(Bucket="lc-uploads", Key="big.bin", UploadId=up)) == "NoSuchUpload"

    s3.create_bucket(Bucket="lc-locked", ObjectLockEnabledForBucket=True)
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    first = s3.put_object(Bucket="lc-locked", Key="k", Body=b"locked", ObjectLockMode="GOVERNANCE",
                          ObjectLockRetainUntilDate=until)["VersionId"]
    s3.put_object(Bucket="lc-locked", Key="k", Body=b"newer")
    s3.put_bucket_lifecycle_configuration(Bucket="lc-locked", LifecycleConfiguration={"Rules": [
        {"ID": "old", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
    time.sleep(3 * DAY)
    ids = [v["VersionId"] for v in s3.list_object_versions(Bucket="lc-locked")["Versions"]]
    assert first in ids, "Object Lock keeps a version lifecycle would remove"
