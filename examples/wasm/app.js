// The demo page: picks a build (threads when the page is cross-origin isolated), starts it in a
// worker, loads a model, streams replies and shows load time, time to first token, tokens/s and
// memory. Query parameters: build=simd|simd-mt|scalar, threads=N (default: by model size), model=URL, prompt=TEXT,
// max_tokens=N, temperature=T, seed=N, auto=1 (load and send the prompt at once: used by tests).
// window.aprTokenize(texts) resolves to the loaded model's ids of each text (for tests too).
const query = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const threaded = self.crossOriginIsolated === true;
const build = query.get('build') || (threaded ? 'simd-mt' : 'simd');
// Threads: as asked, else (threaded build) one per core up to 4 for models of 32 MiB or more and
// one below (the worker decides once it has the bytes): waking the workers costs ~0.1 ms per
// product in browsers, more than a small model's products take (fortune-lm: 1,400 tok/s on one
// thread, 100 on two).
const threadsAsked = Number(query.get('threads')) || 0;
const threadsPerCore = build === 'simd-mt' ? Math.min(navigator.hardwareConcurrency || 2, 4) : 1;
const temperature = query.has('temperature') ? Number(query.get('temperature')) : 0.7;
const seed = Number(query.get('seed') || 1);
const worker = new Worker('worker.js');
let startedAt = 0, sentAt = 0, firstTextAt = 0, replyElement = null, tokenized = null;
window.aprTokenize = (texts) => new Promise((resolve) => { tokenized = resolve; worker.postMessage({ type: 'tokenize', texts }); });

const setState = (state, status) => { document.body.dataset.state = state; $('status').textContent = status; };
const showMemory = (bytes) => { $('memory-mb').textContent = (bytes / 1048576).toFixed(1); };
const showError = (message) => {
  $('error').hidden = false;
  $('error').textContent = message;
  setState('error', 'Failed.');
};

function load(request, name) {
  $('error').hidden = true;
  $('send').disabled = $('reset').disabled = true;
  setState('loading', `Loading ${name}…`);
  startedAt = performance.now();
  worker.postMessage({ ...request, threads: threadsAsked, threads_per_core: threadsPerCore }, request.bytes ? [request.bytes] : []);
}

function send(message) {
  const maxTokens = Number($('max-tokens').value) || 64;
  $('send').disabled = true;
  const user = document.createElement('div');
  user.className = 'user';
  user.textContent = message;
  replyElement = document.createElement('div');
  replyElement.className = 'assistant';
  $('messages').append(user, replyElement);
  setState('generating', 'Generating…');
  firstTextAt = 0;
  sentAt = performance.now();
  worker.postMessage({ type: 'send', message, max_tokens: maxTokens, temperature, seed });
}

worker.onmessage = (event) => {
  const m = event.data;
  if (m.type === 'ready') {
    $('startup-ms').textContent = (performance.now() - startedAt).toFixed(0);
    showMemory(m.memory);
    setState('ready', 'apr is running. Load a model.');
    if (query.get('auto') === '1') load({ type: 'open-url', url: $('model-url').value }, $('model-url').value);
  } else if (m.type === 'loaded') {
    $('load-ms').textContent = (performance.now() - startedAt).toFixed(0);
    showMemory(m.memory);
    const info = m.info;
    $('threads').textContent = info.threads;
    $('model-name').textContent = `${info.architecture}, ${info.num_hidden_layers} layers × ${info.hidden_size}, ` +
      `${info.vocab_size} ids, ${info.weight_dtype}${info.tokenizer ? '' : ' (no tokenizer: the message bytes are the prompt ids, the reply shows ids)'}`;
    $('send').disabled = $('reset').disabled = false;
    setState('loaded', 'Loaded. Say something.');
    if (query.get('auto') === '1') send($('prompt').value);
  } else if (m.type === 'text') {
    if (!firstTextAt) {
      firstTextAt = performance.now();
      $('ttft-ms').textContent = (firstTextAt - sentAt).toFixed(0);
    }
    replyElement.textContent += m.text;
  } else if (m.type === 'reply') {
    $('send').disabled = false;
    showMemory(m.memory);
    if (m.reply.error) return showError(m.reply.error);
    if (!firstTextAt) $('ttft-ms').textContent = (performance.now() - sentAt).toFixed(0);
    $('tokens-per-second').textContent = m.reply.tokens_per_second.toFixed(1);
    $('prompt-tokens').textContent = m.reply.prompt_tokens;
    $('reply-tokens').textContent = m.reply.tokens;
    setState('done', `Done (${m.reply.stop}).`);
  } else if (m.type === 'tokens') {
    if (tokenized) tokenized(m.ids);
  } else if (m.type === 'error') {
    if (m.memory) showMemory(m.memory);
    showError(m.message);
  }
};
worker.onerror = (event) => showError(`worker: ${event.message}`);

if (query.has('model')) {
  const option = document.createElement('option');
  option.value = option.textContent = query.get('model');
  $('model-url').prepend(option);
  $('model-url').value = option.value;
}
if (query.has('prompt')) $('prompt').value = query.get('prompt');
if (query.has('max_tokens')) $('max-tokens').value = query.get('max_tokens');
$('build').textContent = `${build}${threaded ? ' (cross-origin isolated)' : ''}`;
$('threads').textContent = threadsAsked || 'auto';
$('load').onclick = () => load({ type: 'open-url', url: $('model-url').value }, $('model-url').value);
$('model-file').onchange = async () => {
  const file = $('model-file').files[0];
  if (file) load({ type: 'open-bytes', bytes: await file.arrayBuffer(), name: file.name }, file.name);
};
$('send-form').onsubmit = (event) => {
  event.preventDefault();
  if ($('prompt').value.trim()) send($('prompt').value);
};
$('reset').onclick = () => { worker.postMessage({ type: 'reset' }); $('messages').textContent = ''; };
startedAt = performance.now();
worker.postMessage({ type: 'start', build });
