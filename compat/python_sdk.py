"""The official Python SDK (coveo-push-api-client.py) against Intake, with an API key made through the Platform
API: create a source, add with metadata, permissions and compressedBinaryData; delete with children; then check
search and the logs API. Then security identities (identity, alias, delete, delete old, a batch through a file
container) and items trimmed for search-token users."""
import base64
import os
import re
import sys
import time
import zlib
from datetime import datetime, timezone

import requests
from push_api_clientpy import (
    AliasMapping,
    BackoffOptions,
    DocumentBuilder,
    FileContainer,
    GroupSecurityIdentityBuilder,
    IdentityModel,
    PlatformClient,
    SecurityIdentityAliasModel,
    SecurityIdentityBatchConfig,
    SecurityIdentityDelete,
    SecurityIdentityDeleteOptions,
    SecurityIdentityModel,
    Source,
    UserSecurityIdentityBuilder,
)

BASE = os.environ["PUSH_URL"]
KEY = os.environ["INTAKE_KEY"]
ORG = os.environ["INTAKE_ORG"]
COVEO = re.compile(r"^https://(api|platform)[a-z]*(-[a-z]+)?\.cloud\.coveo\.com(?=[/?]|$)")


class RedirectSession(requests.Session):
    """Sends the SDK's requests for Coveo's hosts to Intake (the SDK takes a session, not a base URL)."""

    def request(self, method, url, *args, **kwargs):
        if isinstance(url, str):
            url = COVEO.sub(BASE, url)
        return super().request(method, url, *args, **kwargs)

    def mount(self, prefix, adapter):
        super().mount(prefix, adapter)
        if prefix == "https://":
            super().mount("http://", adapter)


def search(body, bearer=None):
    """A search with the master key and viewAllContent (every item), or as the user of a search token."""
    body = body if bearer else {"viewAllContent": True, **body}
    headers = {"Authorization": f"Bearer {bearer or KEY}"}
    response = requests.post(f"{BASE}/rest/search/v2?organizationId={ORG}", json=body, headers=headers)
    response.raise_for_status()
    return response.json()


def search_token(user):
    """A search token for an e-mail user, issued with the master key."""
    body = {"userIds": [{"name": user, "provider": "Email Security Provider", "type": "User"}]}
    response = requests.post(
        f"{BASE}/rest/search/v2/token?organizationId={ORG}", json=body, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def logs(document_id, filters=None):
    response = requests.post(
        f"{BASE}/logs/v1/organizations/{ORG}",
        params={"documentId": document_id, "perPage": 1000},
        json=filters or {},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    response.raise_for_status()
    return response.json()["documentLogEntries"]


def eventually(what, check, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {what}")


def create_key(display_name, privileges):
    """An API key made with the master key through the Platform API; returns its value."""
    response = requests.post(
        f"{BASE}/rest/organizations/{ORG}/apikeys",
        json={"displayName": display_name, "privileges": privileges},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["value"]


def add_fault(rule):
    """A fault rule on the organization, made with the master key."""
    response = requests.post(
        f"{BASE}/rest/organizations/{ORG}/faults", json=rule, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 201, response.text


def main():
    api_key = create_key(
        "python sdk",
        [
            {"owner": "PLATFORM", "targetDomain": domain, "type": kind, "targetId": "*"}
            for domain in ("SOURCE", "SECURITY_PROVIDER")
            for kind in ("CREATE", "EDIT")
        ],
    )
    backoff = BackoffOptions(retry_after=1, max_retries=3)
    source = Source(api_key, ORG, backoff)
    source.client = PlatformClient(api_key, ORG, backoff, session=RedirectSession())
    created = source.create("python sdk source", "SHARED")
    assert created.status_code == 201, created.text
    SRC = created.json()["id"]

    uri = "https://example.com/python/a b/été?x=1&y=2#frag"
    doc = (
        DocumentBuilder(uri, "Python doc")
        .withData("<html><body><p>hello from the python sdk</p></body></html>")
        .withAuthor("bob")
        .withClickableUri("https://example.com/click/py")
        .withFileExtension(".html")
        .withDate(datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
        .withMetadata({"category": "py", "tags": ["x", "y"], "rank": 7})
        .withAllowedPermissions(UserSecurityIdentityBuilder("bob@example.com"))
    )
    assert source.addOrUpdateDocument(SRC, doc).status_code == 202

    packed = base64.b64encode(zlib.compress(b"<html><body><p>compressed pangolin words</p></body></html>")).decode()
    compressed = DocumentBuilder("file://python/compressed.html", "Compressed").withCompressedBinaryData(packed, "ZLIB")
    assert source.addOrUpdateDocument(SRC, compressed).status_code == 202
    for child in ["file://python/folder", "file://python/folder/child.txt"]:
        assert source.addOrUpdateDocument(SRC, DocumentBuilder(child, child).withData("python family")).status_code == 202

    found = eventually("the python doc is searchable", lambda: search({"q": "python sdk", "aq": "@category==py"})["results"])
    hit = found[0]
    assert hit["uri"] == uri, hit["uri"]
    assert hit["title"] == "Python doc"
    assert hit["raw"]["author"] == "bob"
    assert hit["raw"]["tags"] == ["x", "y"]
    assert hit["raw"]["rank"] == 7
    assert hit["raw"]["date"] == 1704164645000
    eventually("the compressed doc is searchable", lambda: search({"q": "pangolin"})["totalCount"] == 1)
    assert logs(uri)[0]["result"] == "COMPLETED"

    # Source.deleteDocument has a bug in 1.1.2 (it omits deleteChildren); the client call is what users make.
    assert source.client.deleteDocument(SRC, "file://python/folder", True).status_code == 202
    eventually("the folder and its child are deleted", lambda: search({"q": "python family"})["totalCount"] == 0)
    # Search shows a commit a moment before the logs API does (COMPLETED in the logs means searchable, so the
    # logs follow the search, never the other way round): poll the logs too.
    eventually(
        "the child's deletion is logged",
        lambda: len(logs("file://python/folder/child.txt", {"operations": ["DELETE_AND_CHILDREN"]})) == 1,
    )

    # A batch through a file container.
    from push_api_clientpy import BatchDelete, BatchUpdate

    batch = BatchUpdate(
        addOrUpdate=[DocumentBuilder(f"file://python/batch/{i}", f"Batch {i}").withData(f"<p>puffin {i}</p>") for i in range(40)],
        delete=[BatchDelete(documentId="file://python/never-there", deleteChildren=False)],
    )
    assert source.batchUpdateDocuments(SRC, batch).status_code == 202
    eventually("the python batch is searchable", lambda: search({"q": "puffin"})["totalCount"] == 40)

    # An error answer is JSON with the catalog's code.
    missing = source.client.pushDocument("default-nosuchsource", DocumentBuilder("file://x", "x").withData("x").marshal())
    assert missing.status_code == 412 and missing.json()["errorCode"] == "SOURCE_DOES_NOT_EXIST", missing.text

    # Faults on demand: urllib3 retries an injected 429 for the SDK; a 503 comes back as the SDK's answer.
    add_fault({"status": 429, "count": 1, "route": "*/documents"})
    throttled = DocumentBuilder("file://python/throttled", "Throttled").withData("<p>marmot</p>")
    assert source.addOrUpdateDocument(SRC, throttled).status_code == 202
    eventually("the throttled doc is searchable", lambda: search({"q": "marmot"})["totalCount"] == 1)
    add_fault({"status": 503, "count": 1, "route": "*/documents"})
    unavailable = source.addOrUpdateDocument(SRC, DocumentBuilder("file://python/unavailable", "x").withData("x"))
    assert unavailable.status_code == 503, unavailable.text
    assert unavailable.json()["errorCode"] == "SERVICE_UNAVAILABLE" and "Injected" in unavailable.json()["message"]
    secured_content(source, api_key)
    print("python SDK: all scenarios passed")


def secured_content(source, api_key):
    """Security identities through the SDK's client, then search as users with search tokens."""
    created = source.create("python sdk secured", "SECURED")
    assert created.status_code == 201, created.text
    secured = created.json()["id"]
    provider, email = "python-provider", "Email Security Provider"
    response = requests.put(
        f"{BASE}/rest/organizations/{ORG}/securityproviders/{provider}",
        json={
            "id": provider, "name": provider, "type": "EXPANDED", "nodeRequired": False,
            "referencedBy": [{"id": secured, "type": "SOURCE"}],
            "cascadingSecurityProviders": {email: {"id": email, "name": email, "type": "EMAIL"}},
        },
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 201, response.text
    client = source.client
    user = lambda name: IdentityModel(AdditionalInfo={}, Name=name, Type="USER")  # noqa: E731
    team = SecurityIdentityModel(
        Identity=IdentityModel(AdditionalInfo={}, Name="crew", Type="GROUP"),
        WellKnowns=[],
        Members=[user("dana@example.com"), user("eve@example.com")],
    )
    assert client.createOrUpdateSecurityIdentity(provider, team).status_code == 202
    alias = SecurityIdentityAliasModel(
        Identity=user("dsmith"), WellKnowns=[],
        Mappings=[AliasMapping(AdditionalInfo={}, Name="dana.smith@example.com", Type="USER", Provider=email)],
    )
    assert client.createOrUpdateSecurityIdentityAlias(provider, alias).status_code == 202
    assert client.deleteSecurityIdentity(provider, SecurityIdentityDelete(Identity=user("eve@example.com"))).status_code == 202
    old = SecurityIdentityDeleteOptions(QueueDelay=15, OrderingID=1704067200000)
    assert client.deleteOldSecurityIdentities(provider, old).status_code == 202
    container = client.createFileContainer().json()
    batch = {"members": [{"identity": {"name": "auditors", "type": "GROUP", "additionalInfo": {}},
                          "members": [{"name": "fay@example.com", "type": "USER", "additionalInfo": {}}]}],
             "mappings": [], "deleted": []}
    uploaded = requests.put(container["uploadUri"], json=batch, headers=container["requiredHeaders"])
    assert uploaded.status_code == 200, uploaded.text
    config = SecurityIdentityBatchConfig(FileID=container["fileId"], OrderingID=int(time.time() * 1000))
    assert client.manageSecurityIdentities(provider, config).status_code == 202

    docs = {
        "file://pysecured/crew": GroupSecurityIdentityBuilder("crew", provider),
        "file://pysecured/alias": UserSecurityIdentityBuilder("dsmith", provider),
        "file://pysecured/auditors": GroupSecurityIdentityBuilder("auditors", provider),
    }
    for uri, allowed in docs.items():
        # The SDK's permission set allows anonymous users unless told otherwise.
        doc = DocumentBuilder(uri, uri).withData("<p>ledger entries</p>").withAllowedPermissions(allowed).withAllowAnonymousUsers(False)
        assert source.addOrUpdateDocument(secured, doc).status_code == 202

    def sees(who):
        found = search({"q": "ledger", "numberOfResults": 100}, bearer=search_token(who))
        return sorted(result["uri"] for result in found["results"])

    eventually("the secured items are searchable", lambda: search({"q": "ledger"})["totalCount"] == len(docs))
    assert sees("dana@example.com") == ["file://pysecured/crew"]
    assert sees("eve@example.com") == [], "eve was disabled"
    assert sees("dana.smith@example.com") == ["file://pysecured/alias"]
    assert sees("fay@example.com") == ["file://pysecured/auditors"]
    assert sees("mallory@example.com") == []


if __name__ == "__main__":
    try:
        main()
    except Exception:
        import traceback

        traceback.print_exc()
        sys.exit(1)
