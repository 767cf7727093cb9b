# Sourced by buildx.sh and multiarch.sh: apt with a private sources list and private state, so packages of another
# Debian release or architecture can be downloaded (then unpacked with `dpkg -x`) without touching this machine's
# apt sources, architectures or package database.
#   apt_private_setup SUITE [ARCHITECTURES]   sets $work (removed on exit), $mirror and the apt_private options

# The mirror this machine's apt already uses for its Debian release (deb822 .sources or one-line .list), so a
# machine behind a local mirror or proxy fetches from there too; deb.debian.org otherwise.
mirror_of_sources() {
  local file
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$file" ] || continue
    case "$file" in
      *.sources)
        awk 'BEGIN { RS = ""; FS = "\n" }
             { uris = ""; suites = ""; enabled = 1
               for (i = 1; i <= NF; i++) {
                 line = $i; sub(/#.*/, "", line)
                 if (line ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", line); uris = line }
                 if (line ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", line); suites = line }
                 if (line ~ /^Enabled:[ \t]*no/) enabled = 0 }
               if (enabled && uris != "" && suites ~ /(^| )[a-z]+( |$)/ && uris !~ /security/) {
                 split(uris, u, /[ \t]+/); print u[1]; exit } }' "$file" ;;
      *)
        awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                           if ($(i) !~ /security/ && $(i+1) !~ /-/) { print $(i); exit } }' "$file" ;;
    esac
  done | grep -E '^(https?|file)://' | head -n 1
}
apt_private_setup() {
  local suite="$1" architectures="${2:-}"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg  # bookworm's keyring carries the trixie keys
  if [ ! -r "$keyring" ]; then
    echo "setup.sh: $keyring is missing (apt-get install debian-archive-keyring)" >&2
    return 1
  fi
  mirror=$(mirror_of_sources || true)
  mirror="${mirror:-http://deb.debian.org/debian}"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts"
  : > "$work/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$mirror" "$suite" "$keyring"
    [ -z "$architectures" ] || printf 'Architectures: %s\n' "${architectures//,/ }"
  } > "$work/parts/$suite.sources"
  apt_private=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=$work/parts"
               -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=$(id -un)"
               -o "Debug::NoLocking=1" -q)
  [ -z "$architectures" ] || apt_private+=(-o "APT::Architectures=$architectures")
}
