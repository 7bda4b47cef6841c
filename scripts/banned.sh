#!/usr/bin/env bash
# Fails if a banned libc call (shared/STYLE.md rule 8) appears in src/ or tests/.
set -u
cd "$(dirname "$0")/.."
pattern='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strtok|atoi|atol|atoll|gets|sscanf|rand|srand)[[:space:]]*\('
hits=$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' | xargs grep -nE "$pattern" \
       | grep -vE '^\S+:[0-9]+:\s*(/?\*|//)' || true)
if [ -n "$hits" ]; then
    echo "banned calls (see shared/STYLE.md rule 8):"
    echo "$hits"
    exit 1
fi
echo "lint-banned: no banned calls"
