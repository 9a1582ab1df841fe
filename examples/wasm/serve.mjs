// Serves the demo page on 127.0.0.1 with the headers that make it cross-origin isolated (so the
// threaded build can use SharedArrayBuffer). Usage: node serve.mjs SITE_DIR [PORT] [URL_PATH=FILE ...]
// (PORT 0 picks a free one; the URL is printed on stdout).
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';

const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
                '.wasm': 'application/wasm', '.apr': 'application/octet-stream' };

/// A static server for `site` plus `mounts` ({'/models/x.apr': '/tmp/x.apr'}); resolves to its URL.
/// `isolated` false leaves out COOP/COEP (the page then runs without threads).
export function serve(site, port = 0, mounts = {}, isolated = true) {
  const root = resolve(site);
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url, 'http://127.0.0.1').pathname);
    const file = mounts[path] || join(root, normalize(path === '/' ? '/index.html' : path));
    if (!mounts[path] && !file.startsWith(root)) { response.writeHead(403).end(); return; }
    let size;
    try { size = statSync(file).size; } catch { response.writeHead(404).end('not found'); return; }
    const isolation = isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
    response.writeHead(200, { 'Content-Type': types[extname(file)] || 'application/octet-stream', 'Content-Length': size,
                              ...isolation, 'Cache-Control': 'no-store' });
    createReadStream(file).pipe(response);
  });
  return new Promise((done) => server.listen(port, '127.0.0.1', () => done({ server, url: `http://127.0.0.1:${server.address().port}/` })));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [site, port, ...rest] = process.argv.slice(2);
  if (!site) { console.error('usage: node serve.mjs SITE_DIR [PORT] [URL_PATH=FILE ...]'); process.exit(2); }
  const mounts = Object.fromEntries(rest.map((pair) => pair.split('=')));
  const { url } = await serve(site, Number(port || 8000), mounts);
  console.log(url);
}
