// The official `openai` npm client against `apr serve` on 127.0.0.1: model list, chat (plain
// and streamed, which must agree for one seed), completions, audio transcription (json,
// verbose_json, srt), auth and request errors.
// usage: node test.mjs APR_BINARY CHAT_MODEL_DIR WHISPER_MODEL_DIR WAV_FILE
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";
import OpenAI from "openai";

const [apr, chatModel, whisperModel, wav] = process.argv.slice(2);
const key = "test-key";
const server = spawn(apr, ["serve", chatModel, whisperModel, "--port", "0", "--api-key", key, "--workers", "2"], { stdio: ["ignore", "inherit", "pipe"] });
const port = await new Promise((resolve, reject) => {
  let log = "";
  server.stderr.on("data", (chunk) => {
    log += chunk;
    const match = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    if (match) resolve(Number(match[1]));
  });
  server.on("exit", (code) => reject(new Error(`apr serve exited with ${code}: ${log}`)));
  setTimeout(() => reject(new Error(`apr serve did not start: ${log}`)), 30000);
});

let failed = false;
try {
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: key, maxRetries: 0 });
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  const id = path.basename(chatModel);
  const speechId = path.basename(whisperModel);
  assert.ok(ids.includes(id) && ids.includes(speechId), `both models are listed: ${ids}`);

  const request = { model: id, messages: [{ role: "user", content: "Hello!" }], max_tokens: 6, seed: 11, temperature: 0.8 };
  const plain = await client.chat.completions.create(request);
  assert.equal(plain.object, "chat.completion");
  assert.equal(plain.usage.completion_tokens, 6);
  assert.ok(plain.usage.prompt_tokens > 0);
  assert.equal(plain.choices[0].message.role, "assistant");

  let streamed = "";
  let chunks = 0;
  for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) {
    assert.equal(chunk.object, "chat.completion.chunk");
    streamed += chunk.choices[0]?.delta?.content ?? "";
    chunks += 1;
  }
  assert.ok(chunks >= 2, "several chunks");
  assert.equal(streamed, plain.choices[0].message.content, "streamed text equals the plain answer for one seed");

  const completion = await client.completions.create({ model: id, prompt: "Once upon a time", max_tokens: 4, temperature: 0 });
  assert.equal(completion.object, "text_completion");
  assert.equal(completion.usage.completion_tokens, 4);

  const transcription = await client.audio.transcriptions.create({ file: fs.createReadStream(wav), model: speechId, language: "en", temperature: 0 });
  assert.equal(typeof transcription.text, "string");
  assert.ok(transcription.text.length > 0);
  const verbose = await client.audio.transcriptions.create({
    file: fs.createReadStream(wav), model: speechId, language: "en", temperature: 0, response_format: "verbose_json",
    timestamp_granularities: ["word"],
  });
  assert.equal(verbose.text, transcription.text, "json and verbose_json agree");
  assert.ok(verbose.segments.length > 0 && verbose.duration > 0);
  const srt = await client.audio.transcriptions.create({ file: fs.createReadStream(wav), model: speechId, language: "en", temperature: 0, response_format: "srt" });
  assert.match(srt, / --> /);
  await assert.rejects(client.audio.transcriptions.create({ file: fs.createReadStream(chatModel + "/config.json"), model: speechId }),
    (error) => error.status === 400);

  const stranger = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(stranger.models.list(), (error) => error.status === 401);
  await assert.rejects(client.chat.completions.create({ ...request, max_tokens: 10000000 }), (error) => error.status === 400);
  await assert.rejects(client.chat.completions.create({ ...request, model: "no-such-model" }), (error) => error.status === 404);
  console.log(`openai client against apr serve: models, chat (plain + ${chunks} streamed chunks), completions, transcriptions, errors ok`);
} catch (error) {
  console.error(error);
  failed = true;
} finally {
  server.kill("SIGTERM");
}
process.exit(failed ? 1 : 0);
