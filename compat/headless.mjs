// Coveo Headless (the library under Coveo Atomic and most Coveo search pages) against Intake, configured only with
// search.proxyBaseUrl and a key: what its controllers expose after a search, paging, sorting, a specific facet
// selection, a numeric and a date range facet, facet search, query suggestions, result fields and the quickview.
import assert from 'node:assert/strict';
import {createRequire} from 'node:module';
import intake from './intake.cjs';

// The Headless release under test: the pinned 3.x by default, `HEADLESS_PACKAGE=@coveo/headless-4` for 4.x.
const headlessPackage = process.env.HEADLESS_PACKAGE || '@coveo/headless';
const {
  buildSearchEngine, buildSearchBox, buildResultList, buildPager, buildSort, buildFacet, buildNumericFacet,
  buildDateFacet, buildQuerySummary, buildQuickview, buildFieldSortCriterion, buildRelevanceSortCriterion,
} = await import(headlessPackage);

const {eventually} = intake;

const base = process.env.PUSH_URL;
// An organization of its own (one per Headless release): the suites share the server, and a search page sees its
// whole organization.
const org = process.env.HEADLESS_ORG || 'headless';
const master = {Authorization: `Bearer ${process.env.INTAKE_KEY}`, 'Content-Type': 'application/json'};
const AUTHORS = ['Ada', 'Grace', 'Linus'];

async function call(method, path, body) {
  const response = await fetch(`${base}${path}`, {method, headers: master, body: body && JSON.stringify(body)});
  if (response.status >= 300) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`);
  return response.status === 204 ? null : response.json();
}

/** Twelve items in a SHARED source: authors, a declared LONG rank, dates a month apart, two kinds of text. */
async function library() {
  await call('POST', '/rest/organizations', {id: org, displayName: 'Headless page'});
  const source = await call('POST', `/rest/organizations/${org}/sources`, {name: 'headless library', sourceVisibility: 'SHARED'});
  await call('POST', `/rest/organizations/${org}/indexes/fields/batch/create`, [{name: 'rank', type: 'LONG'}]);
  for (let i = 0; i < 12; i++) {
    const topic = i % 2 === 0 ? 'kernel' : 'network';
    const item = {
      title: `${topic === 'kernel' ? 'Kernel' : 'Network'} guide ${i}`,
      data: `<html><body><p>The ${topic} guide number ${i} explains the ${topic} in depth.</p></body></html>`,
      fileExtension: '.html',
      author: AUTHORS[i % 3],
      rank: i * 10,
      date: new Date(Date.UTC(2025, i, 15)).toISOString(),
    };
    const id = encodeURIComponent(`https://example.com/guide/${i}`);
    await call('PUT', `/push/v1/organizations/${org}/sources/${source.id}/documents?documentId=${id}`, item);
  }
  await eventually('the library is searchable', async () => {
    const found = await call('POST', `/rest/search/v2?organizationId=${org}`, {aq: '@author', numberOfResults: 0});
    return found.totalCount === 12;
  });
}

/** Resolves once the engine has no search, facet search or suggestion request in flight. */
async function settled(engine) {
  await new Promise((resolve) => setTimeout(resolve, 20));
  await eventually('the engine settles', async () => {
    const state = engine.state;
    const facetSearches = Object.values(state.facetSearchSet ?? {}).some((f) => f.isLoading);
    return !state.search.isLoading && !facetSearches;
  });
  assert.equal(engine.state.search.error, null, JSON.stringify(engine.state.search.error));
}

async function main() {
  await library();
  const privileges = [{owner: 'SEARCH_API', targetDomain: 'EXECUTE_QUERY', targetId: '*'}];
  const key = (await call('POST', `/rest/organizations/${org}/apikeys`, {displayName: 'headless page', privileges})).value;
  const engine = buildSearchEngine({
    configuration: {
      organizationId: org,
      accessToken: key,
      search: {proxyBaseUrl: `${base}/rest/search/v2`},
      analytics: {enabled: false},
    },
    loggerOptions: {level: 'silent'},
  });
  const searchBox = buildSearchBox(engine, {options: {numberOfSuggestions: 5}});
  const resultList = buildResultList(engine, {options: {fieldsToInclude: ['author', 'rank']}});
  const pager = buildPager(engine);
  const sort = buildSort(engine, {initialState: {criterion: buildRelevanceSortCriterion()}});
  const authors = buildFacet(engine, {options: {field: 'author', facetId: 'author'}});
  const ranks = buildNumericFacet(engine, {options: {field: 'rank', facetId: 'rank', generateAutomaticRanges: true, numberOfValues: 4}});
  const dates = buildDateFacet(engine, {options: {field: 'date', facetId: 'date', generateAutomaticRanges: true, numberOfValues: 4}});
  const summary = buildQuerySummary(engine);

  engine.executeFirstSearch();
  await settled(engine);
  assert.equal(summary.state.total, 12, JSON.stringify(summary.state));
  assert.equal(resultList.state.results.length, 10);
  assert.deepEqual(
    authors.state.values.map((v) => [v.value, v.numberOfResults, v.state]),
    [['Ada', 4, 'idle'], ['Grace', 4, 'idle'], ['Linus', 4, 'idle']],
  );
  assert.equal(ranks.state.values.reduce((sum, v) => sum + v.numberOfResults, 0), 12, JSON.stringify(ranks.state.values));
  assert.equal(dates.state.values.reduce((sum, v) => sum + v.numberOfResults, 0), 12, JSON.stringify(dates.state.values));
  assert.equal(typeof resultList.state.results[0].raw.author, 'string', 'fieldsToInclude reaches raw');

  // Query and paging.
  searchBox.updateText('kernel');
  searchBox.submit();
  await settled(engine);
  assert.equal(summary.state.total, 6);
  assert.ok(resultList.state.results.every((r) => r.title.startsWith('Kernel')), JSON.stringify(resultList.state.results.map((r) => r.title)));
  assert.equal(pager.state.maxPage, 1);
  searchBox.updateText('');
  searchBox.submit();
  await settled(engine);
  assert.equal(pager.state.maxPage, 2);
  pager.nextPage();
  await settled(engine);
  assert.equal(pager.state.currentPage, 2);
  assert.deepEqual([summary.state.firstResult, summary.state.lastResult], [11, 12]);
  assert.equal(resultList.state.results.length, 2);

  // Sorting by a field.
  sort.sortBy(buildFieldSortCriterion('rank', 'descending'));
  await settled(engine);
  const sortedRanks = resultList.state.results.map((r) => r.raw.rank);
  assert.deepEqual(sortedRanks, [...sortedRanks].sort((a, b) => b - a));
  assert.equal(sortedRanks[0], 110);

  // A specific facet value selected: the results narrow, the facet keeps its other values.
  authors.toggleSelect(authors.state.values.find((v) => v.value === 'Grace'));
  await settled(engine);
  assert.equal(summary.state.total, 4);
  assert.ok(resultList.state.results.every((r) => r.raw.author === 'Grace'));
  assert.deepEqual(authors.state.values.find((v) => v.value === 'Grace').state, 'selected');
  assert.ok(authors.state.values.some((v) => v.value === 'Ada' && v.state === 'idle'), JSON.stringify(authors.state.values));
  authors.deselectAll();
  await settled(engine);

  // A numeric range and a date range.
  const firstRank = ranks.state.values[0];
  ranks.toggleSelect(firstRank);
  await settled(engine);
  assert.equal(summary.state.total, firstRank.numberOfResults, JSON.stringify(firstRank));
  assert.ok(resultList.state.results.every((r) => r.raw.rank >= firstRank.start && r.raw.rank <= firstRank.end));
  assert.equal(ranks.state.values.find((v) => v.start === firstRank.start).state, 'selected');
  ranks.deselectAll();
  await settled(engine);
  const firstDates = dates.state.values[0];
  dates.toggleSelect(firstDates);
  await settled(engine);
  assert.equal(summary.state.total, firstDates.numberOfResults, JSON.stringify(dates.state.values));
  assert.equal(dates.state.values.find((v) => v.start === firstDates.start).state, 'selected');
  dates.deselectAll();
  await settled(engine);

  // Facet search.
  authors.facetSearch.updateText('gr');
  await authors.facetSearch.search();
  await settled(engine);
  await eventually('facet search values', async () => authors.state.facetSearch.values.length > 0);
  assert.deepEqual(authors.state.facetSearch.values.map((v) => [v.rawValue, v.count]), [['Grace', 4]]);

  // Query suggestions as someone types.
  searchBox.updateText('kern');
  await eventually('suggestions', async () => searchBox.state.suggestions.length > 0);
  assert.ok(searchBox.state.suggestions.every((s) => s.rawValue.startsWith('kernel guide')), JSON.stringify(searchBox.state.suggestions));

  // The quickview of a result: Headless builds the iframe's URL; its page holds the item's text.
  searchBox.updateText('network');
  searchBox.submit();
  await settled(engine);
  const result = resultList.state.results[0];
  assert.equal(result.hasHtmlVersion, true);
  const quickview = buildQuickview(engine, {options: {result}});
  quickview.fetchResultContent();
  await eventually('the quickview URL', async () => quickview.state.contentURL);
  const page = await fetch(quickview.state.contentURL);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.ok(html.includes('<span class="coveo-highlight">network</span>'), html);

  const {version} = createRequire(import.meta.url)(`${headlessPackage}/package.json`);
  console.log(`headless ${version}: search, paging, sort, facets (specific, numeric, date), facet search, suggestions, quickview: ok`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
