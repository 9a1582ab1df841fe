# The check() harness the CLI test scripts source: each check runs a command, compares its exit
# status and greps its output (stdout and stderr), and counts; finish() prints the counts and
# fails the script when any check failed.
passed=0 failed=0

check() {  # check NAME EXPECTED_EXIT GREP_PATTERN -- command...
  local name=$1 expected=$2 pattern=$3
  shift 4
  local output status
  output=$("$@" 2>&1)
  status=$?
  if [ "$status" -ne "$expected" ]; then
    echo "FAIL $name: exit $status, expected $expected"; echo "$output" | tail -5; failed=$((failed + 1)); return
  fi
  if [ -n "$pattern" ] && ! grep -qE -- "$pattern" <<<"$output"; then
    echo "FAIL $name: output does not match /$pattern/"; echo "$output" | tail -5; failed=$((failed + 1)); return
  fi
  echo "ok   $name"; passed=$((passed + 1))
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
