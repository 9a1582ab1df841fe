// The WebAssembly demo in headless Chromium: serves the page on 127.0.0.1 (cross-origin
// isolated), lets it load a model and generate, reads the figures from the DOM, keeps a
// screenshot of every run, and fails when a reply is missing or a figure is out of range.
//
// Usage: node browser_test.mjs SITE_DIR OUT_DIR [--chromium PATH] [--bench MODEL.apr]
//   default: fortune-lm Q8_0 with each build (simd-mt, simd, scalar, and the build a page that is
//   not cross-origin isolated picks: same greedy reply), its
//   tokenizer against the training tokenizer's ids (models/fortune-lm/tokenizer_check.jsonl), and
//   the F16 file picked through the file input, and a text file and a truncated model (the page
//   must show the reader's error naming the file);
//   --bench: only MODEL.apr with simd-mt, simd and scalar, 32 greedy tokens each, figures printed.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const { serve } = await import(join(here, '../../examples/wasm/serve.mjs'));
const args = process.argv.slice(2);
const option = (name, fallback) => { const i = args.indexOf(name); return i >= 0 ? args.splice(i, 2)[1] : fallback; };
const executablePath = option('--chromium', '/usr/bin/chromium');
const bench = option('--bench', null);
const [site, out] = args;
if (!site || !out) { console.error('usage: node browser_test.mjs SITE_DIR OUT_DIR [--chromium PATH] [--bench MODEL.apr]'); process.exit(2); }
mkdirSync(out, { recursive: true });

// a text file, and a real model cut after 4 KiB: both must fail with the reader's error, not a crash
const truncated = join(out, 'truncated.apr');
writeFileSync(truncated, readFileSync(join(here, '../../models/fortune-lm/fortune-lm-q8_0.apr')).subarray(0, 4096));
const mounts = { '/models/not-a-model.apr': join(here, 'browser_test.mjs'), '/models/truncated.apr': truncated };
if (bench) mounts['/models/bench.apr'] = resolve(bench);
const { server, url } = await serve(site, 0, mounts);
const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--enable-features=SharedArrayBuffer'] });
const failures = [];
const results = [];

// Opens the page with `params` and waits until it is done or failed, returns what it shows.
// Options: `at` the server, `inspect(page, result)` runs before the page closes, `pick` a local
// model file chosen through the page's file input (instead of auto=1's URL) and sent the prompt.
async function run(name, params, { timeoutMs = 60000, inspect = null, at = url, pick = null } = {}) {
  const page = await browser.newPage({ viewport: { width: 900, height: 760 } });
  const console_lines = [];
  page.on('console', (message) => console_lines.push(message.text()));
  page.on('pageerror', (error) => console_lines.push(`pageerror: ${error.message}`));
  await page.goto(`${at}?${new URLSearchParams(pick ? params : { auto: '1', ...params })}`);
  const reach = (states) => page.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout: timeoutMs });
  let state = 'timeout';
  try {
    if (pick) {
      await reach(['ready']);
      await page.setInputFiles('#model-file', pick);
      await reach(['loaded', 'error']);
      if (await page.evaluate(() => document.body.dataset.state) === 'loaded') await page.click('#send');
    }
    await reach(['done', 'error']);
    state = await page.evaluate(() => document.body.dataset.state);
  } catch { /* reported as a timeout below */ }
  const read = (id) => page.evaluate((i) => document.getElementById(i).textContent, id);
  const figure = async (id) => Number.parseFloat(await read(id));
  const result = {
    name, state, build: await read('build'), threads: await figure('threads'),
    isolated: await page.evaluate(() => self.crossOriginIsolated),
    startup_ms: await figure('startup-ms'), load_ms: await figure('load-ms'), ttft_ms: await figure('ttft-ms'),
    tokens_per_second: await figure('tokens-per-second'), memory_mb: await figure('memory-mb'),
    prompt_tokens: await figure('prompt-tokens'), reply_tokens: await figure('reply-tokens'),
    reply: await page.evaluate(() => [...document.querySelectorAll('.assistant')].map((e) => e.textContent).join('\n')),
    error: await page.evaluate(() => (document.getElementById('error').hidden ? '' : document.getElementById('error').textContent)),
  };
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  if (inspect) await inspect(page, result);
  if (state !== 'done' && state !== 'error') result.console = console_lines.slice(-20);
  await page.close();
  results.push(result);
  console.log(JSON.stringify(result));
  return result;
}

function expect(result, condition, what) {
  if (!condition) failures.push(`${result.name}: ${what} (${JSON.stringify(result)})`);
}

// A generation that worked: a reply and sane figures.
function expectGenerated(result, { isolated, threads }) {
  expect(result, result.state === 'done', 'the page did not finish generating');
  expect(result, result.isolated === isolated, `crossOriginIsolated should be ${isolated}`);
  expect(result, result.threads === threads, `expected ${threads} threads`);
  expect(result, result.reply_tokens >= 1 && result.reply.trim().length > 0, 'no reply');
  expect(result, result.prompt_tokens >= 1, 'no prompt tokens');
  for (const key of ['startup_ms', 'load_ms', 'ttft_ms', 'tokens_per_second', 'memory_mb']) {
    expect(result, Number.isFinite(result[key]) && result[key] > 0, `${key} is not a positive number`);
  }
  expect(result, result.load_ms < 30000 && result.ttft_ms < 30000, 'load or first token took over 30 s');
  expect(result, result.memory_mb >= 1 && result.memory_mb < 2048, 'memory out of range');
}

try {
  if (bench) {
    for (const build of ['simd-mt', 'simd', 'scalar']) {
      const threads = build === 'simd-mt' ? 2 : 1;
      const result = await run(`bench-${build}`, { build, threads, model: 'models/bench.apr', prompt: 'Once upon a time', max_tokens: '32', temperature: '0' }, { timeoutMs: 600000 });
      expectGenerated(result, { isolated: true, threads });
    }
    const tokps = (build) => results.find((r) => r.name === `bench-${build}`)?.tokens_per_second;
    console.log(JSON.stringify({ simd_over_scalar: tokps('simd') / tokps('scalar'), simd_mt_over_scalar: tokps('simd-mt') / tokps('scalar') }));
  } else {
    // the training tokenizer's ids (models/fortune-lm): the split regex and NFC run in the page's RegExp and String.normalize
    const checks = readFileSync(join(here, '../../models/fortune-lm/tokenizer_check.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    const tokenizerAgrees = async (page, result) => {
      const ids = await page.evaluate((texts) => window.aprTokenize(texts), checks.map((c) => c.text));
      const wrong = checks.filter((c, i) => JSON.stringify(ids[i]) !== JSON.stringify(c.ids));
      result.tokenizer_checked = checks.length;
      result.tokenizer_wrong = wrong.length;
      expect(result, checks.length >= 150 && wrong.length === 0, `ids differ from the training tokenizer's for ${wrong.length} texts, first: ${JSON.stringify(wrong[0]?.text)}`);
    };
    // [build, threads asked, threads expected]: unasked, a 2.7 MB model runs on one thread
    for (const [build, asked, threads] of [['simd-mt', 2, 2], ['simd', 1, 1], ['scalar', 1, 1], ['simd-mt', 0, 1]]) {
      const params = { build, model: 'models/fortune-lm-q8_0.apr', prompt: 'Tell me a fortune.', max_tokens: '48', temperature: '0' };
      if (asked) params.threads = asked;
      const result = await run(`fortune-lm-${build}${asked ? '' : '-auto'}`, params, { inspect: build === 'simd' ? tokenizerAgrees : null });
      expectGenerated(result, { isolated: true, threads });
    }
    // served without COOP/COEP: no SharedArrayBuffer, so the page picks the build without threads
    const plain = await serve(site, 0, {}, false);
    try {
      const result = await run('fortune-lm-not-isolated', { model: 'models/fortune-lm-q8_0.apr', prompt: 'Tell me a fortune.', max_tokens: '48', temperature: '0' }, { at: plain.url });
      expectGenerated(result, { isolated: false, threads: 1 });
      expect(result, result.build === 'simd', 'a page that is not cross-origin isolated should run the simd build');
    } finally {
      plain.server.close();
    }
    const greedy = results.map((r) => r.reply);
    // the F16 file, picked from disk through the page's file input (its greedy reply may differ from Q8_0's)
    const picked = await run('fortune-lm-f16-picked', { build: 'simd', max_tokens: '48', temperature: '0' },
                             { pick: join(here, '../../models/fortune-lm/fortune-lm-f16.apr') });
    expectGenerated(picked, { isolated: true, threads: 1 });
    expect(results[0], greedy.every((reply) => reply === greedy[0]), 'greedy replies differ between builds');
    for (const name of ['not-a-model', 'truncated']) {
      const bad = await run(name, { model: `models/${name}.apr` });
      expect(bad, bad.state === 'error', 'a file that is not a model did not fail');
      expect(bad, bad.error.startsWith(`${name}.apr: `) && !/abort|RuntimeError|unreachable/i.test(bad.error), 'the error does not name the file or is a crash');
    }
  }
} finally {
  writeFileSync(join(out, 'results.json'), JSON.stringify(results, null, 2));
  await browser.close();
  server.close();
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log(`browser test passed; screenshots and results.json in ${out}`);
