"""AssumeRoleWithLDAPIdentity against a real OpenLDAP server (Debian's
slapd, started here with its own configuration, data and ports):
search-then-bind with a lookup account, group DNs mapped to policies,
StartTLS and ldaps:// verified against objd's --ca-file. Wrong passwords,
unknown users, filter metacharacters and users without groups get no
credentials; the lookup password is never shown or stored in plain."""

import pathlib
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ACCESS_KEY, SECRET_KEY, Ca, Objd, free_port

BASE = "dc=strata,dc=test"
LOOKUP_PASSWORD = "lookup-Secret-9"
STS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


DATA = f"""dn: {BASE}
objectClass: dcObject
objectClass: organization
o: Strata test
dc: strata

dn: ou=people,{BASE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{BASE}
objectClass: organizationalUnit
ou: groups

dn: cn=lookup,{BASE}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: lookup
userPassword: {LOOKUP_PASSWORD}
""" + "".join(f"""
dn: uid={u},ou=people,{BASE}
objectClass: inetOrgPerson
uid: {u}
cn: {u}
sn: {u}
userPassword: {u}-password
""" for u in ("alice", "bob", "carol")) + f"""
dn: cn=readers,ou=groups,{BASE}
objectClass: groupOfNames
cn: readers
member: uid=alice,ou=people,{BASE}
member: uid=bob,ou=people,{BASE}

dn: cn=writers,ou=groups,{BASE}
objectClass: groupOfNames
cn: writers
member: uid=bob,ou=people,{BASE}
"""


class Slapd:
    """slapd on 127.0.0.1 (ldap:// with StartTLS, and ldaps://)."""

    def __init__(self, dir: pathlib.Path, ca: Ca):
        self.dir = dir
        (dir / "db").mkdir(parents=True)
        ca.issue(dir / "tls", "IP:127.0.0.1")
        self.port, self.tls_port = free_port(), free_port()
        conf = dir / "slapd.conf"
        conf.write_text("\n".join([
            *(f"include /etc/ldap/schema/{s}.schema" for s in ("core", "cosine", "inetorgperson", "nis")),
            f"pidfile {dir}/slapd.pid",
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            f"TLSCACertificateFile {ca.pem}",
            f"TLSCertificateFile {dir}/tls/public.crt",
            f"TLSCertificateKeyFile {dir}/tls/private.key",
            # Every operation needs TLS: a plain connection gets nothing.
            "security tls=1",
            "database mdb",
            f'suffix "{BASE}"',
            f'rootdn "cn=admin,{BASE}"',
            f"directory {dir}/db",
            "access to attrs=userPassword by anonymous auth by self read by * none",
            "access to * by users read by * none",
            "",
        ]))
        (dir / "data.ldif").write_text(DATA)
        subprocess.run(["slapadd", "-f", conf, "-l", dir / "data.ldif"], check=True, capture_output=True)
        self.proc = subprocess.Popen(
            ["slapd", "-f", conf, "-h", f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/",
             "-d", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("slapd did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ldap")
    ca = Ca(root / "ca")
    slapd = Slapd(root / "slapd", ca)
    server = Objd(root / "drives", extra=["--ca-file", str(ca.pem)])
    try:
        yield server, slapd, root
    finally:
        server.stop()
        slapd.stop()


def ldap_sts(server, username, password):
    """AssumeRoleWithLDAPIdentity as a form POST (AWS SDKs have no such
    call); (HTTP status, parsed XML)."""
    form = urllib.parse.urlencode({"Action": "AssumeRoleWithLDAPIdentity", "Version": "2011-06-15",
                                   "LDAPUsername": username, "LDAPPassword": password}).encode()
    req = urllib.request.Request(server.endpoint + "/", data=form,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, ET.fromstring(r.read())
    except urllib.error.HTTPError as e:
        return e.code, ET.fromstring(e.read())


def creds_of(doc):
    c = doc.find(f".//{STS}Credentials")
    return {k: c.find(STS + k).text for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}


def error_code(doc):
    return doc.find(f".//{STS}Code").text


def s3_as(server, c):
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                        aws_session_token=c["SessionToken"],
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def configure(server, slapd, root, url, *extra):
    pw = root / "lookup-password"
    pw.write_text(LOOKUP_PASSWORD + "\n")
    server.admin("idp", "add-ldap", "directory", "--url", url, *extra,
          "--lookup-dn", f"cn=lookup,{BASE}", "--lookup-password-file", str(pw),
          "--user-base", f"ou=people,{BASE}", "--user-filter", "(&(objectClass=inetOrgPerson)(uid=%s))",
          "--group-base", f"ou=groups,{BASE}", "--group-filter", "(&(objectClass=groupOfNames)(member=%d))",
          "--group", f"readers:cn=readers,ou=groups,{BASE}", "--group", f"writers:CN=Writers, OU=groups,{BASE}")


def test_ldap_users_get_their_groups_policies(setup, tmp_path):
    server, slapd, root = setup
    s3 = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="ldap-data")
    s3.put_object(Bucket="ldap-data", Key="handbook.txt", Body=b"welcome")
    for name, actions in (("readers", '"s3:GetObject", "s3:ListBucket"'), ("writers", '"s3:PutObject"')):
        f = tmp_path / f"{name}.json"
        f.write_text('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [%s], '
                     '"Resource": ["arn:aws:s3:::ldap-data", "arn:aws:s3:::ldap-data/*"]}]}' % actions)
        server.admin("policy", "add", name, str(f))
    configure(server, slapd, root, f"ldap://127.0.0.1:{slapd.port}", "--start-tls")

    # The lookup password is not shown, nor stored in plain on the drives.
    listing = server.admin("iam")
    assert LOOKUP_PASSWORD not in listing and '"directory"' in listing
    for f in (root / "drives").rglob("*"):
        if f.is_file():
            assert LOOKUP_PASSWORD.encode() not in f.read_bytes(), f

    status, doc = ldap_sts(server, "alice", "alice-password")
    assert status == 200, ET.tostring(doc)
    alice = s3_as(server, creds_of(doc))
    assert alice.get_object(Bucket="ldap-data", Key="handbook.txt")["Body"].read() == b"welcome"
    with pytest.raises(ClientError) as e:
        alice.put_object(Bucket="ldap-data", Key="by-alice", Body=b"x")
    assert e.value.response["Error"]["Code"] == "AccessDenied"

    status, doc = ldap_sts(server, "bob", "bob-password")
    assert status == 200
    bob = s3_as(server, creds_of(doc))
    bob.put_object(Bucket="ldap-data", Key="by-bob", Body=b"b")

    for user, password in (("alice", "wrong"), ("nobody", "x"), ("*", "alice-password"),
                           ("alice)(uid=*", "alice-password"), ("alice", ""), ("carol", "carol-password")):
        status, doc = ldap_sts(server, user, password)
        assert status in (400, 403) and error_code(doc) in ("AccessDenied", "ValidationError"), (user, ET.tostring(doc))

    # Without StartTLS the directory refuses the plain connection.
    configure(server, slapd, root, f"ldap://127.0.0.1:{slapd.port}")
    status, doc = ldap_sts(server, "alice", "alice-password")
    assert (status, error_code(doc)) == (400, "IDPCommunicationError")

    # ldaps:// works the same; a name the certificate does not carry fails
    # verification, and says so as an STS error.
    configure(server, slapd, root, f"ldaps://127.0.0.1:{slapd.tls_port}")
    assert ldap_sts(server, "alice", "alice-password")[0] == 200
    configure(server, slapd, root, f"ldaps://localhost:{slapd.tls_port}")
    status, doc = ldap_sts(server, "alice", "alice-password")
    assert (status, error_code(doc)) == (400, "IDPCommunicationError")


AD_BASE = "DC=strata,DC=test"
AD_USERS = f"CN=Users,{AD_BASE}"


def ip(*args, netns=None):
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True)


class SambaDc:
    """A Samba Active Directory domain controller, provisioned here, in a
    network namespace of its own (it binds LDAP's fixed ports), reached at
    10.213.K.2 through a veth pair."""

    def __init__(self, dir: pathlib.Path, ca: Ca):
        for k in range(1, 250):
            self.ns = f"strata-ad-{k}"
            # Creating the namespace claims the number.
            if subprocess.run(["ip", "netns", "add", self.ns], capture_output=True).returncode == 0:
                break
        else:
            raise RuntimeError("no free network namespace number")
        self.addr, host, veth = f"10.213.{k}.2", f"10.213.{k}.1", f"sad{k}"
        ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}in")
        ip("link", "set", f"{veth}in", "netns", self.ns)
        ip("addr", "add", f"{host}/30", "dev", veth)
        ip("link", "set", veth, "up")
        ip("addr", "add", f"{self.addr}/30", "dev", f"{veth}in", netns=self.ns)
        ip("link", "set", f"{veth}in", "up", netns=self.ns)
        ip("link", "set", "lo", "up", netns=self.ns)
        self.proc = None
        try:
            self._start(dir, ca)
        except Exception:
            self.stop()
            raise

    def _start(self, dir, ca):
        conf = dir / "etc" / "smb.conf"
        subprocess.run(
            ["samba-tool", "domain", "provision", "--realm=STRATA.TEST", "--domain=STRATA", "--server-role=dc",
             "--dns-backend=NONE", "--adminpass=Adm1n-Passw0rd!", f"--targetdir={dir}", "--host-name=dc1",
             f"--option=interfaces={self.addr}", "--option=bind interfaces only=yes",
             f"--option=log file={dir}/log.%m"],
            check=True, capture_output=True, timeout=300)
        tool = lambda *a: subprocess.run(["samba-tool", *a, "-s", conf], check=True, capture_output=True)
        for user in ("alice", "bob", "strata-lookup"):
            tool("user", "create", user, f"{user.capitalize()}-Passw0rd!")
        tool("group", "add", "engineers")
        tool("group", "addmembers", "engineers", "alice")
        ca.issue(dir / "tls", f"IP:{self.addr}")
        (dir / "tls" / "private.key").chmod(0o600)
        text = conf.read_text().replace("[global]\n", "[global]\n\ttls enabled = yes\n"
                                        f"\ttls keyfile = {dir}/tls/private.key\n"
                                        f"\ttls certfile = {dir}/tls/public.crt\n\ttls cafile = {ca.pem}\n", 1)
        conf.write_text(text)
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "samba", "-i", "-s", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection((self.addr, 636), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("samba did not start")

    def stop(self):
        # Samba's processes leave the starting process's group: end
        # everything in the namespace, then the namespace (and the veth).
        pids = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            subprocess.run(["kill", "-9", pid], capture_output=True)
        if self.proc:
            self.proc.wait()
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


def test_active_directory_users_sign_in(tmp_path):
    ca = Ca(tmp_path / "ca")
    dc = SambaDc(tmp_path / "dc", ca)
    server = Objd(tmp_path / "drives", extra=["--ca-file", str(ca.pem)])
    try:
        s3 = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="ad-data")
        s3.put_object(Bucket="ad-data", Key="design.txt", Body=b"specs")
        f = tmp_path / "engineering.json"
        f.write_text('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", '
                     '"Resource": "arn:aws:s3:::ad-data/*"}]}')
        server.admin("policy", "add", "engineering", str(f))
        pw = tmp_path / "lookup-password"
        pw.write_text("Strata-lookup-Passw0rd!")

        def configure(url, *extra):
            server.admin("idp", "add-ldap", "corp", "--url", url, *extra,
                  "--lookup-dn", f"CN=strata-lookup,{AD_USERS}", "--lookup-password-file", str(pw),
                  "--user-base", AD_USERS, "--user-filter", "(sAMAccountName=%s)",
                  "--group-base", AD_BASE, "--group-filter", "(&(objectClass=group)(member=%d))",
                  "--group", f"engineering:CN=engineers,{AD_USERS}")

        configure(f"ldaps://{dc.addr}")
        status, doc = ldap_sts(server, "alice", "Alice-Passw0rd!")
        assert status == 200, ET.tostring(doc)
        alice = s3_as(server, creds_of(doc))
        assert alice.get_object(Bucket="ad-data", Key="design.txt")["Body"].read() == b"specs"
        # bob is in no mapped group; wrong passwords get nothing.
        for user, password in (("bob", "Bob-Passw0rd!"), ("alice", "Alice-Passw0rd?")):
            status, doc = ldap_sts(server, user, password)
            assert (status, error_code(doc)) == (403, "AccessDenied"), user
        # Active Directory refuses simple binds without TLS; StartTLS works.
        configure(f"ldap://{dc.addr}")
        status, doc = ldap_sts(server, "alice", "Alice-Passw0rd!")
        assert (status, error_code(doc)) == (400, "IDPCommunicationError")
        configure(f"ldap://{dc.addr}", "--start-tls")
        assert ldap_sts(server, "alice", "Alice-Passw0rd!")[0] == 200
    finally:
        server.stop()
        dc.stop()
