// The official Node SDK (@coveo/push-api-client) against Intake, with an API key made through the Platform
// API (not the master key): create a source, add with metadata, permissions and compressedBinaryData (with
// createFields at its default, so the SDK evaluates privileges and declares fields), delete with children,
// deleteDocumentsOlderThan, source status, an error answer; security identities (provider, identity, alias,
// delete, delete old, a batch through a file container) and items trimmed for search-token users; a catalog
// source: full loads through the Stream API (several chunks) that replace the catalog, and a stream update.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const {
  PushSource, CatalogSource, DocumentBuilder, PermissionSetBuilder, UserSecurityIdentityBuilder, GroupSecurityIdentityBuilder,
} = require('@coveo/push-api-client');
const {search, logs, eventually, createKey, fields, fault, searchToken, searchAs} = require('./intake.cjs');

const privilege = (targetDomain, type) => ({owner: 'PLATFORM', targetDomain, type, targetId: '*'});
const noFields = {createFields: false};
const specialUri = 'https://example.com/docs/a b/été?x=1&y=2#frag';

async function main() {
  const apiKey = await createKey('node sdk', [
    privilege('SOURCE', 'CREATE'), privilege('SOURCE', 'EDIT'), privilege('FIELD', 'CREATE'), privilege('FIELD', 'EDIT'),
    privilege('SECURITY_PROVIDER', 'CREATE'), privilege('SECURITY_PROVIDER', 'EDIT'),
  ]);
  const source = new PushSource(apiKey, process.env.INTAKE_ORG, {retryAfter: 200, maxRetries: 4});
  const created = await source.create('node sdk source', 'SHARED');
  const src = created.id;
  assert.ok(src.startsWith(`${process.env.INTAKE_ORG}-`), JSON.stringify(created));

  await source.setSourceStatus(src, 'REBUILD'); // throws if the answer is not JSON

  const doc = new DocumentBuilder(specialUri, 'Acceptance doc')
    .withData('<html><body><p>hello push api from node</p></body></html>')
    .withAuthor('alice')
    .withClickableUri('https://example.com/click/1')
    .withFileExtension('.html')
    .withDate(new Date('2024-01-02T03:04:05Z'))
    .withMetadata({category: 'news', tags: ['a', 'b'], rank: 3})
    .withPermissionSet(
      new PermissionSetBuilder(false)
        .withAllowedPermissions(new UserSecurityIdentityBuilder('alice@example.com'))
        .withDeniedPermissions(new GroupSecurityIdentityBuilder('contractors', 'acceptance-provider')));
  // createFields at its default: the SDK evaluates FIELD privileges, lists the fields and declares the new ones.
  assert.equal((await source.addOrUpdateDocument(src, doc)).status, 202);
  const declared = Object.fromEntries((await fields()).map((f) => [f.name, f.type]));
  assert.equal(declared.rank, 'LONG', JSON.stringify(declared));
  assert.equal(declared.category, 'STRING', JSON.stringify(declared));

  const compressed = zlib.deflateSync(Buffer.from('<html><body><p>squeezed narwhal text</p></body></html>')).toString('base64');
  const packed = new DocumentBuilder('file://node/compressed.html', 'Compressed').withCompressedBinaryData(compressed, 'ZLIB').withFileExtension('.html');
  assert.equal((await source.addOrUpdateDocument(src, packed, noFields)).status, 202);

  for (const uri of ['file://node/folder', 'file://node/folder/child.txt', 'file://node/folder/sub/grandchild.txt']) {
    await source.addOrUpdateDocument(src, new DocumentBuilder(uri, uri).withData('family member'), noFields);
  }

  const found = await eventually('the acceptance doc is searchable', async () => {
    const result = await search({q: 'hello push api', aq: '@category==news'});
    return result.totalCount === 1 && result.results[0];
  });
  assert.equal(found.uri, specialUri);
  assert.equal(found.title, 'Acceptance doc');
  assert.equal(found.clickUri, 'https://example.com/click/1');
  assert.equal(found.raw.author, 'alice');
  assert.deepEqual(found.raw.tags, ['a', 'b']);
  assert.equal(found.raw.rank, 3);
  assert.equal(found.raw.date, Date.parse('2024-01-02T03:04:05Z'));
  // rank was declared LONG by the SDK, so it compares as a number.
  assert.equal((await search({aq: '@rank>2 @rank<4'})).totalCount, 1);
  await eventually('the compressed doc is searchable', async () => (await search({q: 'narwhal'})).totalCount === 1);
  const added = await logs(specialUri);
  assert.equal(added[0].result, 'COMPLETED');
  assert.equal(added[0].operation, 'ADD');

  assert.equal((await source.deleteDocument(src, 'file://node/folder', true)).status, 202);
  await eventually('the folder and its children are deleted', async () => (await search({q: 'family'})).totalCount === 0);
  // The logs API shows a commit a moment after search does (COMPLETED means searchable): poll it too.
  const logged = (what, documentId, filters, count) => eventually(what, async () => {
    const entries = await logs(documentId, filters);
    return entries.length >= count && entries;
  });
  const deletions = await logged('the deletions are logged', null, {operations: ['DELETE_AND_CHILDREN'], results: ['COMPLETED']}, 3);
  assert.equal(deletions.length, 3);

  assert.equal((await source.deleteDocumentsOlderThan(src, new Date())).status, 202);
  await eventually('delete-older-than removed every older item', async () => (await search({})).totalCount === 0);
  const olderThan = await logged('the delete-older-than is logged', specialUri, {operations: ['DELETE_OLDER_THAN']}, 1);
  assert.equal(olderThan[0].result, 'COMPLETED');

  // Batches: one container for batchUpdateDocuments; batchUpdateDocumentsFromFiles splits at 5 MiB, so over
  // 6 MB of files makes several containers.
  const batch = {
    addOrUpdate: Array.from({length: 50}, (_, i) => new DocumentBuilder(`file://node/batch/${i}`, `Batch ${i}`).withData(`<p>pelican ${i}</p>`)),
    delete: [{documentId: 'file://node/never-there', deleteChildren: false}],
  };
  await source.batchUpdateDocuments(src, batch, noFields);
  await eventually('the batch is searchable', async () => (await search({q: 'pelican'})).totalCount === 50);

  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'intake-compat-'));
  const filler = 'walrus '.repeat(14_000); // about 100 KB a document
  for (let f = 0; f < 3; f++) {
    const docs = Array.from({length: 22}, (_, i) => ({documentId: `file://node/files/${f}/${i}`, title: `File ${f}/${i}`, data: `<p>${filler}</p>`}));
    fs.writeFileSync(path.join(folder, `docs-${f}.json`), JSON.stringify(docs));
  }
  const uploads = [];
  await source
    .batchUpdateDocumentsFromFiles(src, [folder], {...noFields, maxConcurrent: 2})
    .onBatchUpload((data) => uploads.push(data.res.status))
    .onBatchError((error) => { throw error; })
    .batch();
  assert.ok(uploads.length >= 2, `expected several containers, got ${uploads.length}`);
  assert.ok(uploads.every((status) => status === 202), JSON.stringify(uploads));
  await eventually('every file document is searchable', async () => (await search({q: 'walrus'})).totalCount === 66);

  await source.setSourceStatus(src, 'IDLE');

  // Errors are JSON the SDK can read.
  await assert.rejects(
    source.addOrUpdateDocument(`${process.env.INTAKE_ORG}-nosuchsource`, new DocumentBuilder('file://x', 'x').withData('x'), noFields),
    (error) => {
      const body = JSON.parse(error.body ?? '{}');
      assert.equal(body.errorCode, 'SOURCE_DOES_NOT_EXIST');
      assert.match(body.message, /default-nosuchsource/);
      return true;
    });
  // Faults on demand, as Coveo's service produces them: the SDK retries an injected 429 and gets through; it
  // does not retry a 503, and its error carries the injected answer.
  await fault({status: 429, count: 2, retryAfter: 1, route: '*/documents'});
  const throttled = new DocumentBuilder('file://node/throttled', 'Throttled').withData('<p>otter</p>');
  assert.equal((await source.addOrUpdateDocument(src, throttled, noFields)).status, 202);
  await eventually('the throttled item is searchable', async () => (await search({q: 'otter'})).totalCount === 1);
  await fault({status: 503, count: 1, route: '*/documents'});
  await assert.rejects(
    source.addOrUpdateDocument(src, new DocumentBuilder('file://node/unavailable', 'x').withData('x'), noFields),
    (error) => {
      const body = JSON.parse(error.body ?? '{}');
      assert.equal(body.errorCode, 'SERVICE_UNAVAILABLE');
      assert.match(body.message, /Injected by fault rule/);
      return true;
    });
  await securedContent(source);
  await catalog(apiKey, logged);
  console.log('node SDK: all scenarios passed');
}

/** Security identities through the SDK, then search as users with search tokens. */
async function securedContent(source) {
  const secured = (await source.create('node sdk secured', 'SECURED')).id;
  const provider = 'acceptance-provider';
  const email = 'Email Security Provider';
  await source.platformClient.securityCache.createOrUpdateProvider({
    id: provider, name: provider, type: 'EXPANDED', nodeRequired: false,
    referencedBy: [{id: secured, type: 'SOURCE'}],
    cascadingSecurityProviders: {[email]: {id: email, name: email, type: 'EMAIL'}},
  });
  const user = (name) => ({name, type: 'USER', additionalInfo: {}});
  const identity = source.identity;
  await identity.createSecurityIdentity(provider, {identity: {name: 'team', type: 'GROUP', additionalInfo: {}}, members: [user('alice@example.com'), user('bob@example.com')], wellKnowns: []});
  await identity.createOrUpdateSecurityIdentityAlias(provider, {identity: user('asmith'), mappings: [{...user('alice.smith@example.com'), provider: email}], wellKnowns: []});
  await identity.deleteSecurityIdentity(provider, {identity: user('bob@example.com')});
  await identity.deleteOldSecurityIdentities(provider, {orderingId: 1704067200000, queueDelay: 15});
  // A batch of identities through a file container (the SDK has no helper for the upload).
  const container = await source.platformClient.pushApi.createFileContainer();
  const batch = {members: [{identity: {name: 'readers', type: 'GROUP', additionalInfo: {}}, members: [user('carol@example.com')], wellKnowns: []}], mappings: [], deleted: []};
  const uploaded = await fetch(container.uploadUri, {method: 'PUT', headers: container.requiredHeaders, body: JSON.stringify(batch)});
  assert.equal(uploaded.status, 200);
  await identity.manageSecurityIdentities(provider, {fileId: container.fileId});

  const docs = [
    ['file://secured/team', new PermissionSetBuilder(false).withAllowedPermissions(new GroupSecurityIdentityBuilder('team', provider))],
    ['file://secured/alias', new PermissionSetBuilder(false).withAllowedPermissions(new UserSecurityIdentityBuilder('asmith', provider))],
    ['file://secured/readers', new PermissionSetBuilder(false).withAllowedPermissions(new GroupSecurityIdentityBuilder('readers', provider))],
    ['file://secured/public', new PermissionSetBuilder(true)],
  ];
  for (const [uri, permissions] of docs) {
    const doc = new DocumentBuilder(uri, uri).withData('<p>vault contents</p>').withPermissionSet(permissions);
    assert.equal((await source.addOrUpdateDocument(secured, doc, noFields)).status, 202);
  }
  await eventually('the secured items are searchable', async () => (await search({q: 'vault'})).totalCount === docs.length);
  const sees = async (who) => (await searchAs(await searchToken(who), {q: 'vault', numberOfResults: 100})).results.map((r) => r.uri).sort();
  assert.deepEqual(await sees('alice@example.com'), ['file://secured/public', 'file://secured/team']);
  assert.deepEqual(await sees('bob@example.com'), ['file://secured/public'], 'bob was disabled');
  assert.deepEqual(await sees('alice.smith@example.com'), ['file://secured/alias', 'file://secured/public']);
  assert.deepEqual(await sees('carol@example.com'), ['file://secured/public', 'file://secured/readers']);
  assert.deepEqual(await sees('mallory@example.com'), ['file://secured/public']);
  const identityLogs = await logs('bob@example.com');
  assert.equal(identityLogs[0].operation, 'DELETE');
  assert.equal(identityLogs[0].result, 'COMPLETED');
}

/** A catalog source through the SDK's CatalogSource: Stream API full loads and a stream update. */
async function catalog(apiKey, logged) {
  const catalogSource = new CatalogSource(apiKey, process.env.INTAKE_ORG, {retryAfter: 200, maxRetries: 4});
  const src = (await catalogSource.create('node sdk catalog', 'SHARED')).id;
  const product = (sku, name, price) => new DocumentBuilder(`product://${sku}`, name)
    .withData(`<p>${name}, a piece of furniture</p>`).withMetadata({sku, price, ec_category: ['furniture']});
  const count = async () => (await search({q: 'furniture', numberOfResults: 100})).results.map((r) => r.uri).sort();
  // batchStreamDocuments is a full load of one chunk; batchStreamDocumentsFromFiles one of a chunk per 5 MiB.
  await catalogSource.batchStreamDocuments(src, {addOrUpdate: [product('a', 'Chair', 10), product('b', 'Table', 20), product('c', 'Lamp', 5)], delete: []}, noFields);
  await eventually('the first load is searchable', async () => (await count()).length === 3);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'intake-catalog-'));
  const filler = 'furniture catalog '.repeat(6_000); // about 100 KB a product
  for (let f = 0; f < 3; f++) {
    const docs = Array.from({length: 20}, (_, i) => ({documentId: `product://files/${f}/${i}`, title: `Product ${f}/${i}`, data: `<p>${filler}</p>`, sku: `f${f}-${i}`}));
    fs.writeFileSync(path.join(folder, `catalog-${f}.json`), JSON.stringify(docs));
  }
  const chunks = [];
  await catalogSource
    .batchStreamDocumentsFromFiles(src, [folder], {...noFields, maxConcurrent: 1})
    .onBatchUpload((data) => chunks.push(data.res?.status ?? 'ok'))
    .onBatchError((error) => { throw error; })
    .batch();
  assert.ok(chunks.length >= 2, `expected several chunks, got ${chunks.length}`);
  await eventually('the second load replaced the first', async () => {
    const uris = await count();
    return uris.length === 60 && !uris.includes('product://a');
  });
  const replaced = await logged('the replaced product is logged', 'product://a', {operations: ['DELETE_OLDER_THAN']}, 1);
  assert.equal(replaced[0].result, 'COMPLETED');
  const loads = await logged('both loads are logged', null, {tasks: ['STREAMING_EXTENSION'], operations: ['BATCH_FILE'], results: ['COMPLETED', 'WARNING']}, 2);
  assert.equal(loads.length, 2, JSON.stringify(loads));
  // A stream update on the loaded catalog: one product changed, one deleted, one added.
  const update = {
    addOrUpdate: [product('files/0/0', 'Armchair', 99), product('z', 'Stool', 3)],
    delete: [{documentId: 'product://files/0/1', deleteChildren: false}],
  };
  assert.equal((await catalogSource.batchUpdateDocuments(src, update, noFields)).status, 202);
  await eventually('the update is applied', async () => {
    const uris = await count();
    return uris.includes('product://z') && !uris.includes('product://files/0/1') && uris.length === 60;
  });
  const armchair = await search({q: 'Armchair'});
  assert.equal(armchair.results[0].raw.price, 99);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
