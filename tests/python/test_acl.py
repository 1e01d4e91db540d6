"""Access control lists, object ownership controls and public access
blocks, with boto3 and plain unsigned HTTP: what applications that send
canned ACLs rely on (a public-read object is readable by anyone, a
public-read-write bucket takes anonymous uploads), what security tooling
sets (ownership enforced, public access blocked) and the owner that
listings and ACLs name."""

import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ACCESS_KEY, SECRET_KEY, Objd, outcome

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def client(server, service="s3", key=ACCESS_KEY, secret=SECRET_KEY):
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    if key is None:
        config = Config(signature_version=UNSIGNED, s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=config)


def anonymous(server, method, path, body=None):
    req = urllib.request.Request(f"{server.endpoint}/{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def grants(acl):
    """An ACL answer as (grantee, permission) pairs: `owner` or a group URI."""
    out = []
    for g in acl["Grants"]:
        who = g["Grantee"].get("URI") or ("owner" if g["Grantee"]["ID"] == acl["Owner"]["ID"] else g["Grantee"]["ID"])
        out.append((who, g["Permission"]))
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Objd(tmp_path_factory.mktemp("acl") / "drives")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def s3(server):
    return client(server)


def test_canned_acls_are_kept_read_back_and_grant_what_they_say(server, s3):
    s3.create_bucket(Bucket="cms", ACL="public-read")
    assert grants(s3.get_bucket_acl(Bucket="cms")) == [("owner", "FULL_CONTROL"), (ALL_USERS, "READ")]
    s3.put_object(Bucket="cms", Key="page.html", Body=b"<p>hi</p>", ACL="public-read", ContentType="text/html")
    s3.put_object(Bucket="cms", Key="draft.html", Body=b"draft")
    assert grants(s3.get_object_acl(Bucket="cms", Key="page.html")) == [("owner", "FULL_CONTROL"), (ALL_USERS, "READ")]
    assert grants(s3.get_object_acl(Bucket="cms", Key="draft.html")) == [("owner", "FULL_CONTROL")]

    # Anyone reads the public object and lists the public bucket; the
    # private object stays private, and nobody anonymous writes.
    assert anonymous(server, "GET", "cms/page.html") == (200, b"<p>hi</p>")
    status, body = anonymous(server, "GET", "cms/draft.html")
    assert status == 403 and b"AccessDenied" in body
    anon = client(server, key=None)
    assert [o["Key"] for o in anon.list_objects_v2(Bucket="cms")["Contents"]] == ["draft.html", "page.html"]
    assert anonymous(server, "PUT", "cms/new.html", b"x")[0] == 403
    assert anonymous(server, "GET", "cms?acl")[0] == 403, "READ does not include READ_ACP"

    # Copies and multipart uploads take the ACL of their request, not
    # the source's.
    s3.copy_object(Bucket="cms", Key="copy.html", CopySource="cms/page.html")
    assert anonymous(server, "GET", "cms/copy.html")[0] == 403
    s3.copy_object(Bucket="cms", Key="copy2.html", CopySource="cms/draft.html", ACL="public-read")
    assert anonymous(server, "GET", "cms/copy2.html") == (200, b"draft")
    up = s3.create_multipart_upload(Bucket="cms", Key="big.bin", ACL="authenticated-read")
    part = s3.upload_part(Bucket="cms", Key="big.bin", UploadId=up["UploadId"], PartNumber=1, Body=b"m" * 100)
    s3.complete_multipart_upload(Bucket="cms", Key="big.bin", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert grants(s3.get_object_acl(Bucket="cms", Key="big.bin")) == [("owner", "FULL_CONTROL"), (AUTHENTICATED, "READ")]
    # authenticated-read: any signed request, an IAM user without a
    # single policy included; never an anonymous one.
    assert anonymous(server, "GET", "cms/big.bin")[0] == 403
    user = json.loads(server.admin("user", "add", "reader"))
    as_user = client(server, key=user["access_key"], secret=user["secret_key"])
    assert as_user.get_object(Bucket="cms", Key="big.bin")["Body"].read() == b"m" * 100
    assert outcome(lambda: as_user.get_object(Bucket="cms", Key="draft.html")) == "AccessDenied"

    # Changing the ACL changes the access at once, and a later overwrite
    # without an ACL is private again.
    s3.put_object_acl(Bucket="cms", Key="page.html", ACL="private")
    assert anonymous(server, "GET", "cms/page.html")[0] == 403
    s3.put_object_acl(Bucket="cms", Key="draft.html", ACL="public-read")
    assert anonymous(server, "GET", "cms/draft.html") == (200, b"draft")
    s3.put_object(Bucket="cms", Key="draft.html", Body=b"draft 2")
    assert anonymous(server, "GET", "cms/draft.html")[0] == 403


def test_a_public_read_write_bucket_takes_anonymous_uploads_and_deletes(server, s3):
    s3.create_bucket(Bucket="dropbox")
    s3.put_bucket_acl(Bucket="dropbox", ACL="public-read-write")
    assert anonymous(server, "PUT", "dropbox/in.txt", b"from anyone")[0] == 200
    assert s3.get_object(Bucket="dropbox", Key="in.txt")["Body"].read() == b"from anyone"
    # Bucket WRITE does not make the objects readable: they are private.
    assert anonymous(server, "GET", "dropbox/in.txt")[0] == 403
    assert anonymous(server, "DELETE", "dropbox/in.txt")[0] == 204
    assert "Contents" not in s3.list_objects_v2(Bucket="dropbox")
    # An explicit deny in the bucket policy wins over the ACL.
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::dropbox/locked/*"}]}
    s3.put_bucket_policy(Bucket="dropbox", Policy=json.dumps(policy))
    assert anonymous(server, "PUT", "dropbox/locked/x", b"x")[0] == 403
    assert anonymous(server, "PUT", "dropbox/open/x", b"x")[0] == 200


def test_explicit_grants_by_header_and_body_and_the_refusals(server, s3):
    s3.create_bucket(Bucket="grants")
    s3.put_object(Bucket="grants", Key="k", Body=b"v")
    owner = s3.get_bucket_acl(Bucket="grants")["Owner"]
    assert len(owner["ID"]) == 64
    s3.put_object_acl(Bucket="grants", Key="k", GrantRead=f'uri="{ALL_USERS}"',
                      GrantFullControl=f'id="{owner["ID"]}"')
    assert grants(s3.get_object_acl(Bucket="grants", Key="k")) == [("owner", "FULL_CONTROL"), (ALL_USERS, "READ")]
    assert anonymous(server, "GET", "grants/k") == (200, b"v")
    # The body form, as the AWS CLI and SDKs send a whole policy.
    body = {"Owner": owner, "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": AUTHENTICATED}, "Permission": "READ"},
        {"Grantee": {"Type": "Group", "URI": AUTHENTICATED}, "Permission": "READ_ACP"}]}
    s3.put_bucket_acl(Bucket="grants", AccessControlPolicy=body)
    assert grants(s3.get_bucket_acl(Bucket="grants")) == [
        ("owner", "FULL_CONTROL"), (AUTHENTICATED, "READ"), (AUTHENTICATED, "READ_ACP")]
    # What S3 refuses, it refuses here with its codes, and nothing changes.
    refusals = {
        "UnresolvableGrantByEmailAddress": dict(GrantRead='emailAddress="someone@example.com"'),
        "InvalidArgument": dict(GrantRead='id="' + "0" * 64 + '"'),
        "InvalidRequest": dict(ACL="public-read", GrantRead=f'uri="{ALL_USERS}"'),
    }
    for code, args in refusals.items():
        assert outcome(lambda: s3.put_object_acl(Bucket="grants", Key="k", **args)) == code, code
    assert outcome(lambda: s3.put_object(Bucket="grants", Key="k2", Body=b"x",
                                         GrantRead='uri="http://example.com/nobody"')) == "InvalidArgument"
    assert outcome(lambda: s3.head_object(Bucket="grants", Key="k2")) == "404"
    assert grants(s3.get_object_acl(Bucket="grants", Key="k")) == [("owner", "FULL_CONTROL"), (ALL_USERS, "READ")]
    assert outcome(lambda: s3.put_bucket_acl(Bucket="grants", ACL="bucket-owner-read")) == "InvalidArgument"


def test_ownership_controls_enforced_disable_acls(server, s3):
    # New buckets are BucketOwnerPreferred unless asked otherwise.
    s3.create_bucket(Bucket="owned")
    rules = s3.get_bucket_ownership_controls(Bucket="owned")["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    s3.put_object(Bucket="owned", Key="was-public", Body=b"p", ACL="public-read")
    assert anonymous(server, "GET", "owned/was-public")[0] == 200
    s3.put_bucket_acl(Bucket="owned", ACL="public-read")
    # Enforcing ownership needs a bucket ACL that grants only the owner.
    assert outcome(lambda: s3.put_bucket_ownership_controls(
        Bucket="owned", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})) \
        == "InvalidBucketAclWithObjectOwnership"
    s3.put_bucket_acl(Bucket="owned", ACL="private")
    s3.put_bucket_ownership_controls(Bucket="owned",
                                     OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    # ACLs no longer grant, cannot be set beyond the owner's full
    # control, and read back as the owner's full control.
    assert anonymous(server, "GET", "owned/was-public")[0] == 403
    assert grants(s3.get_object_acl(Bucket="owned", Key="was-public")) == [("owner", "FULL_CONTROL")]
    assert outcome(lambda: s3.put_object(Bucket="owned", Key="n", Body=b"x", ACL="public-read")) \
        == "AccessControlListNotSupported"
    assert outcome(lambda: s3.put_bucket_acl(Bucket="owned", ACL="public-read")) == "AccessControlListNotSupported"
    s3.put_object(Bucket="owned", Key="n", Body=b"x", ACL="bucket-owner-full-control")
    # Deleting the controls brings the stored ACLs back.
    s3.delete_bucket_ownership_controls(Bucket="owned")
    assert outcome(lambda: s3.get_bucket_ownership_controls(Bucket="owned")) == "OwnershipControlsNotFoundError"
    assert anonymous(server, "GET", "owned/was-public")[0] == 200
    # At creation: both asked together are refused; enforced alone works.
    assert outcome(lambda: s3.create_bucket(Bucket="owned2", ACL="public-read",
                                            ObjectOwnership="BucketOwnerEnforced")) \
        == "InvalidBucketAclWithObjectOwnership"
    assert outcome(lambda: s3.head_bucket(Bucket="owned2")) == "404"
    s3.create_bucket(Bucket="owned2", ObjectOwnership="BucketOwnerEnforced")
    assert outcome(lambda: s3.put_object(Bucket="owned2", Key="k", Body=b"x", ACL="public-read")) \
        == "AccessControlListNotSupported"


def test_public_access_blocks_refuse_and_ignore_public_grants(server, s3):
    s3.create_bucket(Bucket="blocked")
    s3.put_object(Bucket="blocked", Key="pub", Body=b"p", ACL="public-read")
    assert outcome(lambda: s3.get_public_access_block(Bucket="blocked")) == "NoSuchPublicAccessBlockConfiguration"
    assert outcome(lambda: s3.get_bucket_policy_status(Bucket="blocked")) == "NoSuchBucketPolicy"
    s3.put_bucket_acl(Bucket="blocked", ACL="public-read")
    assert s3.get_bucket_policy_status(Bucket="blocked")["PolicyStatus"]["IsPublic"] is True
    s3.put_bucket_acl(Bucket="blocked", ACL="private")

    def block(**settings):
        config = {k: settings.get(k, False) for k in
                  ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
        s3.put_public_access_block(Bucket="blocked", PublicAccessBlockConfiguration=config)
        assert s3.get_public_access_block(Bucket="blocked")["PublicAccessBlockConfiguration"] == config

    block(BlockPublicAcls=True)
    assert outcome(lambda: s3.put_object(Bucket="blocked", Key="n", Body=b"x", ACL="public-read")) == "AccessDenied"
    assert outcome(lambda: s3.put_object_acl(Bucket="blocked", Key="pub", ACL="public-read-write")) == "AccessDenied"
    assert outcome(lambda: s3.put_bucket_acl(Bucket="blocked", ACL="authenticated-read")) == "AccessDenied"
    s3.put_object(Bucket="blocked", Key="n", Body=b"x", ACL="private")
    assert anonymous(server, "GET", "blocked/pub")[0] == 200, "existing ACLs still grant"

    block(IgnorePublicAcls=True)
    assert anonymous(server, "GET", "blocked/pub")[0] == 403

    public_policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::blocked/n"}]})
    block(BlockPublicPolicy=True)
    assert outcome(lambda: s3.put_bucket_policy(Bucket="blocked", Policy=public_policy)) == "AccessDenied"
    block()
    s3.put_bucket_policy(Bucket="blocked", Policy=public_policy)
    assert anonymous(server, "GET", "blocked/n") == (200, b"x")
    block(RestrictPublicBuckets=True)
    assert anonymous(server, "GET", "blocked/n")[0] == 403
    s3.delete_public_access_block(Bucket="blocked")
    assert anonymous(server, "GET", "blocked/n") == (200, b"x")
    assert anonymous(server, "GET", "blocked/pub")[0] == 200


def test_listings_name_the_owner_and_the_expected_owner_is_checked(server, s3):
    s3.create_bucket(Bucket="listed")
    s3.put_bucket_versioning(Bucket="listed", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="listed", Key="a", Body=b"1")
    s3.delete_object(Bucket="listed", Key="a")
    up = s3.create_multipart_upload(Bucket="listed", Key="m")
    owner = s3.get_bucket_acl(Bucket="listed")["Owner"]
    assert owner == s3.list_buckets()["Owner"]
    s3.put_object(Bucket="listed", Key="b", Body=b"2")
    assert [o["Owner"] for o in s3.list_objects(Bucket="listed")["Contents"]] == [owner]
    assert "Owner" not in s3.list_objects_v2(Bucket="listed")["Contents"][0]
    assert s3.list_objects_v2(Bucket="listed", FetchOwner=True)["Contents"][0]["Owner"] == owner
    versions = s3.list_object_versions(Bucket="listed")
    assert {v["Owner"]["ID"] for v in versions["Versions"] + versions["DeleteMarkers"]} == {owner["ID"]}
    upload = s3.list_multipart_uploads(Bucket="listed")["Uploads"][0]
    assert upload["Owner"] == owner and upload["Initiator"]["ID"] == owner["ID"]
    parts = s3.list_parts(Bucket="listed", Key="m", UploadId=up["UploadId"])
    assert parts["Owner"] == owner and parts["Initiator"]["ID"] == owner["ID"]

    account = client(server, "sts").get_caller_identity()["Account"]
    assert s3.get_object(Bucket="listed", Key="b", ExpectedBucketOwner=account)["Body"].read() == b"2"
    other = "111111111111" if account != "111111111111" else "222222222222"
    assert outcome(lambda: s3.get_object(Bucket="listed", Key="b", ExpectedBucketOwner=other)) == "AccessDenied"
    assert outcome(lambda: s3.list_objects_v2(Bucket="listed", ExpectedBucketOwner=other)) == "AccessDenied"
    assert outcome(lambda: s3.copy_object(Bucket="listed", Key="c", CopySource="listed/b",
                                          ExpectedSourceBucketOwner=other)) == "AccessDenied"
    s3.copy_object(Bucket="listed", Key="c", CopySource="listed/b", ExpectedSourceBucketOwner=account,
                   ExpectedBucketOwner=account)
