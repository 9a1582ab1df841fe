// Runs apr (apr.js + apr.wasm of one build) in a Web Worker, so the page stays responsive while
// the model computes; text pieces are posted back as they become final.
let module = null;
let chat = 0;
const call = (name, result, types, args) => module.ccall(name, result, types, args);

async function start(build) {
  const folder = new URL(`${build}/`, self.location).href;  // absolute: pthread workers resolve from their own folder
  const script = `${folder}apr.js`;
  importScripts(script);
  module = await createApr({
    locateFile: (file) => `${folder}${file}`,
    mainScriptUrlOrBlob: script,
    onText: (text) => postMessage({ type: 'text', text }),
    print: (line) => console.log(line),
    printErr: (line) => console.warn(line),
  });
  postMessage({ type: 'ready', memory: call('apr_memory_bytes', 'number', [], []) });
}

// Threads for a model of `bytes`: as asked, else one per core from 32 MiB on (see app.js).
const threadsFor = (request, bytes) => request.threads || (bytes.byteLength >= 32 * 1048576 ? request.threads_per_core : 1);

// Opens `bytes` (an ArrayBuffer) as the model; the copy in the file system is dropped once mapped.
function open(bytes, name, threads) {
  const started = performance.now();
  if (chat) call('apr_chat_close', null, ['number'], [chat]);
  const path = `${name.split('/').pop().replace(/[^\w.-]/g, '_') || 'model.apr'}`;  // errors name the file
  module.FS.writeFile(path, new Uint8Array(bytes));
  chat = call('apr_chat_open', 'number', ['string', 'number', 'number'], [path, threads, 0]);
  module.FS.unlink(path);
  const memory = call('apr_memory_bytes', 'number', [], []);
  if (!chat) return { type: 'error', message: call('apr_last_error', 'string', [], []), memory };
  return { type: 'loaded', info: JSON.parse(call('apr_chat_info', 'string', ['number'], [chat])), open_ms: performance.now() - started, memory };
}

onmessage = async (event) => {
  const request = event.data;
  try {
    if (request.type === 'start') await start(request.build);
    if (request.type === 'open-url') {
      const started = performance.now();
      const response = await fetch(request.url);
      if (!response.ok) throw new Error(`${request.url}: HTTP ${response.status}`);
      const bytes = await response.arrayBuffer();
      postMessage({ ...open(bytes, request.url, threadsFor(request, bytes)), fetch_ms: performance.now() - started });
    }
    if (request.type === 'open-bytes') postMessage(open(request.bytes, request.name, threadsFor(request, request.bytes)));
    if (request.type === 'send') {
      const reply = JSON.parse(call('apr_chat_send', 'string', ['number', 'string', 'number', 'number', 'number'],
                                    [chat, request.message, request.max_tokens, request.temperature, request.seed]));
      postMessage({ type: 'reply', reply, memory: call('apr_memory_bytes', 'number', [], []) });
    }
    if (request.type === 'tokenize') {
      const ids = request.texts.map((text) => JSON.parse(call('apr_chat_tokenize', 'string', ['number', 'string'], [chat, text])));
      postMessage({ type: 'tokens', ids });
    }
    if (request.type === 'reset' && chat) call('apr_chat_reset', null, ['number'], [chat]);
  } catch (error) {
    postMessage({ type: 'error', message: String(error && error.message || error) });
  }
};
