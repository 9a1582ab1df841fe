#!/usr/bin/env bash
# Integration tests of the apr binary: stdout, JSON and exit codes of every command, including
# the failure paths (missing file, corrupt file, wrong format, usage errors).
# usage: cli_test.sh APR_BINARY FIXTURES_DIR WORK_DIR
set -u
apr=$1 fixtures=$2 work=$3
rm -rf "$work" && mkdir -p "$work/export"

. "$(dirname "$0")/harness.sh"

v512=$fixtures/qwen2/qwen2-v512
micro=$fixtures/qwen2/qwen2-micro

check "help lists commands" 0 "inspect" -- "$apr" --help
check "no command is a usage error" 2 "subcommand is required" -- "$apr"
check "unknown flag is a usage error" 2 "" -- "$apr" inspect --bogus x
check "explain tensor" 0 "SwiGLU up projection of layer 3" -- "$apr" explain blk.3.ffn_up.weight
check "explain exit code json" 0 '"kind": "topic"' -- "$apr" explain checksum --json
check "explain unknown" 3 "nothing to explain" -- "$apr" explain nonsense
check "flow mermaid" 0 "flowchart TD" -- "$apr" flow qwen2 --format mermaid
check "flow dot" 0 "digraph" -- "$apr" flow whisper --format dot
check "completion script" 0 "complete -F _apr apr" -- "$apr" completion bash

check "inspect apr" 0 "LAYOUT_ROW_MAJOR" -- "$apr" inspect "$fixtures/apr/small_v2.apr"
check "inspect json" 0 '"tensor_count": 27' -- "$apr" inspect "$fixtures/apr/qwen2-v512.apr" --json
check "inspect safetensors folder" 0 "27 tensors" -- "$apr" inspect "$v512"
check "inspect missing file" 3 "error: .*no-such.apr" -- "$apr" inspect "$work/no-such.apr"
check "inspect pickle refused" 3 "never unpickles" -- "$apr" inspect "$fixtures/qwen2/formats/malicious.pkl"
check "inspect pytorch zip refused" 3 "PyTorch checkpoint" -- "$apr" inspect "$fixtures/qwen2/formats/pytorch_model.bin"
check "tensors filter stats" 0 "model.norm.weight .*mean" -- "$apr" tensors "$fixtures/apr/qwen2-v512.apr" --filter norm --stats
check "tensors json" 0 '"dtype": "apr_q8"' -- "$apr" tensors "$fixtures/apr/small_v2.apr" --json
check "validate good" 0 "valid" -- "$apr" validate "$fixtures/apr/qwen2-v512.apr"
cp "$fixtures/apr/small_v2.apr" "$work/corrupt.apr"; chmod u+w "$work/corrupt.apr"
printf '\x55' | dd of="$work/corrupt.apr" bs=1 seek=1000 conv=notrunc 2>/dev/null
check "validate corrupt data (footer CRC)" 1 "FAIL: .*footer checksum" -- "$apr" validate "$work/corrupt.apr"
check "validate not-v2 file" 1 "aprender-tsp" -- "$apr" validate "$fixtures/apr/real/tsp_att48_not_v2.apr"
check "validate json" 1 '"valid": false' -- "$apr" validate "$work/corrupt.apr" --json
check "validate missing" 3 "no such file" -- "$apr" validate "$work/none.apr"

check "run greedy ids match transformers" 0 '"ids":\[218,317,378,239,15\]' -- bash -c "'$apr' run '$v512' --prompt-ids 152,249,131,440,456,256,277 -n 5 --greedy --json | tr -d ' \n'"
check "run bad ids" 2 "is not a token id" -- "$apr" run "$v512" --prompt-ids 1,x
check "run id outside vocab" 2 "outside the vocabulary" -- "$apr" run "$v512" --prompt-ids 600 -n 1
check "run text with tokenizer" 0 '"prompt_tokens": 3' -- "$apr" run "$micro" -p "Hello world!" -n 3 --json
check "run needs a prompt" 2 "either --prompt" -- "$apr" run "$v512"
check "chat over stdin" 0 "." -- bash -c "printf 'Hi\n/reset\nAgain\n' | '$apr' chat '$micro' -n 4 --seed 2"

check "import HF folder" 0 "26 tensors" -- "$apr" import "$micro" -o "$work/micro.apr"
check "imported model carries its tokenizer" 0 '"prompt_tokens": 3' -- "$apr" run "$work/micro.apr" -p "Hello world!" -n 2 --json
check "imported metadata" 0 '"chat_format": "chatml"' -- "$apr" inspect "$work/micro.apr" --json
check "import to f16 passes the gate" 0 "gate" -- "$apr" import "$v512" -o "$work/v512-f16.apr" --quantize f16 --json
check "q4_0 of a random model fails the gate, writes nothing" 1 "precision gate failed" -- "$apr" import "$v512" -o "$work/v512-q4.apr" --quantize q4_0
check "nothing written after a failed gate" 1 "" -- test -e "$work/v512-q4.apr"
check "forced conversion writes" 0 "tensors" -- "$apr" convert "$work/v512-f16.apr" --quantize q4_0 -o "$work/v512-q4.apr" --force
check "quantized file runs" 0 '"ids"' -- "$apr" run "$work/v512-q4.apr" --prompt-ids 1,2,3 -n 2 --json
check "bad quantize level" 2 "expected f32" -- "$apr" convert "$work/v512-f16.apr" --quantize q3 -o "$work/x.apr"
check "export safetensors" 0 "tensors" -- "$apr" export "$work/micro.apr" --format safetensors -o "$work/export/model.safetensors"
check "exported file reads back" 0 "26 tensors" -- "$apr" inspect "$work/export/model.safetensors"
# sharded APR: shards + manifest, opened and run like one file
mkdir -p "$work/sharded"
check "import into shards" 0 "in [0-9]* shards" -- "$apr" import "$micro" -o "$work/sharded/micro.apr" --max-shard-size 2MB
check "the manifest names its shards" 0 '"filename": "micro-00001-of-' -- cat "$work/sharded/micro.apr.index.json"
check "inspect the manifest" 0 "26 tensors" -- "$apr" inspect "$work/sharded/micro.apr.index.json"
check "validate checks every shard" 0 "footer CRC-32 of every shard" -- "$apr" validate "$work/sharded/micro.apr.index.json"
"$apr" run "$work/micro.apr" --prompt-ids 1,2,3 -n 4 --greedy --json > "$work/single.json" 2>/dev/null
"$apr" run "$work/sharded/micro.apr.index.json" --prompt-ids 1,2,3 -n 4 --greedy --json > "$work/sharded.json" 2>/dev/null
check "the sharded model generates what the single file does" 0 "" -- cmp <(grep -o '"ids": \[[^]]*\]' "$work/single.json") <(grep -o '"ids": \[[^]]*\]' "$work/sharded.json")
check "convert a sharded model back to one file" 0 "26 tensors" -- "$apr" convert "$work/sharded/micro.apr.index.json" -o "$work/unsharded.apr"
check "bad shard size" 2 "expected a number of bytes" -- "$apr" import "$micro" -o "$work/x.apr" --max-shard-size 2XB
check "shard size that overflows" 2 "too large" -- "$apr" import "$micro" -o "$work/x.apr" --max-shard-size 999999999999GB

# APR v1 (aprender's classic ML files): read and described, refused as a tensor model
v1=$fixtures/apr/real/v1_logistic_regression_mnist.apr
check "inspect an APR v1 file" 0 "LogisticRegression" -- "$apr" inspect "$v1"
check "inspect an APR v1 file as JSON" 0 '"aprender_version": "0.11.0"' -- "$apr" inspect "$v1" --json
check "a v1 file is no tensor model" 3 "classic ML model" -- "$apr" tensors "$v1"

# the model card (a hub README.md) travels in the file and back out beside an export
mkdir -p "$work/carded" "$work/carded-export"
cp "$micro"/config.json "$micro"/model.safetensors "$micro"/tokenizer.json "$micro"/tokenizer_config.json "$work/carded/"
printf -- '---\nlicense: apache-2.0\nlanguage: en\n---\n# Micro\nA test card.\n' > "$work/carded/README.md"
check "import keeps the model card" 0 "tensors" -- "$apr" import "$work/carded" -o "$work/carded.apr"
check "the card's license is the file's license" 0 '"license": "apache-2.0"' -- "$apr" inspect "$work/carded.apr" --json
check "the card itself is in the metadata" 0 'A test card' -- "$apr" inspect "$work/carded.apr" --json
check "export writes the card beside the tensors" 0 "README.md: model_card" -- "$apr" export "$work/carded.apr" --format safetensors -o "$work/carded-export/model.safetensors"
check "exported card is the imported one" 0 "" -- cmp "$work/carded/README.md" "$work/carded-export/README.md"
check "exported tokenizer is the imported one" 0 "" -- cmp "$micro/tokenizer.json" "$work/carded-export/tokenizer.json"

moe=$fixtures/qwen2/qwen2moe-micro
check "run qwen2-moe" 0 '"ids"' -- "$apr" run "$moe" --prompt-ids 206,495,189 -n 3 --json
check "inspect qwen2-moe" 0 "mlp.experts.3.up_proj.weight" -- "$apr" tensors "$moe"
check "import qwen2-moe to APR and run it" 0 "tensors" -- "$apr" import "$moe" -o "$work/moe.apr"
check "imported moe runs" 0 '"ids"' -- "$apr" run "$work/moe.apr" --prompt-ids 206,495,189 -n 3 --json
check "run --json reports MoE routing" 0 '"load_balance_loss"' -- "$apr" run "$moe" --prompt-ids 206,495,189 -n 3 --json
check "inspect --router-stats" 0 "layer +1: tokens per expert" -- "$apr" inspect "$moe" --router-stats --prompt-ids 1,2,3,4,5,6,7,8
check "inspect --router-stats json" 0 '"router_statistics"' -- "$apr" inspect "$moe" --router-stats --prompt-ids 1,2,3 --json
check "inspect --router-stats on a dense model" 2 "needs a mixture-of-experts model" -- "$apr" inspect "$micro" --router-stats
check "inspect --router-stats id outside the vocabulary" 2 "outside the vocabulary" -- "$apr" inspect "$moe" --router-stats --prompt-ids 999999
bytes_tokenizer=$(dirname "$0")/data/bytes.tokenizer.json  # 256 byte tokens + ChatML specials: fits the 512-id MoE
check "chat with qwen2-moe" 0 "." -- bash -c "printf 'Hi\nAgain\n' | '$apr' chat '$moe' --tokenizer '$bytes_tokenizer' -n 6 --seed 2"

check "synth a mixture-of-experts ensemble" 0 "mixture of 4 experts \(top-2\), widths 32-64-8" -- "$apr" synth moe --experts 4 --top-k 2 --widths 32,64,8 --dtype q8_0 -o "$work/ensemble.apr"
check "inspect an ensemble" 0 "mixture of experts: 4 experts, top-2" -- "$apr" inspect "$work/ensemble.apr"
printf '[%s]\n' "$(for r in 1 2 3 4 5 6; do printf '['; for i in $(seq 1 32); do printf '%s%d.%d' "$([ "$i" = 1 ] || echo ,)" $(( (r * i) % 5 - 2 )) $(( (r + i) % 10 )); done; printf ']'; [ "$r" = 6 ] || printf ','; done)" > "$work/rows.json"
check "ensemble router statistics" 0 "routing of 6 inputs \(top-2 of 4 experts\)" -- "$apr" inspect "$work/ensemble.apr" --router-stats --input "$work/rows.json"
check "ensemble router statistics json" 0 '"tokens_per_expert"' -- "$apr" inspect "$work/ensemble.apr" --router-stats --input "$work/rows.json" --json
check "ensemble router statistics need --input" 2 "needs --input" -- "$apr" inspect "$work/ensemble.apr" --router-stats
printf '[[1,2,3]]\n' > "$work/narrow-rows.json"
check "ensemble input rows of the wrong width" 2 "each input must be an array of 32 numbers" -- "$apr" inspect "$work/ensemble.apr" --router-stats --input "$work/narrow-rows.json"
printf '[[1,2,' > "$work/broken-rows.json"
check "ensemble input that is not JSON" 3 "not valid JSON" -- "$apr" inspect "$work/ensemble.apr" --router-stats --input "$work/broken-rows.json"
check "synth moe with top-k above the experts" 2 "--top-k 5: expected 1..--experts \(4\)" -- "$apr" synth moe --experts 4 --top-k 5 -o "$work/bad-ensemble.apr"

cp "$fixtures/qwen2/qwen2-v512/config.json" "$work/tiny-config.json"
check "synth qwen2 from a config as APR" 0 "qwen2 2 layers" -- "$apr" synth qwen2 --config "$work/tiny-config.json" --dtype q8_0 -o "$work/synth.apr"
check "synthetic APR runs" 0 '"ids"' -- "$apr" run "$work/synth.apr" --prompt-ids 1,2,3 -n 2 --json
check "synth qwen2 as GGUF" 0 "q4_0" -- "$apr" synth qwen2 --config "$work/tiny-config.json" -o "$work/synth.gguf"
check "synthetic GGUF runs" 0 '"ids"' -- "$apr" run "$work/synth.gguf" --prompt-ids 1,2,3 -n 2 --json
mkdir -p "$work/synth-st"
check "synth qwen2 as SafeTensors folder" 0 "safetensors" -- "$apr" synth qwen2 --config "$work/tiny-config.json" --dtype f16 -o "$work/synth-st/model.safetensors"
check "synthetic folder runs" 0 '"ids"' -- "$apr" run "$work/synth-st" --prompt-ids 1,2,3 -n 2 --json
check "synth bad extension" 2 "extension" -- "$apr" synth qwen2 --config "$work/tiny-config.json" -o "$work/synth.bin"
check "synth bad whisper size" 2 "unknown Whisper size" -- "$apr" synth whisper --dims huge -o "$work/w.apr"

gguf=$fixtures/qwen2/formats
check "inspect gguf" 0 "general.architecture: qwen2" -- "$apr" inspect "$gguf/qwen2-v512-q4_0.gguf"
check "tensors gguf json" 0 '"dtype": "q4_0"' -- "$apr" tensors "$gguf/qwen2-v512-q4_0.gguf" --json
check "run gguf" 0 '"ids"' -- "$apr" run "$gguf/qwen2-v512-q8_0.gguf" --prompt-ids 1,2,3 -n 2 --json
check "export gguf q8_0" 0 "matrices q8_0" -- "$apr" export "$v512" --format gguf --quantize q8_0 -o "$work/v512-q8.gguf"
check "exported gguf runs" 0 '"ids"' -- "$apr" run "$work/v512-q8.gguf" --prompt-ids 1,2,3 -n 2 --json
check "export gguf with the tokenizer" 0 "tokenizer of 151936 tokens" -- "$apr" export "$micro" --format gguf --quantize q8_0 -o "$work/micro-q8.gguf"
check "gguf runs a text prompt" 0 '"prompt_tokens": 2' -- "$apr" run "$work/micro-q8.gguf" --prompt "Hello world" -n 2 --json
check "export gguf bad dtype" 2 "expected f32" -- "$apr" export "$v512" --format gguf --quantize q3 -o "$work/x.gguf"
printf 'GGUF\x03\x00\x00\x00\xff\xff' > "$work/truncated.gguf"
check "truncated gguf" 3 "truncated.gguf" -- "$apr" inspect "$work/truncated.gguf"

# hf:// from a Hugging Face cache laid out by hand; the endpoint is a closed local port, so nothing
# can be downloaded (tests/format/test_hub.cpp covers downloads against a mock hub)
hub=$work/hf-cache commit=0123456789abcdef0123456789abcdef01234567
repo=$hub/models--org--micro
mkdir -p "$repo/refs" "$repo/snapshots/$commit" "$repo/.no_exist/$commit"
printf %s "$commit" > "$repo/refs/main"
for file in config.json model.safetensors tokenizer.json tokenizer_config.json; do ln -s "$(cd "$micro" && pwd)/$file" "$repo/snapshots/$commit/$file"; done
touch "$repo/.no_exist/$commit/generation_config.json"
export HF_HUB_CACHE=$hub HF_ENDPOINT=http://127.0.0.1:1
check "import hf:// from the cache" 0 "tensors" -- "$apr" import hf://org/micro -o "$work/hub.apr"
check "run hf:// from the cache" 0 '"prompt_tokens": 1' -- "$apr" run hf://org/micro --prompt "Hello" -n 2 --json
check "hf:// not cached, hub unreachable" 3 "hf://org/other: http://127.0.0.1:1/org/other/resolve/main/config.json: .*network error" -- "$apr" run hf://org/other --prompt "Hi"
check "hf:// malformed" 2 "hf://nothing: expected hf://org/name" -- "$apr" import hf://nothing -o "$work/x.apr"
unset HF_HUB_CACHE HF_ENDPOINT

whisper=$fixtures/whisper/whisper-micro
speech=$fixtures/whisper/audio
check "transcribe json has tokens and segments" 0 '"tokens": \[' -- "$apr" transcribe "$whisper" "$speech/a_hello.wav" --language en --temperature 0 --json
check "transcribe detects the language" 0 '"language_probs"' -- "$apr" transcribe "$whisper" "$speech/a_hello.wav" --temperature 0 -f json
check "transcribe srt" 0 "^00:00:[0-9]{2},[0-9]{3} --> " -- "$apr" transcribe "$whisper" "$speech/b_sentence.wav" --language en --temperature 0 -f srt
check "transcribe vtt" 0 "^WEBVTT" -- "$apr" transcribe "$whisper" "$speech/b_sentence.wav" --language en --temperature 0 -f vtt
check "transcribe 44.1 kHz stereo" 0 "" -- "$apr" transcribe "$whisper" "$speech/c_sentence_44k_stereo.wav" --language en --temperature 0
check "transcribe writes files" 0 "wrote .*a_hello.txt" -- "$apr" transcribe "$whisper" "$speech/a_hello.wav" --language en --temperature 0 -o "$work"
check "import whisper to f16 passes the whisper gate" 0 '"passed": true' -- "$apr" import "$whisper" -o "$work/whisper-f16.apr" --quantize f16 --json
check "transcribe an imported APR whisper" 0 '"tokens": \[' -- "$apr" transcribe "$work/whisper-f16.apr" "$speech/a_hello.wav" --tokenizer "$whisper" --language en --temperature 0 --json
check "convert whisper to q8_0 runs the whisper gate" 0 '"mean_kl"' -- "$apr" convert "$work/whisper-f16.apr" --quantize q8_0 --force -o "$work/whisper-q8.apr" --json
check "transcribe missing audio" 3 "nope.wav" -- "$apr" transcribe "$whisper" "$work/nope.wav"
check "transcribe text as audio" 3 "cannot read audio" -- "$apr" transcribe "$whisper" "$fixtures/whisper/whisper-micro/config.json"
check "transcribe bad format" 2 "" -- "$apr" transcribe "$whisper" "$speech/a_hello.wav" -f docx
check "transcribe --vad lists speech segments" 0 '"vad_segments": \[' -- "$apr" transcribe "$whisper" "$speech/b_sentence.wav" --vad --language en --temperature 0 --json
check "transcribe --vad on silence decodes nothing" 0 "VAD found 0 speech segments" -- "$apr" transcribe "$whisper" "$speech/e_silence.wav" --vad --language en
check "transcribe --list-devices" 0 "" -- "$apr" transcribe --list-devices
check "transcribe --mic from ALSA's null device" 0 "2.0 s of audio from 'null'" -- "$apr" transcribe "$whisper" --mic --mic-device null --duration 2 --language en --temperature 0
check "transcribe --mic missing device" 3 "capture device 'apr_no_such_device'" -- "$apr" transcribe "$whisper" --mic --mic-device apr_no_such_device
check "transcribe --mic with files" 2 "one of the two" -- "$apr" transcribe "$whisper" "$speech/a_hello.wav" --mic
check "transcribe without audio" 2 "one of the two" -- "$apr" transcribe "$whisper"
check "transcribe unknown language" 2 "unknown language" -- "$apr" transcribe "$whisper" "$speech/a_hello.wav" --language xx

# Voxtral-Realtime: ids as the reference decoded them (refs.json), streamed as offline, text through a tekken.json
voxtral=$fixtures/voxtral/voxtral-micro
check "transcribe voxtral: the reference's ids" 0 "^479 46 994 830 683 683 683 818 818 818 662 662 662 662 988 46 46 46 46 662 900 278 278 278$" -- "$apr" transcribe "$voxtral" "$speech/a_hello.wav"
check "transcribe voxtral without tekken.json says so" 0 "no tekken.json, so ids are printed" -- "$apr" transcribe "$voxtral" "$speech/a_hello.wav"
mkdir -p "$work/voxtral-tekken"
ln -sf "$(cd "$voxtral" && pwd)/params.json" "$(cd "$voxtral" && pwd)/consolidated.safetensors" "$work/voxtral-tekken/"
cp "$(dirname "$0")/../text/data/tekken-micro.json" "$work/voxtral-tekken/tekken.json"
"$apr" transcribe "$work/voxtral-tekken" "$speech/b_sentence.wav" --json > "$work/voxtral-offline.json" 2>/dev/null
check "transcribe voxtral --stream gives the offline ids and text" 0 "" -- bash -c "'$apr' transcribe '$work/voxtral-tekken' '$speech/b_sentence.wav' --stream --json 2>/dev/null | cmp - '$work/voxtral-offline.json'"
check "transcribe voxtral --stream --encoder-batch-ms 480 gives the offline ids and text" 0 "" -- bash -c "'$apr' transcribe '$work/voxtral-tekken' '$speech/b_sentence.wav' --stream --encoder-batch-ms 480 --json 2>/dev/null | cmp - '$work/voxtral-offline.json'"
check "transcribe voxtral --encoder-batch-ms off the 80 ms grid" 2 "--encoder-batch-ms 100: expected a multiple of 80 ms" -- "$apr" transcribe "$voxtral" "$speech/a_hello.wav" --encoder-batch-ms 100
check "transcribe voxtral prints text with tekken.json" 0 '"text": "' -- cat "$work/voxtral-offline.json"
check "transcribe voxtral --tokenizer names the file" 0 "delay 480 ms\)" -- "$apr" transcribe "$voxtral" "$speech/a_hello.wav" --tokenizer "$work/voxtral-tekken/tekken.json"
check "transcribe voxtral --tokenizer must be a tekken file" 2 "Tekken file" -- "$apr" transcribe "$voxtral" "$speech/a_hello.wav" --tokenizer "$micro/tokenizer.json"
check "transcribe voxtral --delay-ms" 0 '"delay_ms": 160' -- "$apr" transcribe "$voxtral" "$speech/a_hello.wav" --delay-ms 160 --json
check "transcribe voxtral --delay-ms off the 80 ms grid" 2 "expected a multiple of 80 ms from 80 to 2400" -- "$apr" transcribe "$voxtral" "$speech/a_hello.wav" --delay-ms 100
check "transcribe voxtral --delay-ms too long" 2 "expected a multiple of 80 ms" -- "$apr" transcribe "$voxtral" "$speech/a_hello.wav" --delay-ms 2480
check "transcribe voxtral --mic from ALSA's null device" 0 "null: 1.0 s of audio" -- "$apr" transcribe "$work/voxtral-tekken" --mic --mic-device null --duration 1
check "transcribe voxtral --mic missing device" 3 "capture device 'apr_no_such_device'" -- "$apr" transcribe "$voxtral" --mic --mic-device apr_no_such_device

# Voxtral: a Mistral folder imported to APR (tokenizer embedded) and random models at any dims
check "import voxtral folder" 0 "voxtral-ids.apr: .* tensors" -- "$apr" import "$voxtral" -o "$work/voxtral-ids.apr"
check "the imported voxtral gives the reference's ids" 0 "^479 46 994 830 683 683 683 818 818 818 662 662 662 662 988 46 46 46 46 662 900 278 278 278$" -- "$apr" transcribe "$work/voxtral-ids.apr" "$speech/a_hello.wav"
"$apr" import "$work/voxtral-tekken" -o "$work/voxtral.apr" > /dev/null 2>&1
check "import voxtral embeds tekken.json" 0 '"text": "' -- "$apr" transcribe "$work/voxtral.apr" "$speech/b_sentence.wav" --json
check "import voxtral --quantize q8_0 runs the Voxtral gate" 0 '"top1_agreement"' -- "$apr" import "$work/voxtral-tekken" --quantize q8_0 --force --json -o "$work/voxtral-q8_0.apr"
check "transcribe the imported q8_0 voxtral" 0 "q8_0, delay 480 ms" -- "$apr" transcribe "$work/voxtral-q8_0.apr" "$speech/a_hello.wav"
check "convert a voxtral APR to q4_0 runs the Voxtral gate" 0 '"top1_agreement"' -- "$apr" convert "$work/voxtral.apr" --quantize q4_0 --force --json -o "$work/voxtral-q4_0.apr"
check "synth voxtral at the micro dims writes a loadable folder" 0 "voxtral realtime \(encoder 2 × 64 wide, decoder 2 × 64 wide, vocab 1024\), bf16" -- "$apr" synth voxtral --config "$voxtral/params.json" -o "$work/voxtral-synth"
check "transcribe the synthesized voxtral folder" 0 "Voxtral, bf16, delay 480 ms" -- "$apr" transcribe "$work/voxtral-synth" "$speech/a_hello.wav"
check "synth voxtral .apr in q4_0" 0 "q4_0 weights" -- "$apr" synth voxtral --config "$voxtral/params.json" --dtype q4_0 -o "$work/voxtral-synth.apr"
check "transcribe the synthesized q4_0 voxtral" 0 "Voxtral, q4_0" -- "$apr" transcribe "$work/voxtral-synth.apr" "$speech/a_hello.wav"
check "synth voxtral refuses a .gguf" 2 "written as a folder or an .apr file" -- "$apr" synth voxtral --config "$voxtral/params.json" -o "$work/voxtral.gguf"

# word error rate of transcripts
printf 'a\tturn the lights on\nb\tset a timer for five minutes\n' > "$work/refs.tsv"
printf 'b\tset the timer for five minutes\na\tturn the lights on\n' > "$work/hyps.tsv"
check "eval wer pairs utterances by id" 0 "WER 10.00% \(1 word errors in 10 words, 2 utterances\)" -- "$apr" eval wer "$work/refs.tsv" "$work/hyps.tsv"
check "eval wer --json" 0 '"wer": 0.1' -- "$apr" eval wer "$work/refs.tsv" "$work/hyps.tsv" --json
check "eval wer --max-wer fails above it" 1 "above --max-wer 5.00%" -- "$apr" eval wer "$work/refs.tsv" "$work/hyps.tsv" --max-wer 0.05
printf 'a\tturn the lights on\n' > "$work/short-hyps.tsv"
check "eval wer names a missing hypothesis" 3 "no hypothesis for 'b'" -- "$apr" eval wer "$work/refs.tsv" "$work/short-hyps.tsv"
check "eval wer of a missing file" 3 "nope.tsv" -- "$apr" eval wer "$work/refs.tsv" "$work/nope.tsv"

check "convert --gate overrides one limit (the others still apply)" 1 '"min_logit_cosine": 0.5' -- "$apr" convert "$work/micro.apr" --quantize q8_0 --gate min_logit_cosine=0.5 -o "$work/gated.apr" --json
check "convert --gate with every limit relaxed passes" 0 "tensors" -- "$apr" convert "$work/micro.apr" --quantize q8_0 --gate max_mean_kl=10 --gate min_top1_agreement=0 --gate min_top10_overlap=0 --gate min_logit_cosine=0 --gate min_hidden_cosine=0 -o "$work/gated.apr"
check "convert --gate with an unknown limit" 2 "NAME one of max_mean_kl" -- "$apr" convert "$work/micro.apr" --quantize q8_0 --gate nonsense=1 -o "$work/gated.apr"
check "convert --gate with a value out of range" 2 "is not a limit in range" -- "$apr" convert "$work/micro.apr" --quantize q8_0 --gate min_top1_agreement=1.5 -o "$work/gated.apr"

finish
