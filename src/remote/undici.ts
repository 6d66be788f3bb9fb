// undici for the modules that load it with import() on first use (initialising it costs ~50 ms
// at start-up). They import this module, not 'undici' itself, so that the named imports hold
// however a bundler wraps a CommonJS package reached by import() (as a default export only, in
// esbuild's ES module chunks).
export { Agent, fetch, request } from 'undici';
