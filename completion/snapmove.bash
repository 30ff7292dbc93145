# bash completion for snapmove(1)                          -*- shell-script -*-
#
# Commands, the options of each command, and their values: domain names
# (virsh list --all) where a DOMAIN goes and for rebalance's --include and
# --exclude, the chosen domain's disk targets (virsh domblklist) for --disk
# and chain's TARGET, job numbers (snapmove list --json) for the job
# commands, storage pools for --dest-pool and --storage, the storages already
# named for --drain, provision's operations, provisioners and the devices it
# made, directories and files where paths go.  -c/--connect and --db on the command line are
# passed on to virsh and snapmove.  Works with or without the bash-completion
# package.

_snapmove_commands="move rebalance resume abort recover config list status verify cleanup forget chain copy provision help"
_snapmove_global_opts="-c --connect --db --json -q --quiet --config --hooks-dir --hook-timeout -h --help --version"

# Options of each command; those that take a value are listed again in
# _snapmove_takes_value.
_snapmove_cmd_opts() {
	case $1 in
	move)
		echo "--dest --dest-pool --disk --bandwidth --keep-overlay --quiesce --dry-run" \
			"--json --verify --no-verify --dest-format --copy-method --sync-writes" \
			"--converge-timeout --parallel --copy-shared --flatten --delete-source --offline --trim" \
			"--overlay-dir --dest-dev --dest-zeroed --dest-provisioner --set" \
			"--overlay-provisioner --overlay-size --overlay-set" \
			"--help" ;;
	rebalance)
		echo "--storage --drain --target-free --max-parallel --bandwidth --include --exclude" \
			"--include-offline --stop-on-error --dry-run --resume --json --help" ;;
	resume | list | status | chain) echo "--json --help" ;;
	abort) echo "--via --json --help" ;;
	recover) echo "--resume --help" ;;
	config) echo "--help" ;;
	verify | cleanup | forget) echo "--help" ;;
	copy) echo "--bandwidth --no-verify --copy-method --chunk-size --help" ;;
	provision) echo "--provisioner --pool --set --timeout --help" ;;
	esac
}

_snapmove_takes_value() {  # COMMAND OPTION
	case $2 in
	-c | --connect | --db | --config | --hooks-dir | --hook-timeout) [ -z "$1" ] ;;
	--dest | --dest-pool | --disk | --dest-format | --sync-writes | --converge-timeout | --parallel | \
		--overlay-dir | --dest-dev | --dest-provisioner | --overlay-provisioner | --overlay-size | \
		--overlay-set)
		[ "$1" = move ] ;;
	--bandwidth) [ "$1" = move ] || [ "$1" = copy ] || [ "$1" = rebalance ] ;;
	--copy-method) [ "$1" = move ] || [ "$1" = copy ] ;;
	--storage | --drain | --target-free | --max-parallel | --include | --exclude)
		[ "$1" = rebalance ] ;;
	--chunk-size) [ "$1" = copy ] ;;
	--via) [ "$1" = abort ] ;;
	--provisioner | --pool | --timeout) [ "$1" = provision ] ;;
	--set) [ "$1" = provision ] || [ "$1" = move ] ;;
	*) return 1 ;;
	esac
}

_snapmove_virsh() {
	virsh ${_snapmove_uri:+-c "$_snapmove_uri"} -q "$@" 2>/dev/null
}

_snapmove_domains() {
	_snapmove_virsh list --all --name | sed '/^$/d'
}

_snapmove_disks() {  # DOMAIN: its disk targets
	_snapmove_virsh domblklist "$1" | awk 'NF { print $1 }'
}

_snapmove_pools() {
	_snapmove_virsh pool-list --all --name | sed '/^$/d'
}

# Job numbers from the journal: all, or only those in one of the states given
# (running, failed, done, aborted).
_snapmove_jobs() {
	local cmd=${_snapmove_prog:-snapmove}
	"$cmd" ${_snapmove_db:+--db "$_snapmove_db"} list --json 2>/dev/null |
		awk -v want=" $* " '
			/^ *"job": *[0-9]+/ { gsub(/[^0-9]/, ""); id = $0 }
			/^ *"state": *"/ {
				s = $0; sub(/^ *"state": *"/, "", s); sub(/".*/, "", s)
				if (want == "  " || index(want, " " s " ")) print id
			}'
}

# The paths of the devices 'snapmove provision' made that are still there
# (state created), from its list.
_snapmove_devices() {
	local cmd=${_snapmove_prog:-snapmove}
	"$cmd" ${_snapmove_db:+--db "$_snapmove_db"} provision list 2>/dev/null |
		awk '$2 == "created" && $7 ~ /^\/dev\// { print $7 }'
}

_snapmove_compgen() {  # WORDS: set COMPREPLY to those that start with $cur
	local IFS=$'\n' i colon
	COMPREPLY=($(compgen -W "$1" -- "$cur"))
	# bash replaces only what follows the last ':' of the word.
	if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
		colon=${cur%"${cur##*:}"}
		for i in "${!COMPREPLY[@]}"; do
			COMPREPLY[i]=${COMPREPLY[i]#"$colon"}
		done
	fi
}

_snapmove_paths() {  # -d or -f
	local IFS=$'\n'
	type compopt &>/dev/null && compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen "$1" -- "$cur"))
}

_snapmove() {
	local cur prev cword i w cmd="" domain="" npos=0
	local -a words pos=() chosen=() storages=()
	local _snapmove_uri="" _snapmove_db="" _snapmove_prog

	# Split the line ourselves: bash splits at ':' (COMP_WORDBREAKS), which
	# would cut qemu:///system into three words.
	local line=${COMP_LINE:0:COMP_POINT}
	read -ra words <<<"$line"
	[[ ${#words[@]} -eq 0 || $line == *[[:space:]] ]] && words+=("")
	cword=$((${#words[@]} - 1))
	cur=${words[cword]}
	prev=""
	[ "$cword" -gt 0 ] && prev=${words[cword - 1]}
	_snapmove_prog=${words[0]}
	COMPREPLY=()

	# Walk the words before the cursor: global options, the command, its
	# operands and option values.
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		case $w in
		--connect=*) _snapmove_uri=${w#*=} ;;
		--db=*) _snapmove_db=${w#*=} ;;
		-*)
			if _snapmove_takes_value "$cmd" "$w" && [ $((i + 1)) -lt "$cword" ]; then
				i=$((i + 1))
				case $w in
				-c | --connect) _snapmove_uri=${words[i]} ;;
				--db) _snapmove_db=${words[i]} ;;
				--disk) chosen+=("${words[i]}") ;;
				--storage) storages+=("${words[i]}") ;;
				esac
			fi ;;
		*)
			if [ -z "$cmd" ]; then
				cmd=$w
			else
				pos+=("$w")
			fi ;;
		esac
	done
	npos=${#pos[@]}
	[ "$npos" -gt 0 ] && domain=${pos[0]}

	# The value of an option.
	if [[ $prev == -* ]] && _snapmove_takes_value "$cmd" "$prev"; then
		case $prev in
		-c | --connect) _snapmove_compgen "qemu:///system
qemu:///session" ;;
		--db) _snapmove_paths -f ;;
		--hooks-dir | --dest | --overlay-dir) _snapmove_paths -d ;;
		--dest-pool | --pool) _snapmove_compgen "$(_snapmove_pools)" ;;
		--storage)
			local IFS=$'\n'
			type compopt &>/dev/null && compopt -o filenames 2>/dev/null
			COMPREPLY=($(compgen -d -- "$cur") $(compgen -W "$(_snapmove_pools)" -- "$cur")) ;;
		--drain) _snapmove_compgen "$(printf '%s\n' "${storages[@]}")" ;;
		--include | --exclude) _snapmove_compgen "$(_snapmove_domains)" ;;
		--disk)
			local d all=""
			for d in $(_snapmove_disks "$domain"); do
				[[ " ${chosen[*]} " == *" $d "* ]] || all+="$d"$'\n'
			done
			_snapmove_compgen "$all" ;;
		--dest-dev)
			# TARGET= of the domain's disks; the device is typed after it.
			_snapmove_compgen "$(_snapmove_disks "$domain" | sed 's/$/=/')"
			type compopt &>/dev/null && compopt -o nospace 2>/dev/null ;;
		--dest-format) _snapmove_compgen "raw
qcow2" ;;
		--copy-method) _snapmove_compgen "auto
reflink
direct
direct-uring
copy_file_range
readwrite" ;;
		--sync-writes) _snapmove_compgen "auto
on
off" ;;
		--via) _snapmove_compgen "commit
stream" ;;
		--provisioner | --dest-provisioner | --overlay-provisioner)
			if [[ $cur == */* ]]; then
				_snapmove_paths -f
			else
				_snapmove_compgen "loop
lvm"
			fi ;;
		--set | --overlay-set) _snapmove_compgen "LOOP_DIR=
LVM_VG=" ;;
		esac
		return 0
	fi

	if [ -z "$cmd" ]; then
		if [[ $cur == -* ]]; then
			_snapmove_compgen "${_snapmove_global_opts// /$'\n'}"
		else
			_snapmove_compgen "${_snapmove_commands// /$'\n'}"
		fi
		return 0
	fi

	if [[ $cur == -* ]]; then
		local opts
		opts=$(_snapmove_cmd_opts "$cmd")
		_snapmove_compgen "${opts// /$'\n'}"
		return 0
	fi

	case $cmd in
	move)
		[ "$npos" -eq 0 ] && _snapmove_compgen "$(_snapmove_domains)" ;;
	chain)
		case $npos in
		0) _snapmove_compgen "$(_snapmove_domains)" ;;
		1) _snapmove_compgen "$(_snapmove_disks "$domain")" ;;
		esac ;;
	resume | abort)
		[ "$npos" -eq 0 ] && _snapmove_compgen "$(_snapmove_jobs running failed)" ;;
	status)
		[ "$npos" -eq 0 ] && _snapmove_compgen "$(_snapmove_jobs)" ;;
	verify | cleanup)
		[ "$npos" -eq 0 ] && _snapmove_compgen "$(_snapmove_jobs done)" ;;
	forget)
		[ "$npos" -eq 0 ] && _snapmove_compgen "$(_snapmove_jobs done aborted)" ;;
	copy)
		[ "$npos" -lt 2 ] && _snapmove_paths -f ;;
	provision)
		case $npos/$domain in
		0/*) _snapmove_compgen "create
extend
remove
list" ;;
		1/extend | 1/remove) _snapmove_compgen "$(_snapmove_devices)" ;;
		esac ;;
	help)
		[ "$npos" -eq 0 ] && _snapmove_compgen "${_snapmove_commands// /$'\n'}" ;;
	esac
	return 0
}

complete -F _snapmove snapmove
