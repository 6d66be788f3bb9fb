// undici for the modules that load it with import() on first use (it costs ~50 ms at start-up).
// They import this module, not 'undici' itself: the CLI bundle (scripts/bundle.mjs) makes a
// CommonJS package imported that way a chunk with a default export only, where these named
// re-exports of an ES module survive.
export { Agent, fetch, request } from 'undici';
