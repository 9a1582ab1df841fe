#!/usr/bin/env bash
# apr eval and apr pipeline end to end on the trained fortune-lm (models/fortune-lm): real
# perplexities, consistency between its dtypes, a golden suite, the Pareto report, and the
# pipeline's stages, resume and HALT reasons; failure paths included.
# usage: eval_test.sh APR_BINARY MODELS_DIR FIXTURES_DIR WORK_DIR
set -u
apr=$1 models=$(cd "$2" && pwd) fixtures=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"

. "$(dirname "$0")/harness.sh"

json_field() {  # json_field FILE PYTHON_EXPRESSION_OVER_d
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

lm=$models/fortune-lm
f16=$lm/fortune-lm-f16.apr q8=$lm/fortune-lm-q8_0.apr text=$lm/heldout.txt
"$apr" convert "$f16" --quantize q4_0 --force -o "$work/fortune-lm-q4_0.apr" >/dev/null 2>&1
q4=$work/fortune-lm-q4_0.apr

# perplexity: the held-out fortunes score far below the unigram baseline of the model card
check "perplexity text" 0 "perplexity [0-9.]+ \(95% CI" -- "$apr" eval perplexity "$f16" --text "$text" --max-tokens 4096
"$apr" eval perplexity "$f16" --text "$text" --json > "$work/ppl.json" 2>/dev/null
unigram=$(json_field "$lm/metrics.json" 'd["heldout"]["unigram_perplexity"]')
check "perplexity below a quarter of the unigram baseline" 0 "" -- \
  python3 -c "import json; d=json.load(open('$work/ppl.json')); assert d['tokens'] > 10000 and 1 < d['ppl_low'] < d['perplexity'] < d['ppl_high'] < $unigram / 4, d"
check "perplexity missing text file" 3 "cannot open" -- "$apr" eval perplexity "$f16" --text "$work/none.txt"
check "perplexity without --text" 2 "text is required" -- "$apr" eval perplexity "$f16"
check "perplexity bad stride" 2 "stride" -- "$apr" eval perplexity "$f16" --text "$text" --context 64 --stride 65

# consistency: q8_0 agrees with f16; random weights of the same shape do not
check "consistency f16 vs q8_0 passes" 0 '"passed": true' -- "$apr" eval consistency "$f16" "$q8" --text "$text" --json
"$apr" synth qwen2 --config "$lm/config.json" --dtype f16 --seed 3 -o "$work/random.apr" >/dev/null 2>&1
check "consistency vs random weights fails" 1 "FAIL" -- "$apr" eval consistency "$f16" "$work/random.apr" --text "$text"
check "consistency vocabularies differ" 1 "vocabularies differ" -- "$apr" eval consistency "$f16" "$fixtures/qwen2/qwen2-micro"
check "consistency bad threshold" 2 "" -- "$apr" eval consistency "$f16" "$q8" --threshold 1.5

# golden prompts: the suite's expectations hold for the trained model, not for random weights
check "golden suite passes" 0 "pass rate" -- "$apr" eval golden "$q8" --suite "$here/fortune_golden.json" --min-pass-rate 0.8
check "golden json" 0 '"tokens_per_second"' -- "$apr" eval golden "$q8" --suite "$here/fortune_golden.json" --runs 2 --json
echo '{"runs": 2, "cases": [{"name": "impossible", "prompt": "Tell me a fortune.", "expect": "QQQQZZZZ", "max_tokens": 8}]}' > "$work/impossible.json"
check "golden below the pass rate exits 1" 1 "pass rate 0.0%" -- "$apr" eval golden "$q8" --suite "$work/impossible.json" --min-pass-rate 0.5
echo '{"cases": [{"prompt": "x", "expect": "(unclosed"}]}' > "$work/bad_suite.json"
check "golden bad regex" 3 "not a valid regex" -- "$apr" eval golden "$q8" --suite "$work/bad_suite.json"

cat > "$work/suite.yaml" <<'YAML'
runs: 2
temperature: 0.7
cases:
  - name: fortune
    prompt: Tell me a fortune.
    expect: '\b([Tt]he|[Aa]|[Yy]ou|[Ii]s|of|to|and|in|[Ii]t|be|not|I)\b'
    max_tokens: 32
YAML
check "golden suite in YAML" 0 '"runs": 2' -- "$apr" eval golden "$q8" --suite "$work/suite.yaml" --json
printf 'cases:\n  - prompt: [unclosed\n' > "$work/broken.yaml"
check "golden malformed YAML names the line" 3 "broken.yaml: line [0-9]+" -- "$apr" eval golden "$q8" --suite "$work/broken.yaml"

# Pareto report over the three dtypes
check "pareto report" 0 "Pareto" -- "$apr" eval pareto "$f16" "$q8" "$q4" --text "$text" --max-tokens 2048 --repetitions 1 \
  -o "$work/pareto.md" --svg "$work/pareto.svg"
"$apr" eval pareto "$f16" "$q8" "$q4" --text "$text" --max-tokens 2048 --repetitions 1 --json > "$work/pareto.json" 2>/dev/null
check "pareto json: kl 0 for the reference, small for q8_0" 0 "" -- \
  python3 -c "import json; v=json.load(open('$work/pareto.json'))['variants']; assert len(v)==3 and v[0]['kl_divergence']==0 and 0 < v[1]['kl_divergence'] < v[2]['kl_divergence'] and v[1]['size_bytes'] < v[0]['size_bytes'], v"
check "pareto files written" 0 "" -- test -s "$work/pareto.md" -a -s "$work/pareto.svg"
check "pareto different vocabularies" 1 "logits" -- "$apr" eval pareto "$f16" "$fixtures/qwen2/qwen2-micro" --text "$text"

# pipeline: every stage, then a rerun that skips them all, then HALT reasons
cat > "$work/models.json" <<JSON
{"models": [{"name": "fortune", "source": "$f16", "text": "$text", "levels": ["q8_0"],
             "golden": "$here/fortune_golden.json", "min_pass_rate": 0.8}]}
JSON
check "pipeline runs every stage" 0 "\| fortune \| pareto \| ok" -- "$apr" pipeline --models "$work/models.json" --work "$work/pipe"
check "pipeline rerun is cached" 0 "\| fortune \| consistency q8_0 \| cached" -- "$apr" pipeline --models "$work/models.json" --work "$work/pipe"
check "pipeline rerun gates on the cached perplexities" 0 "\| ppl gate q8_0 \| ok \| 0.00 \| [-+][0-9.]+% vs reference" -- \
  "$apr" pipeline --models "$work/models.json" --work "$work/pipe"
check "pipeline report files" 0 "" -- test -s "$work/pipe/fortune/pareto.md" -a -s "$work/pipe/fortune/stages.json"
cat > "$work/strict.json" <<JSON
{"models": [{"name": "strict", "source": "$f16", "text": "$text", "levels": ["q4_0"], "max_perplexity_increase": 0.0001}]}
JSON
check "pipeline halts a level past its perplexity limit" 1 "ppl gate q4_0 \| HALT|convert q4_0 \| HALT" -- "$apr" pipeline --models "$work/strict.json" --work "$work/pipe"
echo '{"models": [{"name": "gone", "source": "'"$work"'/missing.apr", "text": "'"$text"'"}]}' > "$work/missing.json"
printf 'models:\n  - name: yaml\n    source: "%s"\n    text: "%s"\n' "$f16" "$text" > "$work/models.yaml"
check "pipeline file in YAML" 0 "\| yaml \| pareto \| ok" -- "$apr" pipeline --models "$work/models.yaml" --work "$work/pipe"
check "pipeline missing source halts" 1 "fetch \| HALT .*no such file" -- "$apr" pipeline --models "$work/missing.json" --work "$work/pipe"
echo '{"models": [{"name": "x"}]}' > "$work/incomplete.json"
check "pipeline file missing fields" 3 "models\[0\].source" -- "$apr" pipeline --models "$work/incomplete.json"
echo '{"models": [' > "$work/broken.json"
check "pipeline malformed json" 3 "not a JSON object" -- "$apr" pipeline --models "$work/broken.json"

finish
