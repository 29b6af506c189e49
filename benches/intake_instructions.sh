#!/bin/bash
# Instructions per filed case, counted by callgrind, on SQLite: unlike
# req/s they do not move with what else the machine runs, so two builds can
# be compared in one run each (docs/performance.md, "Profiling").
#
#   benches/intake_instructions.sh LOAD MEDESK OUT
#
# LOAD is the load benchmark's binary (target/release/deps/load-<hash>),
# MEDESK the server build to count, OUT a directory for callgrind's files.
# The server runs under valgrind (some 50x slower), the load benchmark's
# intake scenario drives it; callgrind counts for 8 s of it, and the cases
# filed meanwhile are counted in the database. Prints the busiest thread
# (the SQLite writer) and all threads, in instructions per case. Batches
# are smaller than at full speed, so the commit weighs more than it does
# there: compare builds, not these figures with req/s.
set -euo pipefail
LOAD=$1; MEDESK=$(readlink -f "$2"); OUT=$3
rm -rf "$OUT"; mkdir -p "$OUT"
cat > "$OUT/wrap" <<W
#!/bin/bash
exec valgrind --tool=callgrind --separate-threads=yes --instr-atstart=no --callgrind-out-file=$OUT/cg.%p $MEDESK "\$@"
W
chmod +x "$OUT/wrap"
"$LOAD" --bench --backend sqlite --scenarios intake --duration 20 --medesk "$OUT/wrap" >"$OUT/load.out" 2>"$OUT/load.err" &
load=$!
until grep -q "scenario intake: seeded, measuring" "$OUT/load.err" 2>/dev/null; do
    kill -0 $load 2>/dev/null || { echo "the load benchmark ended early:"; tail "$OUT/load.err"; exit 1; }
    sleep 0.2
done
server=$(pgrep -f "callgrind.*$MEDESK" | head -1)
db=$(readlink -f /proc/$server/fd/* 2>/dev/null | grep -E '\.(db|sqlite)$' | head -1)
cases() {
    python3 -c "import sqlite3,sys; print(sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True).execute('select count(*) from cases').fetchone()[0])" "$db"
}
sleep 3
before=$(cases); callgrind_control -i on $server >/dev/null
sleep 8
callgrind_control -i off $server >/dev/null; after=$(cases)
callgrind_control -d $server >/dev/null
wait $load || true
for f in "$OUT"/cg.*-*; do
    callgrind_annotate "$f" 2>/dev/null | grep "PROGRAM TOTALS" | grep -v calculated | awk '{gsub(",", "", $1); print $1}' || true
done | sort -n | awk -v n=$((after - before)) '
    { all += $1; busiest = $1 }
    END { printf "cases %d: busiest thread %.0f k instructions per case, all threads %.0f k\n", n, busiest / n / 1000, all / n / 1000 }'
