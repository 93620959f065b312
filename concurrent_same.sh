#!/bin/bash
# two `connectbatch ingest` of the same file at once (fresh home); expect exactly one loaded, other duplicate or busy(75)
cd /tmp/hunt-crash; PY=/work/main/.venv/bin/python; CB=/work/main/.venv/bin/connectbatch
export CONNECTBATCH_MAX_AGE_DAYS=100000 CONNECTBATCH_HOME=/tmp/hunt-crash/cc_home
F=${1:-small_a.csv}
rm -rf $CONNECTBATCH_HOME; cp -a template_home $CONNECTBATCH_HOME
$CB ingest $F --connection Big --json > cc1.out 2>cc1.err & P1=$!
$CB ingest $F --connection Big --json > cc2.out 2>cc2.err & P2=$!
wait $P1; R1=$?; wait $P2; R2=$?
echo "rc $R1 $R2"; head -c 200 cc1.err; head -c 200 cc2.err
$CB runs --json | $PY -c "import json,sys; [print('run',r['id'],r['status'],r['reason'],r['rows_accepted'],r['actions_created']) for r in json.load(sys.stdin)]"
$PY check.py after
