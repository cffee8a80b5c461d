# What every real-system profile shares; sourced by suts/real/PROFILE/start and
# by suts/real/stop. A start script keeps only what differs: packages, config
# text, daemons, ports. Sourcing sets NAME (the profile directory's name), S
# (its private state dir), die/say; `begin` stops leftovers and starts afresh.
set -euo pipefail
REAL=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$(dirname "$REAL")")
NAME=${NAME:-$(basename "$(cd "$(dirname "$0")" && pwd)")}
S=${MAILCONFORM_STATE:-/var/tmp/mailconform}/$NAME
PY=/usr/bin/python3
helper() { PYTHONPATH=$ROOT "$PY" -m mailconform.suts.real.daemons "$@"; }
die() { echo "$NAME $(basename "$0"): ERROR: $*" >&2; exit 1; }
say() { echo "$NAME $(basename "$0"): $*" >&2; }

# begin PACKAGE... -- stop an earlier run, install what is missing, fresh pid
# records and logs (mail is kept)
begin() {
    T0=$(date +%s.%N)
    # a lock held around this start (flock FILE start) must not pass on to the
    # daemons: they would hold it long after start and stop have finished
    local fd
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] && [ "$(readlink "/proc/$$/fd/$fd")" != "$(readlink -f "$0")" ] && eval "exec $fd>&-"
    done
    "$REAL/stop" "$NAME" || die "could not stop leftovers of an earlier run"
    mkdir -p "$S/mail"; chmod 0755 "$S" "$S/mail"
    need_packages "$@"
    dpkg-query -W -f='${Package} ${Version}\n' "$@" | paste -sd, | sed 's/,/, /g' >"$S/versions"
    rm -rf "$S/log"; mkdir -p "$S/log"; : >"$S/pids"
}

# apt-get install what is not installed; update the lists first only when a
# package has no install candidate (a stale or empty cache)
need_packages() {
    local p missing=()
    for p in "$@"; do
        [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    for p in "${missing[@]}"; do
        if [[ $(apt-cache policy "$p" 2>/dev/null) != *"Candidate: "[!\(]* ]]; then
            say "no install candidate for $p: running apt-get update"
            apt-get update -q >"$S/apt-update.log" 2>&1 || die "apt-get update failed, see $S/apt-update.log"
            break
        fi
    done
    say "installing ${missing[*]} (apt may swap out another MTA or IMAP server)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=120 "${missing[@]}" \
        >"$S/apt-install.log" 2>&1 || die "apt-get install ${missing[*]} failed, see $S/apt-install.log"
}

# ports_free PORT... -- refuse to start next to another profile
ports_free() {
    local p
    for p in "$@"; do
        [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] \
            || die "127.0.0.1:$p is already in use by another process (another profile running?)"
    done
}

pid_start_time() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }
# record_pid LABEL PID -- stop kills exactly this process, if it is still the one
# that started then (same start time), and what it has forked
record_pid() { echo "$1 $2 $(pid_start_time "$2")" >>"$S/pids"; }

# Some daemons log only to syslog, and no syslog daemon runs here: unless
# someone listens on /dev/log already, listen there (-> $S/log/syslog).
devlog_listen() {
    if [ -S /dev/log ] && helper devlog-live; then
        say "/dev/log already has a listener: syslog lines go there, not to $S/log/syslog"
    elif [ -e /dev/log ] && [ ! -S /dev/log ]; then
        say "/dev/log exists and is not a socket: leaving it alone; syslog lines are lost"
    else
        rm -f /dev/log    # a stale socket nobody listens on
        # a plain command, not the helper function: in the background a function
        # runs in a subshell, $! would be that shell and stop would orphan python
        PYTHONPATH=$ROOT "$PY" -m mailconform.suts.real.daemons devlog "$S/log/syslog" \
            </dev/null >>"$S/log/devlog.err" 2>&1 &
        record_pid devlog $!
        for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.05; done
        [ -S /dev/log ] || die "could not listen on /dev/log: $(cat "$S/log/devlog.err")"
        stat -c %i /dev/log >"$S/devlog.inode"
    fi
}

# ready KIND:WHERE... -- wait until each smtp:PORT, lmtp:PORT, imap:PORT,
# pop3:PORT or unix:SOCKET (LMTP) greets, failing early if a daemon dies
ready() {
    helper ready "${MAILCONFORM_READY_TIMEOUT:-30}" "$S" "$@" \
        || die "not ready after ${MAILCONFORM_READY_TIMEOUT:-30}s; logs: $S/log/"
    say "ready in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s: $* (state $S)"
}

# ---- components shared by several profiles -----------------------------------

# postfix_conf PORT [SINK_PORT] -- a private Postfix (config in $PF, queue under
# $S, no chroot) with smtpd on 127.0.0.1:PORT. Nothing leaves the machine; with
# SINK_PORT, mail for the suite's outside domains (notices, relays from
# 127.0.0.1) goes to its sink there. The profile appends its delivery settings
# to $PF/main.cf and services to $PF/master.cf.
postfix_conf() {
    local sink=${2:-}
    PF=$S/postfix/etc
    rm -rf "$S/postfix"; mkdir -p "$PF" "$S/postfix/spool" "$S/postfix/data"
    chown postfix: "$S/postfix/data"
    cat >"$PF/main.cf" <<EOF
# private Postfix for mailconform profile $NAME (generated by start)
compatibility_level = 3.6
queue_directory = $S/postfix/spool
data_directory = $S/postfix/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $S/log/postfix.log
maillog_file_prefixes = $S
myhostname = mx.isp.test
mydomain = isp.test
myorigin = isp.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname ESMTP Postfix (mailconform $NAME)
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =
# an MX (relaying only to the suite's sink, if any); nothing else leaves the machine
smtpd_relay_restrictions = ${sink:+permit_mynetworks, }reject_unauth_destination
${sink:+transport_maps = inline:{ lists.test=smtp:[127.0.0.1]:$sink, remote.example=smtp:[127.0.0.1]:$sink, fwd.test=smtp:[127.0.0.1]:$sink \}
smtp_tls_security_level = none}
default_transport = error:mailconform test system sends nothing out
relay_transport = error:mailconform test system sends nothing out
local_transport = error:no local delivery in mailconform
# bounces to the (remote, unreachable) senders fail in turn: file those
# double bounces into postmaster@isp.test so failure notices stay visible
notify_classes = 2bounce, resource, software
2bounce_notice_recipient = postmaster@isp.test
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtpd_peername_lookup = no
EOF
    {
        echo "127.0.0.1:$1 inet n - n - - smtpd"
        printf '%s\n' "pickup unix n - n 60 1 pickup" "cleanup unix n - n - 0 cleanup" \
            "qmgr unix n - n 300 1 qmgr" "tlsmgr unix - - n 1000? 1 tlsmgr" \
            "rewrite unix - - n - - trivial-rewrite" "bounce unix - - n - 0 bounce" \
            "defer unix - - n - 0 bounce" "trace unix - - n - 0 bounce" "verify unix - - n - 1 verify" \
            "flush unix n - n 1000? 0 flush" "proxymap unix - - n - - proxymap" \
            "proxywrite unix - - n - 1 proxymap" "smtp unix - - n - - smtp" "relay unix - - n - - smtp" \
            "showq unix n - n - - showq" "error unix - - n - - error" "retry unix - - n - - error" \
            "discard unix - - n - - discard" "lmtp unix - - n - - lmtp" "anvil unix - - n - 1 anvil" \
            "scache unix - - n - 1 scache" "postlog unix-dgram n - n - 1 postlogd"
    } >"$PF/master.cf"
}

postfix_up() {
    # Postfix stalls up to 2.5 s at start on a main.cf less than 2 s old: backdate
    touch -d '-10 seconds' "$PF/main.cf" "$PF/master.cf"
    postfix -c "$PF" start >>"$S/log/postfix.start.log" 2>&1 \
        || die "postfix failed to start: $(tail -5 "$S/log/postfix.start.log" "$S/log/postfix.log" 2>/dev/null)"
    local pid
    read -r pid <"$S/postfix/spool/pid/master.pid" || die "postfix wrote no master.pid"
    record_pid postfix-master "$pid"
}

# dovecot_conf LMTP IMAP_PORT [POP3_PORT] -- a private Dovecot ($DC) that
# accepts any user with password "mailconform" and files into
# $S/mail/USER/Maildir. LMTP is a TCP port or a unix socket path.
# DOVECOT_LMTP_PLUGINS (e.g. sieve) are loaded for LMTP.
dovecot_conf() {
    local lmtp=$1 imap=$2 pop3=${3:-} listener pop3_service=""
    DC=$S/dovecot/dovecot.conf
    rm -rf "$S/dovecot"; mkdir -p "$S/dovecot/run" "$S/dovecot/state"
    chown mail:mail "$S/mail"
    if [[ $lmtp == /* ]]; then
        listener=$(printf 'unix_listener %s {\n    mode = 0666\n  }' "$lmtp")
    else
        listener=$(printf 'inet_listener lmtp {\n    address = 127.0.0.1\n    port = %s\n  }' "$lmtp")
    fi
    [ -z "$pop3" ] || pop3_service=$(printf 'service pop3-login {\n  inet_listener pop3 {\n    address = 127.0.0.1\n    port = %s\n  }\n  inet_listener pop3s {\n    port = 0\n  }\n}' "$pop3")
    cat >"$DC" <<EOF
# private Dovecot for mailconform profile $NAME (generated by start)
instance_name = mailconform-$NAME
hostname = mx.isp.test
base_dir = $S/dovecot/run
state_dir = $S/dovecot/state
protocols = imap lmtp${pop3:+ pop3}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# bob@isp.test and bob both mean user "bob"
auth_username_format = %Ln
log_path = $S/log/dovecot.log
info_log_path = $S/log/dovecot.log
mail_location = maildir:$S/mail/%n/Maildir
mail_uid = mail
mail_gid = mail
first_valid_uid = 8
first_valid_gid = 8
passdb {
  driver = static
  args = password=mailconform
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$S/mail/%n allow_all_users=yes
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap
  }
  inet_listener imaps {
    port = 0
  }
}
$pop3_service
service lmtp {
  $listener
}
protocol lmtp {
  postmaster_address = postmaster@isp.test
  mail_plugins = \$mail_plugins ${DOVECOT_LMTP_PLUGINS:-}
}
EOF
}

dovecot_up() {
    dovecot -c "$DC" >>"$S/log/dovecot.start.log" 2>&1 \
        || die "dovecot failed to start: $(tail -5 "$S/log/dovecot.start.log" "$S/log/dovecot.log" 2>/dev/null)"
    for _ in $(seq 50); do [ -s "$S/dovecot/run/master.pid" ] && break; sleep 0.1; done
    [ -s "$S/dovecot/run/master.pid" ] || die "dovecot wrote no master.pid"
    record_pid dovecot "$(cat "$S/dovecot/run/master.pid")"
}

# cyrus_conf LMTP_LISTEN IMAP_PORT -- a private Cyrus 3.6 (imapd.conf in $CONF,
# values as in Debian's, every path under $S/cyrus) with lmtpd -a (pre-authorised)
# on LMTP_LISTEN (127.0.0.1:PORT or a socket path), imapd on 127.0.0.1:IMAP_PORT,
# admin "cyrus" with a fresh random password. Mailboxes are made by
# suts/real/cyrus-provision. The profile appends its own lines to $CONF.
cyrus_conf() {
    CY=$S/cyrus CONF=$S/cyrus/imapd.conf
    local bin=/usr/lib/cyrus/bin d
    rm -rf "$CY"   # fresh databases and spool: mailboxes must be provisioned anew
    mkdir -p "$CY/spool" "$CY/sieve" "$CY/run/proc" "$CY/run/lock" "$CY/run/socket"
    for d in db lock log msg proc quota socket user ptclient; do mkdir -p "$CY/lib/$d"; done
    echo "$2" >"$CY/imap.port"
    echo "$CONF" >"$S/orphans"   # what stop looks for in the command line of orphans
    cat >"$CONF" <<EOF
# private imapd.conf for mailconform profile $NAME (generated by start)
configdirectory: $CY/lib
defaultpartition: default
partition-default: $CY/spool
sievedir: $CY/sieve
proc_path: $CY/run/proc
mboxname_lockpath: $CY/run/lock
lmtpsocket: $CY/run/socket/lmtp
idlesocket: $CY/run/socket/idle
notifysocket: $CY/run/socket/notify
servername: mx.isp.test
admins: cyrus
allowplaintext: yes
allowanonymouslogin: no
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $CY/sasldb2
sasl_mech_list: PLAIN LOGIN
sasl_auto_transition: no
virtdomains: off
altnamespace: no
unixhierarchysep: no
lmtp_downcase_rcpt: yes
hashimapspool: true
autocreate_quota: 0
umask: 077
sieveusehomedir: false
syslog_prefix: mailconform-$NAME
EOF
    # master does not pass -C on to what it spawns: every command carries its own
    cat >"$CY/cyrus.conf" <<EOF
START {
  recover cmd="$bin/ctl_cyrusdb -C $CONF -r"
}
SERVICES {
  imap cmd="$bin/imapd -C $CONF -U 30" listen="127.0.0.1:$2" prefork=0 maxchild=100
  lmtp cmd="$bin/lmtpd -C $CONF -a" listen="$1" prefork=0 maxchild=20
}
EVENTS {
  checkpoint cmd="$bin/ctl_cyrusdb -C $CONF -c" period=30
}
DAEMON {
}
EOF
    ( umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$CY/admin.secret" )
    tr -d '\n' <"$CY/admin.secret" | saslpasswd2 -p -c -f "$CY/sasldb2" -u mx.isp.test cyrus \
        || die "saslpasswd2 failed"
}

# cyrus_up -- Cyrus logs only to syslog: listen on /dev/log, then run master in
# the foreground (no -d), so $! is master itself
cyrus_up() {
    chown -R cyrus:mail "$CY"; chown root:root "$CY/admin.secret"; chmod 0640 "$CY/sasldb2"
    devlog_listen
    /usr/lib/cyrus/bin/master -C "$CONF" -M "$CY/cyrus.conf" -p "$CY/run/master.pid" \
        </dev/null >>"$S/log/master.out" 2>&1 &
    record_pid cyrus-master $!
}

# courier_conf PORT -- Courier keeps its configuration only in /etc/courier: the
# settings below are rewritten there at each start. ESMTP on 127.0.0.1:PORT for
# isp.test without DNS checks, an empty queue, no global filter running. The
# profile writes $COURIER_DEFAULT: the delivery instructions of every local part.
courier_conf() {
    local etc=/etc/courier f
    rm -rf "$S/courier"; mkdir -p "$S/courier"; chown courier:courier "$S/courier" "$S/mail"
    echo mx.isp.test >$etc/me; echo isp.test >$etc/defaultdomain; printf 'localhost\nisp.test\n' >$etc/locals
    rm -rf $etc/esmtpacceptmailfor.dir; mkdir $etc/esmtpacceptmailfor.dir
    echo isp.test >$etc/esmtpacceptmailfor.dir/isp.test; makeacceptmailfor
    sed -i '/^# mailconform/,$d' $etc/esmtpd
    cat >>$etc/esmtpd <<EOF
# mailconform $NAME (rewritten by start): loopback only, no DNS or ident checks
ADDRESS=127.0.0.1
PORT=$1
BOFHCHECKDNS=0
TARPIT=0
TCPDOPTS="-stderrlogger=/usr/sbin/courierlogger -noidentlookup -nodnslookup"
ESMTPDSTART=YES
EOF
    for f in $etc/filters/active/*; do [ -e "$f" ] && filterctl stop "$(basename "$f")"; done
    # Courier answers 456 at RCPT for recipients with recent deferred deliveries
    find /var/lib/courier/msgq /var/lib/courier/msgs /var/lib/courier/track -mindepth 1 -delete
    COURIER_DEFAULT=$etc/aliasdir/.courier-default
}

# courier_up PORT -- authdaemond (local address lookups), the global filters,
# courierd, esmtpd. They log only to syslog and detach, writing no PID we can
# use: once ESMTP answers, their processes are found by name and recorded.
courier_up() {
    devlog_listen
    local cmd
    for cmd in "authdaemond start" "courierfilter start" "courier start" "esmtpd start"; do
        $cmd >>"$S/log/courier.start.log" 2>&1 || die "$cmd failed: $(tail -5 "$S/log/courier.start.log")"
    done
    ready "smtp:$1"
    for cmd in $(ps -e -o pid=,stat=,comm= | awk '$2 !~ /^Z/ && $3 ~ /^(authdaemond|courierd|couriertcpd|courierlogger|courierfilter|dupfilter)$/ {print $1}'); do
        record_pid courier "$cmd"
    done
}
