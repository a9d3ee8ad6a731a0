# The timing method shared by bench/backup.sh and bench/vmdk.sh (sourced, not run).
#
# A comparison runs N rounds (RUNS, default 3). In each round every tool of the comparison
# runs once, in the listed order on odd rounds and in the reverse order on even rounds, so a
# drift of the machine (this VM's disk speed varies by 2× over minutes) hits every tool alike.
# Before every run: the tool's prep function (outputs removed or set aside, repository reset), `sync`,
# the page cache emptied (`echo 3 > /proc/sys/vm/drop_caches`), then the tool's input read
# once (WARM=1, the default; WARM=0 leaves the input cold), so no tool pays for reclaiming
# another's pages and every tool starts from the same warm input and a cold, empty output.
# Every run is recorded (MD/runs.tsv and a readable MD/runs.log): wall time of the command,
# wall time including a trailing `sync` (the durable time), user + system CPU seconds and
# peak RSS (GNU time). A comparison is reported per tool as the median of its runs (time,
# CPU), the largest peak RSS, and the median over the rounds of the reference tool's time
# divided by this tool's time in the same round (times including the trailing sync).
#
# Use: set MD (a work directory), define each tool with def_tool, run `pairs GROUP TOOL...`,
# then `report GROUP REF` prints a Markdown table and writes the medians to MD/medians.sh
# (sourced: M_GROUP_TOOL_{ws,w,cpu,rss}, R_GROUP_TOOL = median ratio REF ÷ TOOL).

RUNS=${RUNS:-3}
WARM=${WARM:-1}
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 1; }

# def_tool NAME LABEL PREP_FN INPUTS CMD... : INPUTS is a space-separated list of files and
# directories read once before each run (empty: none); PREP_FN may be "" (none).
def_tool() {
  local name=$1
  declare -g "LABEL_$name=$2" "PREP_$name=$3" "INPUT_$name=$4"
  shift 4
  declare -g -a "CMD_$name"
  local -n _cmd="CMD_$name"
  _cmd=("$@")
}

read_inputs() {
  local p
  for p in "$@"; do
    if [ -d "$p" ]; then
      find "$p" -type f -print0 | xargs -0 -r cat > /dev/null
    elif [ -e "$p" ]; then
      cat "$p" > /dev/null
    fi
  done
}

drop_caches() {
  sync
  if ! echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then
    echo "cannot drop the page cache (run as root): the runs are not comparable" >&2
    exit 1
  fi
}

# Outputs that prep functions replace (repositories of thousands of files) are set aside
# with `discard`, not deleted: ext4 without a journal (this VM's root file system) does
# not reuse an inode freed within the last minute
# (six while its inode table block is dirty, as it is while files are being created) and
# looks at every such inode again each time it allocates one (`recently_deleted()`,
# fs/ext4/ialloc.c), so a run that creates files within minutes of a large delete pays for
# it in every file it creates (3-7 % of an incremental backup's CPU here, 5-11 % of an S3
# server's; docs/benchmarks.md, "seventh session"). A script deletes what it set aside at
# its end (`empty_trash`), and `pairs` waits until the last such delete is
# SETTLE_SECONDS old: no run is timed within minutes of a large delete.
SETTLE_SECONDS=${SETTLE_SECONDS:-370}
discard() {
  local p trash=${TRASH:-$MD/trash}
  mkdir -p "$trash"
  for p in "$@"; do
    if [ -e "$p" ]; then mv "$p" "$trash/$(date +%s%N)"; fi
  done
}

# empty_trash: deletes what `discard` set aside and notes when (in TRASH.deleted).
empty_trash() {
  local trash=${TRASH:-$MD/trash}
  [ -d "$trash" ] || return 0
  rm -rf "$trash"
  sync
  date +%s > "$trash.deleted"
}

# settle: waits until the last `empty_trash` is SETTLE_SECONDS old.
settle() {
  local trash=${TRASH:-$MD/trash} at left
  [ -f "$trash.deleted" ] || return 0
  at=$(cat "$trash.deleted")
  left=$(( at + SETTLE_SECONDS - $(date +%s) ))
  if (( left > 0 )); then
    echo "   waiting ${left}s: files were deleted ${SETTLE_SECONDS}s ago at most (bench/measure.sh, discard)" >&2
    sleep "$left"
  fi
}

# run_one GROUP TOOL ROUND: one run as described above; its stdout stays in MD/TOOL.out.
run_one() {
  local group=$1 tool=$2 round=$3 prep input t0 t1 t2 w ws e us ss m
  local -n cmd="CMD_$tool"
  prep=PREP_$tool input=INPUT_$tool
  [ -n "${!prep}" ] && ${!prep}
  drop_caches
  # shellcheck disable=SC2086  # the input list is space-separated on purpose
  [ "$WARM" = 1 ] && read_inputs ${!input}
  t0=$(date +%s%N)
  /usr/bin/time -f "%e %U %S %M" -o "$MD/time.txt" "${cmd[@]}" > "$MD/$tool.out" 2> "$MD/$tool.err" || {
    echo "$tool failed: ${cmd[*]}" >&2; cat "$MD/$tool.err" >&2; exit 1; }
  t1=$(date +%s%N)
  sync
  t2=$(date +%s%N)
  w=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
  ws=$(awk -v a="$t0" -v b="$t2" 'BEGIN{printf "%.3f", (b-a)/1e9}')
  read -r e us ss m < <(tail -1 "$MD/time.txt")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$group" "$tool" "$round" "$w" "$ws" \
    "$(awk -v u="$us" -v s="$ss" 'BEGIN{printf "%.2f", u+s}')" "$m" >> "$MD/runs.tsv"
  echo "$group round $round $tool: ${w}s, ${ws}s with sync, user ${us}s sys ${ss}s, ${m} KiB" >> "$MD/runs.log"
  echo "   round $round $tool: ${w}s (+sync ${ws}s), cpu $(awk -v u="$us" -v s="$ss" 'BEGIN{printf "%.2f", u+s}')s, $((m / 1024)) MiB" >&2
}

# pairs GROUP TOOL... : RUNS rounds, the order reversed on every other round.
pairs() {
  local group=$1 r i t
  shift
  local tools=("$@")
  settle
  for r in $(seq "$RUNS"); do
    if (( r % 2 == 1 )); then
      for t in "${tools[@]}"; do run_one "$group" "$t" "$r"; done
    else
      for (( i = ${#tools[@]} - 1; i >= 0; i-- )); do run_one "$group" "${tools[i]}" "$r"; done
    fi
  done
}

# report GROUP REF TOOL... : the Markdown rows of GROUP (one per TOOL, in that order) and
# the medians in MD/medians.sh.
report() {
  local group=$1 ref=$2 t labels=()
  shift 2
  for t in "$@"; do local l="LABEL_$t"; labels+=("$t=${!l}"); done
  python3 - "$MD/runs.tsv" "$MD/medians.sh" "$group" "$ref" "${labels[@]}" <<'PY'
import statistics as st, sys
tsv, medians, group, ref = sys.argv[1:5]
tools = [a.split("=", 1) for a in sys.argv[5:]]
runs = {}
for line in open(tsv):
    g, t, r, w, ws, cpu, rss = line.rstrip("\n").split("\t")
    if g == group:
        runs.setdefault(t, {})[int(r)] = (float(w), float(ws), float(cpu), int(rss))
out = open(medians, "a")
reflabel = dict(tools).get(ref, ref)
print(f"| tool | time incl. sync, median (range) | command alone, median | CPU-s, median | peak RSS, max | {reflabel} ÷ this, median of rounds (range) |")
print("|---|--:|--:|--:|--:|--:|")
for t, label in tools:
    rs = runs.get(t, {})
    if not rs:
        continue
    ws = [v[1] for v in rs.values()]
    w = st.median(v[0] for v in rs.values())
    cpu = st.median(v[2] for v in rs.values())
    rss = max(v[3] for v in rs.values())
    ratios = [runs[ref][r][1] / v[1] for r, v in rs.items() if r in runs.get(ref, {}) and v[1] > 0]
    rm = st.median(ratios) if ratios else 0.0
    rng = f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else ""
    rt = "1.00×" if t == ref else f"**{rm:.2f}×**{rng}"
    print(f"| {label} | {st.median(ws):.2f} s ({min(ws):.2f}–{max(ws):.2f}) | {w:.2f} s | {cpu:.2f} | {rss / 1024:.0f} MiB | {rt} |")
    k = f"{group}_{t}"
    out.write(f"M_{k}_ws={st.median(ws):.3f} M_{k}_w={w:.3f} M_{k}_cpu={cpu:.2f} M_{k}_rss={rss} R_{k}={rm:.3f}\n")
PY
  # shellcheck disable=SC1091
  . "$MD/medians.sh"
}
