#!/usr/bin/env bash
# Issue 18's benchmarks, one after another on an otherwise idle machine (each writes
# benchmarks/results/<name>.json + .md). ~50 min on 2 idle cores, then the few-shot design (~1 h).
set -u
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFEROPS_QUIET=1
PY=../.venv/bin/python
run() { echo "[$(date +%H:%M:%S)] $* (load $(cut -d' ' -f1 /proc/loadavg))"; "$PY" "$@" > "/tmp/issue18_${1%.py}.log" 2>&1; echo "[$(date +%H:%M:%S)]   rc=$?"; }
for b in ${BENCHES:-serve_bench select_bench int8_accuracy_bench time_to_quality frozen_cache_bench ort_options_bench}; do
  case $b in
    serve_bench) run serve_bench.py --duration 5 --rounds 2 --system procs2='--processes 2' ;;
    select_bench) run select_bench.py --part timing --rounds 3 ;;
    *) run "$b.py" ;;
  esac
done
