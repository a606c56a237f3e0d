// The page's script, bundled by build.mjs into dist/ (Atomic from npm is made for a bundler). config.json,
// written by whoever serves the page (docs/search.md), holds Intake's Search API base URL, the organization and a
// key or search token with the search privilege: only search.proxyBaseUrl changes from a page made for Coveo.
import {defineCustomElements} from '@coveo/atomic/loader';

await defineCustomElements(window);
const config = await (await fetch('config.json', {cache: 'no-store'})).json();
await customElements.whenDefined('atomic-search-interface');
const searchInterface = document.querySelector('atomic-search-interface');
await searchInterface.initialize({
  organizationId: config.organizationId,
  accessToken: config.accessToken,
  search: {proxyBaseUrl: config.proxyBaseUrl},
  analytics: {enabled: false},
});
searchInterface.executeFirstSearch();
