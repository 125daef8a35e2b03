#!/usr/bin/env bash
# Regenerates the embedded English prompt set from manifest.tsv.
#
#   bash prompts/generate.sh            # from the repository root (or anywhere)
#
# Each manifest line is "name<TAB>text" (blank lines and lines starting with
# '#' are ignored). The text is rendered with flite (voice slt), or espeak-ng
# (en-us) when flite is not installed, then converted by sox to 8000 Hz, mono,
# 16-bit signed PCM WAV: leading/trailing silence trimmed lightly, peak
# normalised to -3 dBFS, no dither, no LIST/comment chunk (plain RIFF fmt+data).
# Output: en/<name>.wav beside this script; a name with a slash ("digits/1")
# becomes a subfolder. The whole en/ folder is rebuilt, so prompts removed
# from the manifest disappear too. Same tools + same manifest = same bytes.
#
# Debian: apt-get install -y flite espeak-ng sox
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/manifest.tsv"
out="$here/en"

if command -v flite >/dev/null 2>&1; then
	engine=flite
elif command -v espeak-ng >/dev/null 2>&1; then
	engine=espeak-ng
else
	echo "generate.sh: neither flite nor espeak-ng is installed (apt-get install -y flite espeak-ng sox)" >&2
	exit 1
fi
if ! command -v sox >/dev/null 2>&1; then
	echo "generate.sh: sox is not installed (apt-get install -y sox)" >&2
	exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/en"

render() { # text raw.wav
	case "$engine" in
	flite) flite -voice slt -t "$1" -o "$2" ;;
	espeak-ng) espeak-ng -v en-us -w "$2" "$1" ;;
	esac
}

count=0
lineno=0
declare -A seen=()
while IFS= read -r line || [[ -n "$line" ]]; do
	lineno=$((lineno + 1))
	line="${line%$'\r'}"
	[[ -z "$line" || "$line" == \#* ]] && continue
	if [[ "$line" != *$'\t'* ]]; then
		echo "generate.sh: manifest.tsv:$lineno: expected name<TAB>text" >&2
		exit 1
	fi
	name="${line%%$'\t'*}"
	text="${line#*$'\t'}"
	if [[ ! "$name" =~ ^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$ ]]; then
		echo "generate.sh: manifest.tsv:$lineno: bad prompt name '$name'" >&2
		exit 1
	fi
	if [[ -n "${seen[$name]:-}" ]]; then
		echo "generate.sh: manifest.tsv:$lineno: duplicate prompt '$name'" >&2
		exit 1
	fi
	seen[$name]=1
	if [[ -z "$text" ]]; then
		echo "generate.sh: manifest.tsv:$lineno: empty text for '$name'" >&2
		exit 1
	fi

	dst="$work/en/$name.wav"
	mkdir -p "$(dirname "$dst")"
	render "$text" "$work/raw.wav"
	# -R: repeatable mode; -D: no dither (deterministic, true digital silence).
	sox -R -D -V1 "$work/raw.wav" \
		--comment "" -r 8000 -c 1 -b 16 -e signed-integer -t wav "$dst" \
		silence 1 0.02 0.1% reverse silence 1 0.02 0.1% reverse \
		rate -h 8000 gain -n -3
	count=$((count + 1))
done <"$manifest"

rm -rf "$out"
mv "$work/en" "$out"
find "$out" -type d -exec chmod 755 {} +
find "$out" -type f -exec chmod 644 {} +
size="$(du -sk "$out" | cut -f1)"
echo "generate.sh: $count prompts with $engine into $out (${size} KiB)"
