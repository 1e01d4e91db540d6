"""The AWS IAM and STS APIs as boto3 and the aws CLI use them against
objd's endpoint: users, keys, groups, managed and inline policies managed
the AWS way; temporary credentials from AssumeRole used with S3 (headers
and presigned URLs), narrowed by session policies and ending on time."""

import json
import subprocess
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from conftest import ACCESS_KEY, SECRET_KEY, Objd, outcome

# Sessions may be as short as 2 s on this server, to see them expire.
MIN_SESSION = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Objd(tmp_path_factory.mktemp("iam") / "drives", extra=["--sts-min-duration", str(MIN_SESSION)])
    yield s
    s.stop()


def client(server, service, key=ACCESS_KEY, secret=SECRET_KEY, token=None, **config):
    config.setdefault("retries", {"max_attempts": 1})
    if service == "s3":
        config.setdefault("s3", {"addressing_style": "path"})
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name="us-east-1",
        config=Config(**config),
    )


def read_only(bucket):
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
             "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
        ],
    })


def test_users_keys_groups_and_policies_through_the_iam_api(server):
    iam = client(server, "iam")
    root_s3 = client(server, "s3")
    root_s3.create_bucket(Bucket="team")
    root_s3.create_bucket(Bucket="other")
    root_s3.put_object(Bucket="team", Key="doc.txt", Body=b"team data")
    root_s3.put_object(Bucket="other", Key="doc.txt", Body=b"other data")

    u = iam.create_user(UserName="carol")["User"]
    assert u["UserName"] == "carol" and u["Arn"].endswith(":user/carol") and u["UserId"].startswith("AIDA")
    assert iam.get_user(UserName="carol")["User"]["UserId"] == u["UserId"]
    assert outcome(lambda: iam.create_user(UserName="carol")) == "EntityAlreadyExists"
    assert outcome(lambda: iam.get_user(UserName="nobody")) == "NoSuchEntity"
    assert "carol" in [x["UserName"] for x in iam.list_users()["Users"]]

    key = iam.create_access_key(UserName="carol")["AccessKey"]
    assert key["Status"] == "Active" and len(key["SecretAccessKey"]) == 40
    listed = iam.list_access_keys(UserName="carol")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    assert "SecretAccessKey" not in listed[0]

    # A new user can do nothing until a policy allows it.
    carol = client(server, "s3", key["AccessKeyId"], key["SecretAccessKey"])
    assert outcome(lambda: carol.get_object(Bucket="team", Key="doc.txt")) == "AccessDenied"

    arn = iam.create_policy(PolicyName="team-read", PolicyDocument=read_only("team"))["Policy"]["Arn"]
    assert outcome(lambda: iam.create_policy(PolicyName="broken", PolicyDocument='{"Statement": "nope"}')) == "MalformedPolicyDocument"
    got = iam.get_policy(PolicyArn=arn)["Policy"]
    assert got["DefaultVersionId"] == "v1" and got["AttachmentCount"] == 0
    # botocore decodes the URL-encoded document into a dict.
    doc = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"]
    assert doc == json.loads(read_only("team"))

    iam.create_group(GroupName="readers")
    iam.add_user_to_group(GroupName="readers", UserName="carol")
    iam.attach_group_policy(GroupName="readers", PolicyArn=arn)
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="carol")["Groups"]] == ["readers"]
    assert [p["PolicyName"] for p in iam.list_attached_group_policies(GroupName="readers")["AttachedPolicies"]] == ["team-read"]
    assert [m["UserName"] for m in iam.get_group(GroupName="readers")["Users"]] == ["carol"]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1

    assert carol.get_object(Bucket="team", Key="doc.txt")["Body"].read() == b"team data"
    for call in (lambda: carol.get_object(Bucket="other", Key="doc.txt"),
                 lambda: carol.put_object(Bucket="team", Key="new", Body=b"x")):
        assert outcome(lambda: call()) == "AccessDenied"

    # An inline policy adds writes under carol/ in team.
    inline = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::team/carol/*"}]})
    iam.put_user_policy(UserName="carol", PolicyName="own-prefix", PolicyDocument=inline)
    assert iam.list_user_policies(UserName="carol")["PolicyNames"] == ["own-prefix"]
    assert iam.get_user_policy(UserName="carol", PolicyName="own-prefix")["PolicyDocument"] == json.loads(inline)
    carol.put_object(Bucket="team", Key="carol/notes", Body=b"mine")
    assert outcome(lambda: carol.put_object(Bucket="team", Key="dave/notes", Body=b"x")) == "AccessDenied"

    # A new default version replaces the document at once.
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=read_only("other"), SetAsDefault=True)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v2"
    assert carol.get_object(Bucket="other", Key="doc.txt")["Body"].read() == b"other data"
    assert outcome(lambda: carol.get_object(Bucket="team", Key="doc.txt")) == "AccessDenied"

    # A user's IAM rights come from its policies too.
    carol_iam = client(server, "iam", key["AccessKeyId"], key["SecretAccessKey"])
    assert outcome(lambda: carol_iam.list_users()) == "AccessDenied"
    iam.put_user_policy(UserName="carol", PolicyName="see-users", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:ListUsers", "iam:GetUser"], "Resource": "*"}]}))
    assert "carol" in [x["UserName"] for x in carol_iam.list_users()["Users"]]
    assert carol_iam.get_user()["User"]["UserName"] == "carol", "no UserName: the caller"
    assert outcome(lambda: carol_iam.create_user(UserName="mallory")) == "AccessDenied"

    # A disabled key stops working at once.
    iam.update_access_key(UserName="carol", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert iam.list_access_keys(UserName="carol")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    assert outcome(lambda: carol.list_objects_v2(Bucket="other")) == "InvalidAccessKeyId"

    # Deleting follows IAM's order: keys, policies and groups first.
    assert outcome(lambda: iam.delete_user(UserName="carol")) == "DeleteConflict"
    assert outcome(lambda: iam.delete_policy(PolicyArn=arn)) == "DeleteConflict"
    assert outcome(lambda: iam.detach_user_policy(UserName="carol", PolicyArn=arn)) == "NoSuchEntity"
    iam.delete_access_key(UserName="carol", AccessKeyId=key["AccessKeyId"])
    iam.delete_user_policy(UserName="carol", PolicyName="own-prefix")
    iam.delete_user_policy(UserName="carol", PolicyName="see-users")
    iam.remove_user_from_group(GroupName="readers", UserName="carol")
    iam.detach_group_policy(GroupName="readers", PolicyArn=arn)
    iam.delete_group(GroupName="readers")
    iam.delete_policy(PolicyArn=arn)
    iam.delete_user(UserName="carol")
    assert "carol" not in [x["UserName"] for x in iam.list_users()["Users"]]


def test_iam_requests_need_a_valid_signature(server):
    assert outcome(lambda: client(server, "iam", secret="not-the-secret").list_users()) == "SignatureDoesNotMatch"
    assert outcome(lambda: client(server, "iam", key="AKIANOSUCHKEY0000000").list_users()) == "InvalidClientTokenId"
    req = urllib.request.Request(
        server.endpoint + "/", data=b"Action=ListUsers&Version=2010-05-08", method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 403
    body = e.value.read().decode()
    assert "<ErrorResponse" in body and "MissingAuthenticationToken" in body


def make_user(iam, name, policy):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def test_assume_role_sessions_narrow_and_expire(server):
    iam = client(server, "iam")
    root_s3 = client(server, "s3")
    root_s3.create_bucket(Bucket="sessions")
    for k in ("a/1", "b/1"):
        root_s3.put_object(Bucket="sessions", Key=k, Body=k.encode())
    ak, sk = make_user(iam, "erin", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::sessions", "arn:aws:s3:::sessions/*"]}]}))

    sts = client(server, "sts", ak, sk)
    assert sts.get_caller_identity()["Arn"].endswith(":user/erin")
    only_a = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::sessions/a/*"}]})
    r = sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/any", RoleSessionName="job-1",
                        DurationSeconds=900, Policy=only_a)
    c = r["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA") and c["SessionToken"]
    left = c["Expiration"].timestamp() - time.time()
    assert 880 < left <= 901
    assert r["AssumedRoleUser"]["Arn"].endswith(":assumed-role/erin/job-1")

    session = client(server, "s3", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    assert session.get_object(Bucket="sessions", Key="a/1")["Body"].read() == b"a/1"
    # The session policy narrows: the user may read b/, the session may not.
    assert outcome(lambda: session.get_object(Bucket="sessions", Key="b/1")) == "AccessDenied"
    assert outcome(lambda: session.put_object(Bucket="sessions", Key="a/2", Body=b"x")) == "AccessDenied"
    who = client(server, "sts", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]).get_caller_identity()
    assert who["Arn"].endswith(":assumed-role/erin/job-1")

    # Presigned URLs carry the token.
    signer = client(server, "s3", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"],
                    signature_version="s3v4")
    url = signer.generate_presigned_url("get_object", Params={"Bucket": "sessions", "Key": "a/1"})
    assert "X-Amz-Security-Token=ST1." in url
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"a/1"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url.replace("X-Amz-Security-Token=ST1.", "X-Amz-Security-Token=ST1.A"))
    assert e.value.code == 403, "the token is signed"

    # Without its token, or with another session's, the key is refused.
    tokenless = client(server, "s3", c["AccessKeyId"], c["SecretAccessKey"])
    assert outcome(lambda: tokenless.get_object(Bucket="sessions", Key="a/1")) == "InvalidToken"
    other = sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/any", RoleSessionName="job-2")["Credentials"]
    foreign = client(server, "s3", c["AccessKeyId"], c["SecretAccessKey"], other["SessionToken"])
    assert outcome(lambda: foreign.get_object(Bucket="sessions", Key="a/1")) == "InvalidToken"
    # Without a session policy the session has the user's rights.
    full = client(server, "s3", other["AccessKeyId"], other["SecretAccessKey"], other["SessionToken"])
    full.put_object(Bucket="sessions", Key="b/2", Body=b"by session")

    # Bad requests answer in STS's terms.
    unchecked = client(server, "sts", ak, sk, parameter_validation=False)
    assert outcome(lambda: unchecked.assume_role(RoleArn="arn:aws:iam::000000000000:role/any", RoleSessionName="x", DurationSeconds=43201)) == "ValidationError"
    assert outcome(lambda: sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/any", RoleSessionName="bad", Policy='{"Statement": 1}')) == "MalformedPolicyDocument"
    assert outcome(lambda: client(server, "sts").assume_role(RoleArn="arn:aws:iam::000000000000:role/any", RoleSessionName="root")) == "AccessDenied"

    # Disabling the user ends its sessions at once.
    iam.update_access_key(UserName="erin", AccessKeyId=ak, Status="Inactive")
    assert outcome(lambda: full.get_object(Bucket="sessions", Key="b/2")) == "InvalidAccessKeyId"
    iam.update_access_key(UserName="erin", AccessKeyId=ak, Status="Active")
    assert full.get_object(Bucket="sessions", Key="b/2")["Body"].read() == b"by session"

    # A session ends on time, to the second.
    short = unchecked.assume_role(RoleArn="arn:aws:iam::000000000000:role/any", RoleSessionName="short",
                                  DurationSeconds=MIN_SESSION)["Credentials"]
    s = client(server, "s3", short["AccessKeyId"], short["SecretAccessKey"], short["SessionToken"])
    assert s.get_object(Bucket="sessions", Key="a/1")["Body"].read() == b"a/1"
    time.sleep(max(0.0, short["Expiration"].timestamp() - time.time()) + 0.2)
    assert outcome(lambda: s.get_object(Bucket="sessions", Key="a/1")) == "ExpiredToken"
    assert outcome(lambda: client(server, "sts", short["AccessKeyId"], short["SecretAccessKey"], short["SessionToken"]).get_caller_identity()) == "ExpiredToken"


def test_aws_cli_manages_users(server):
    env = server.client_env()

    def aws(*args):
        out = subprocess.run(["aws", "--endpoint-url", server.endpoint, "--output", "json", *args],
                             env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else None

    assert aws("iam", "create-user", "--user-name", "frank")["User"]["UserName"] == "frank"
    key = aws("iam", "create-access-key", "--user-name", "frank")["AccessKey"]
    assert "frank" in [u["UserName"] for u in aws("iam", "list-users")["Users"]]
    ident = aws("sts", "get-caller-identity")
    assert ident["Arn"].endswith(":root") and len(ident["Account"]) == 12
    env = dict(env, AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
    assert aws("sts", "get-caller-identity")["Arn"].endswith(":user/frank")


def test_existing_object_tags_decide_reads(server):
    iam = client(server, "iam")
    root_s3 = client(server, "s3")
    root_s3.create_bucket(Bucket="tagged")
    root_s3.put_object(Bucket="tagged", Key="open.txt", Body=b"open", Tagging="classification=public")
    root_s3.put_object(Bucket="tagged", Key="closed.txt", Body=b"closed", Tagging="classification=secret")
    root_s3.put_object(Bucket="tagged", Key="untagged.txt", Body=b"none")
    ak, sk = make_user(iam, "gina", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObjectTagging"], "Resource": "arn:aws:s3:::tagged/*",
         "Condition": {"StringEquals": {"s3:ExistingObjectTag/classification": "public"}}}]}))
    gina = client(server, "s3", ak, sk)
    assert gina.get_object(Bucket="tagged", Key="open.txt")["Body"].read() == b"open"
    for key in ("closed.txt", "untagged.txt", "missing.txt"):
        assert outcome(lambda: gina.get_object(Bucket="tagged", Key=key)) == "AccessDenied", key
    # Retagging is decided by the tags the object has now.
    gina.put_object_tagging(Bucket="tagged", Key="open.txt",
                            Tagging={"TagSet": [{"Key": "classification", "Value": "secret"}]})
    assert outcome(lambda: gina.get_object(Bucket="tagged", Key="open.txt")) == "AccessDenied"
