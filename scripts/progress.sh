# Progress for long set-up steps, sourced by scripts/setup.sh.
#
# `step LABEL LOG CMD...` runs CMD in the foreground (Ctrl-C stops it as usual) with its whole
# output in LOG, and prints a heartbeat every $HEARTBEAT_S seconds (default 30): the time spent so
# far and the latest line of LOG that says where the step is (cmake's "[ 42%] Building …" for the
# llama-server build, pip's "Downloading …"/"Collecting …" otherwise). A step that fails prints
# the end of its log. Without this a 30-minute compile looked exactly like a hang.

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# "12m05s" for a number of seconds
elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# the line of LOG that best says where a step is: cmake's last "[ NN%]" line, else its last line
where_now() {
  local line
  line=$(grep -aE '^\[ *[0-9]+%\]' "$1" 2>/dev/null | tail -n 1 || true)
  [ -n "$line" ] || line=$(grep -av '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 || true)
  printf '%s' "${line:0:110}"
}

step() {
  local label=$1 log=$2
  shift 2
  local start=$SECONDS every=${HEARTBEAT_S:-30} rc=0
  : >"$log"
  (
    # the heartbeat stops with the step (killed below) or when setup.sh itself is gone
    last=$start
    while kill -0 "$$" 2>/dev/null; do
      sleep 1
      if [ $((SECONDS - last)) -ge "$every" ]; then
        last=$SECONDS
        say "  … $label: $(elapsed $((SECONDS - start))) elapsed; $(where_now "$log")"
      fi
    done
  ) &
  local beat=$!
  "$@" >"$log" 2>&1 || rc=$?
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    say "$label failed after $(elapsed $((SECONDS - start))) (exit $rc); the end of $log:"
    tail -n 40 "$log" >&2
    return "$rc"
  fi
  say "  $label: done in $(elapsed $((SECONDS - start)))"
}
