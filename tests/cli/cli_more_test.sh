#!/usr/bin/env bash
# Integration tests of the apr commands tokenize, diff, tree, hex, lint, canary, merge, bench, tui:
# stdout, JSON and exit codes on the fixtures, including the failure paths (missing file,
# corrupt file, wrong format, usage errors).
# usage: cli_more_test.sh APR_BINARY FIXTURES_DIR WORK_DIR
set -u
apr=$1 fixtures=$2 work=$3
rm -rf "$work" && mkdir -p "$work"

. "$(dirname "$0")/harness.sh"
# json NAME PYTHON_EXPRESSION -- command...: stdout parses as JSON and the expression on it (`j`) is true
json() {
  local name=$1 expression=$2
  shift 3
  if "$@" 2>/dev/null | python3 -c "import json, sys; j = json.load(sys.stdin); sys.exit(0 if ($expression) else 1)"; then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name: JSON check '$expression' failed"; failed=$((failed + 1))
  fi
}

micro=$fixtures/qwen2/qwen2-micro
v512=$fixtures/qwen2/qwen2-v512
gguf=$fixtures/qwen2/formats
small=$fixtures/apr/small_v2.apr
cp "$small" "$work/small.apr" && chmod u+w "$work/small.apr"
printf 'not a model' > "$work/garbage.bin"

# tokenize: ids of the Qwen tokenizer as in tokenizer/qwen_public.jsonl
check "tokenize text" 0 "9707  Hello" -- "$apr" tokenize "$micro" "Hello world"
json "tokenize json ids" 'j["ids"] == [9707, 1879] and j["count"] == 2 and j["pieces"][1] == "\u0120world"' -- "$apr" tokenize "$micro" "Hello world" --json
check "tokenize ids only" 0 "^86598,26,76824,25,325,49600,76351$" -- "$apr" tokenize "$micro" "semi;colon:separated,list" --ids-only
check "tokenize stdin" 0 "^562$" -- bash -c "printf ok | '$apr' tokenize '$micro' --ids-only"
check "tokenize special token" 0 "151643  <\|endoftext\|>  \(special\)" -- "$apr" tokenize "$micro" "<|endoftext|>"
json "tokenize --no-special splits it" 'j["count"] > 1' -- "$apr" tokenize "$micro" "<|endoftext|>" --no-special --json
check "decode" 0 "^Hello world$" -- "$apr" tokenize "$micro" --decode 9707,1879
json "decode json" 'j["text"] == "Hello world"' -- "$apr" tokenize "$micro" --decode 9707,1879 --json
check "decode id outside the vocabulary" 2 "outside the vocabulary" -- "$apr" tokenize "$micro" --decode 99999999
check "decode not an id" 2 "" -- "$apr" tokenize "$micro" --decode 1,x
check "tokenize text and --decode" 2 "excludes" -- "$apr" tokenize "$micro" "Hi" --decode 1
# the JSON-lines protocol: one answer per line, errors name the line and keep the alignment
lines=$(printf '{"text": "Hello world"}\n{"ids": [9707, 1879]}\n\n{"text": "<|endoftext|>"}\n' | "$apr" tokenize "$micro" --jsonl)
check "tokenize --jsonl" 0 '^\{"ids":\[9707,1879\]\} \{"text":"Hello world"\} \{"ids":\[151643\]\}$' -- echo $lines
check "tokenize --jsonl --no-special" 0 '^\{"ids":\[27,91' -- bash -c "echo '{\"text\": \"<|endoftext|>\"}' | '$apr' tokenize '$micro' --jsonl --no-special"
check "tokenize --jsonl --skip-special" 0 '^\{"text":"Hi"\}$' -- bash -c "echo '{\"ids\": [151643, 13048]}' | '$apr' tokenize '$micro' --jsonl --skip-special"
check "tokenize --jsonl malformed line" 1 '^\{"error":"line 2: not JSON"\}$' -- bash -c "printf '{\"text\": \"a\"}\n{\"text\": \n' | '$apr' tokenize '$micro' --jsonl"
check "tokenize --jsonl bad id" 1 'line 1: ids\[1\] is not an id' -- bash -c "echo '{\"ids\": [1, -5]}' | '$apr' tokenize '$micro' --jsonl"
check "tokenize --jsonl wrong field" 1 'expected an object with' -- bash -c "echo '[1]' | '$apr' tokenize '$micro' --jsonl"
check "tokenize --jsonl from --file" 0 '^\{"ids":\[9707\]\}$' -- bash -c "echo '{\"text\": \"Hello\"}' > '$work/lines.jsonl' && '$apr' tokenize '$micro' --jsonl -f '$work/lines.jsonl'"
check "tokenize tokenizer.json directly" 0 "^9707,1879$" -- "$apr" tokenize "$micro/tokenizer.json" "Hello world" --ids-only
check "tokenize whisper tiktoken folder" 0 "[0-9]+,[0-9]+" -- "$apr" tokenize "$fixtures/whisper/whisper-micro" "Hello world" --ids-only
check "tokenize missing model" 3 "no such file" -- "$apr" tokenize "$work/none" "Hi"
check "tokenize gguf without tokenizer" 3 "no tokenizer" -- "$apr" tokenize "$gguf/qwen2-v512-f32.gguf" "Hi"
check "tokenize pickle refused" 3 "never unpickles" -- "$apr" tokenize "$gguf/malicious.pkl" "Hi"

# diff
check "diff same file" 0 "SAME" -- "$apr" diff "$v512" "$v512"
check "diff safetensors vs gguf f32 (names mapped)" 0 "27 tensors compared, 27 equal" -- "$apr" diff "$v512" "$gguf/qwen2-v512-f32.gguf"
check "diff vs q8_0 differs" 1 "DIFFERENT" -- "$apr" diff "$v512" "$gguf/qwen2-v512-q8_0.gguf"
check "diff vs q8_0 within tolerance" 0 "within 0.05" -- "$apr" diff "$v512" "$gguf/qwen2-v512-q8_0.gguf" --tolerance 0.05
json "diff json statistics" 'j["same"] == False and j["max_abs"] > 0 and all("max_abs" in t for t in j["tensors"])' -- "$apr" diff "$v512" "$gguf/qwen2-v512-q4_0.gguf" --json
check "diff different models" 1 "shape" -- "$apr" diff "$micro" "$v512"
check "diff metadata of the same format" 1 "metadata: [1-9]" -- "$apr" diff "$fixtures/apr/qwen2-v512.apr" "$fixtures/apr/qwen2-v512-aprq4.apr" --no-values
check "diff --no-values" 0 "27 tensors compared, 27 equal" -- "$apr" diff "$v512" "$gguf/qwen2-v512-f32.gguf" --no-values
check "diff missing file" 3 "error: .*none.apr" -- "$apr" diff "$v512" "$work/none.apr"
check "diff garbage" 3 "unknown format" -- "$apr" diff "$v512" "$work/garbage.bin"
check "diff needs two files" 2 "" -- "$apr" diff "$v512"
check "diff negative tolerance" 2 "" -- "$apr" diff "$v512" "$v512" --tolerance -1

# tree
check "tree hierarchy" 0 "layers  \(2[0-9] tensors\)" -- "$apr" tree "$v512"
check "tree leaves" 0 "q_proj" -- "$apr" tree "$fixtures/apr/qwen2-v512.apr"
check "tree depth 1" 0 "└── model  \(26 tensors\)" -- "$apr" tree "$v512" --depth 1
json "tree json" 'j["tensors"] == 27 and any(c["name"] == "model" for c in j["children"])' -- "$apr" tree "$v512" --json
json "tree gguf" 'any(c["name"] == "blk" for c in j["children"])' -- "$apr" tree "$gguf/qwen2-v512-q8_0.gguf" --json
check "tree filter nothing" 2 "no tensor name" -- "$apr" tree "$v512" --filter nothing_like_this
check "tree missing" 3 "" -- "$apr" tree "$work/none.apr"

# hex
check "hex apr header fields" 0 "header.tensor_count +6" -- "$apr" hex "$small"
check "hex apr index entries" 0 "index\[0\].name +\"a.f32\"" -- "$apr" hex "$small"
check "hex apr footer" 0 "footer_checksum" -- "$apr" hex "$small"
json "hex json regions" 'any(r["label"] == "index[5].size" for r in j["regions"])' -- "$apr" hex "$small" --json
check "hex --tensor" 0 "data.a.f32" -- "$apr" hex "$small" --tensor a.f32
check "hex --offset" 0 "^00000000  41 50 52 00" -- "$apr" hex "$small" --offset 0 --limit 4
check "hex --header only" 0 "header.data_offset" -- "$apr" hex "$small" --header
check "hex gguf header" 0 "header.metadata_kv_count" -- "$apr" hex "$gguf/qwen2-v512-q4_0.gguf" --header
check "hex safetensors header" 0 "header.json_length" -- "$apr" hex "$v512/model.safetensors"
check "hex unknown tensor" 2 "no such tensor" -- "$apr" hex "$small" --tensor nope
check "hex offset past the end" 2 "past the end" -- "$apr" hex "$small" --offset 99999999
check "hex wrong format" 3 "hex labels" -- "$apr" hex "$work/garbage.bin"
check "hex missing" 3 "" -- "$apr" hex "$work/none.apr"

# lint
check "lint finds a missing license" 1 "missing-license" -- "$apr" lint "$fixtures/apr/qwen2-v512.apr"
check "lint small file with its gaps ignored" 0 "clean" -- "$apr" lint "$small" --ignore missing-metadata
json "lint json" 'j["clean"] == False and any(f["code"] == "missing-license" for f in j["findings"])' -- "$apr" lint "$fixtures/apr/qwen2-v512.apr" --json
cp "$small" "$work/unaligned.apr" && chmod u+w "$work/unaligned.apr"
printf '\x04' | dd of="$work/unaligned.apr" bs=1 seek=729 conv=notrunc 2>/dev/null   # a.f32's data offset 0 -> 4
check "lint unaligned data" 1 "\[unaligned\] tensor 'a.f32'" -- "$apr" lint "$work/unaligned.apr"
cp "$small" "$work/unsorted.apr" && chmod u+w "$work/unsorted.apr"
printf 'z' | dd of="$work/unsorted.apr" bs=1 seek=706 conv=notrunc 2>/dev/null      # "a.f32" -> "z.f32"
check "lint unsorted index" 1 "unsorted-index" -- "$apr" lint "$work/unsorted.apr"
check "lint gguf" 1 "general.license" -- "$apr" lint "$gguf/qwen2-v512-f32.gguf"
check "lint missing" 3 "" -- "$apr" lint "$work/none.apr"
check "lint garbage" 3 "unknown format" -- "$apr" lint "$work/garbage.bin"

# canary
check "canary create" 0 "3 cases recorded" -- "$apr" canary create "$v512" -o "$work/canary.json"
check "canary check same model" 0 "passed" -- "$apr" canary check "$v512" "$work/canary.json"
check "canary check the same weights as GGUF" 0 "passed" -- "$apr" canary check "$gguf/qwen2-v512-f32.gguf" "$work/canary.json"
json "canary check json" 'j["passed"] and len(j["cases"]) == 3' -- "$apr" canary check "$v512" "$work/canary.json" --json
check "canary check q4_0 fails" 1 "FAILED" -- "$apr" canary check "$gguf/qwen2-v512-q4_0.gguf" "$work/canary.json"
check "canary custom inputs" 0 "2 cases" -- "$apr" canary create "$v512" -o "$work/canary2.json" --input 1,2,3 --input 7
check "canary other vocabulary" 1 "vocabulary" -- "$apr" canary check "$micro" "$work/canary.json"
check "canary not a canary file" 3 "not a canary file" -- "$apr" canary check "$v512" "$v512/config.json"
check "canary input outside the vocabulary" 2 "outside the vocabulary" -- "$apr" canary create "$v512" -o "$work/x.json" --input 100000
check "canary without subcommand" 2 "" -- "$apr" canary
check "canary missing model" 3 "" -- "$apr" canary create "$work/none" -o "$work/x.json"

# merge
check "merge average" 0 "27 tensors merged" -- "$apr" merge "$v512" "$gguf/qwen2-v512-q8_0.gguf" -o "$work/avg.apr"
check "merged model runs" 0 '"ids"' -- "$apr" run "$work/avg.apr" --prompt-ids 1,2,3 -n 2 --json
check "average of a model with itself equals it" 0 "SAME" -- bash -c "'$apr' merge '$v512' '$v512' -o '$work/self.apr' >/dev/null && '$apr' diff '$v512' '$work/self.apr'"
check "weighted 1,0 equals the first" 0 "SAME" -- bash -c "'$apr' merge '$v512' '$gguf/qwen2-v512-q4_0.gguf' --strategy weighted --weights 1,0 -o '$work/w.apr' >/dev/null && '$apr' diff '$v512' '$work/w.apr'"
check "task arithmetic with scale 0 is the base" 0 "SAME" -- bash -c "'$apr' merge '$gguf/qwen2-v512-q4_0.gguf' --strategy task-arithmetic --base-model '$v512' --scale 0 -o '$work/t.apr' >/dev/null && '$apr' diff '$v512' '$work/t.apr'"
json "merge json" 'j["merged"] and j["tensors"] == 27' -- "$apr" merge "$v512" "$v512" -o "$work/j.apr" --json
check "merge different architectures" 1 "is \[" -- "$apr" merge "$v512" "$micro" -o "$work/bad.apr"
check "nothing written after a failed merge" 1 "" -- test -e "$work/bad.apr"
check "merge one model" 2 "at least two" -- "$apr" merge "$v512" -o "$work/x.apr"
check "merge weights count" 2 "2 models" -- "$apr" merge "$v512" "$v512" --strategy weighted --weights 1 -o "$work/x.apr"
check "merge bad strategy" 2 "" -- "$apr" merge "$v512" "$v512" --strategy ties -o "$work/x.apr"
check "merge missing model" 3 "" -- "$apr" merge "$v512" "$work/none.apr" -o "$work/x.apr"

# bench
check "bench table" 0 "\| pp16 .*\| tg8 " -- bash -c "'$apr' bench '$v512' -p 16 -n 8 -r 3 2>&1 | tr '\n' '|'"
json "bench json" 'len(j["tests"]) == 2 and all(t["tok_per_s"] > 0 and len(t["runs"]) == 2 for t in j["tests"])' -- "$apr" bench "$v512" -p 8 -n 4 -r 2 --warmup 0 --json
check "bench gguf q4_0" 0 "tg4" -- "$apr" bench "$gguf/qwen2-v512-q4_0.gguf" -p 0 -n 4 -r 1
check "bench nothing to measure" 2 "nothing to measure" -- "$apr" bench "$v512" -p 0 -n 0
check "bench zero repetitions" 2 "" -- "$apr" bench "$v512" -r 0
check "bench missing model" 3 "" -- "$apr" bench "$work/none"

# tui: the histogram as JSON, a replayed key sequence, and (when tmux is there) a real terminal
json "tui json histogram covers every value" 'sum(j["histogram"]["counts"]) == 6 and j["tensor"] == "a.f32"' -- "$apr" tui "$small" --json
json "tui json --tensor" 'j["tensor"] == "model.norm.weight" and len(j["histogram"]["counts"]) == 5' -- "$apr" tui "$v512" --json --tensor model.norm.weight --bins 5
check "tui replayed keys draw the list and the histogram" 0 "lm_head.weight.*mean" -- bash -c "TERM=xterm '$apr' tui '$v512' --keys 'jj<down><tab><tab>q' | tr -d '\033' | tr '\n' ' '"
check "tui without a terminal" 2 "needs a terminal" -- bash -c "'$apr' tui '$v512' </dev/null >/dev/null"
check "tui unknown tensor" 2 "no such tensor" -- "$apr" tui "$v512" --json --tensor nope
check "tui missing file" 3 "" -- "$apr" tui "$work/none.apr"
if command -v tmux >/dev/null; then
  session=apr-tui-test-$$
  tmux -L "$session" new-session -d -x 160 -y 40 "TERM=xterm '$apr' tui '$v512'"
  sleep 1; tmux -L "$session" send-keys j j; sleep 0.5
  check "tui under tmux shows the third tensor's histogram" 0 "model.layers.0.input_layernorm.weight.*#" -- bash -c "tmux -L '$session' capture-pane -p | tr '\n' ' '"
  tmux -L "$session" send-keys Tab; sleep 0.5
  check "tui under tmux: Tab shows the metadata" 0 "Tab: tensors" -- tmux -L "$session" capture-pane -p
  tmux -L "$session" send-keys q; sleep 0.5
  check "tui under tmux: q quits" 1 "" -- tmux -L "$session" has-session
  tmux -L "$session" kill-server 2>/dev/null
fi

finish
