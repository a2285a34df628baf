package OSTest;
# Helpers shared by mod_ordersync's Apache::Test files: the hub's URLs, the test keys,
# JSON requests, and configtest runs of small generated configurations.
use strict;
use Time::HiRes ();
use warnings;
use Exporter ();
our @ISA = ('Exporter');
use JSON::PP ();
use File::Temp ();
use Apache::Test ();
use Apache::TestRequest ();
use Apache::TestConfig ();

our @EXPORT = qw(hub_url key req json_req decode problem_ok configtest expect_error_log
                 read_file order_payload);

use IO::Socket::INET ();
use HTTP::Tiny ();
use POSIX ();

my $JSON = JSON::PP->new->canonical->allow_nonref;

sub vars { Apache::Test::vars() }

sub hub_url { my $p = shift // ''; return "/ordersync$p" }

sub read_file {
    my $f = shift;
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    my $s = <$fh>;
    return $s;
}

sub key {
    my $name = shift;
    my $k = read_file(vars()->{serverroot} . "/conf/keys/$name.key");
    $k =~ s/\s+$//;
    return $k;
}

# req(METHOD, full path, [headers], content): any method, including DELETE and PATCH
sub req {
    my ($method, $path, $headers, $content) = @_;
    require HTTP::Request;
    my $url = 'http://' . Apache::TestRequest::hostport() . $path;
    my $r = HTTP::Request->new($method, $url, $headers || [], $content);
    return Apache::TestRequest::user_agent()->request($r);
}

# json_req(METHOD, path, body (string or ref), key name or undef, extra headers...)
sub json_req {
    my ($method, $path, $body, $key, %h) = @_;
    $body = $JSON->encode($body) if ref $body;
    my @h;
    push @h, Authorization => "Bearer " . key($key) if defined $key;
    push @h, 'Content-Type' => 'application/json' if defined $body && !exists $h{'Content-Type'};
    push @h, %h;
    return req($method, hub_url($path), \@h, $body);
}

sub decode {
    my $res = shift;
    my $d = eval { $JSON->decode($res->content) };
    return $d;
}

# Checks the RFC 9457 shape: content type, type URI, status member. Returns the document.
sub problem_ok {
    my ($res, $status, $slug) = @_;
    my $d = decode($res) || {};
    my $ok = $res->code == $status
        && ($res->header('Content-Type') // '') eq 'application/problem+json'
        && ($d->{type} // '') eq "urn:ordersync:problem:$slug"
        && ($d->{status} // 0) == $status
        && length($d->{title} // '') && length($d->{detail} // '');
    Test::More::diag("got " . $res->code . " " . ($res->header('Content-Type') // '')
                     . " " . $res->content) unless $ok;
    return $ok ? $d : undef;
}

# What the harness (build/check-logs.pl) reads after the run, in t/logs/expected_errors:
# where in the test server's error log each test file starts ("window"), the error lines it
# expects ("expect") and the error logs of the instances it started ("log"). A file's
# expected errors apply only to the main log's lines from its start to the next file's, and
# to its own instances' logs.
sub _record {
    my ($kind, $arg) = @_;
    my $logs = eval { vars()->{t_logs} } || 't/logs';
    my $f = "$logs/expected_errors";
    open my $fh, '>>', $f or die "$f: $!";
    print $fh join("\t", $kind, $0, $arg), "\n";
    close $fh;
}

# Every test file loads this module: its window in the error log starts here.
my $window_started;
sub import {
    unless ($window_started++) {
        my $logs = eval { vars()->{t_logs} } || 't/logs';
        _record('window', (-s "$logs/error_log") || 0);
    }
    __PACKAGE__->export_to_level(1, @_);
}

# Lines matching these patterns (Perl regular expressions as strings, matched without regard
# to case) in the error log are expected by the running test file, and by it only.
sub expect_error_log {
    for my $p (@_) {
        die "expect_error_log: an empty pattern would excuse every line\n" unless $p =~ /\S/;
        _record('expect', $p);
    }
}

# MPM lines for a separate instance with three server processes under any MPM (event's
# default shape; prefork keeps at least three spare processes).
sub three_processes {
    return "StartServers 3\n<IfModule !mpm_prefork_module>\nMinSpareThreads 75\n</IfModule>\n"
         . "<IfModule mpm_prefork_module>\nMinSpareServers 3\nMaxSpareServers 6\n</IfModule>\n";
}

# MPM lines for a separate instance whose processes and threads (40 workers) all exist from
# the start, so that memory measured later is what requests cost, not new processes.
sub fixed_workers {
    return "<IfModule !mpm_prefork_module>\nServerLimit 1\nStartServers 1\n"
         . "ThreadsPerChild 40\nMaxRequestWorkers 40\nMinSpareThreads 1\n"
         . "MaxSpareThreads 40\n</IfModule>\n"
         . "<IfModule mpm_prefork_module>\nStartServers 30\nMinSpareServers 1\n"
         . "MaxSpareServers 40\nMaxRequestWorkers 40\n</IfModule>\n";
}

# Store lines for a separate instance: nothing under SQLite (the instance's own file); under
# make test-pg a database of its own on the suite's cluster, made afresh, so that the
# instance's dispatcher sees only its own orders.
sub own_store {
    my ($name) = @_;
    return '' unless ($ENV{OS_TEST_LABEL} // '') eq 'pg';
    (my $db = "os_$name") =~ s/\W/_/g;
    local $ENV{PGOPTIONS} = '-c client_min_messages=warning';
    for my $sql ("DROP DATABASE IF EXISTS $db", "CREATE DATABASE $db") {
        system('psql', '-qtA', '-h', $ENV{OS_PG_SOCK}, '-p', $ENV{OS_PG_PORT}, '-U', 'postgres',
               'postgres', '-c', $sql) == 0 or die "psql: $sql failed\n";
    }
    return "DBDriver pgsql\nDBDParams \"host=$ENV{OS_PG_SOCK} port=$ENV{OS_PG_PORT} "
         . "dbname=$db user=postgres\"\n";
}

# A fresh directory for a separate instance under t/logs, its conf/local.conf holding the
# given lines. Returns the directory (for start_instance).
sub new_instance {
    my ($name, $local) = @_;
    my $var = vars()->{t_logs} . "/$name";
    system('rm', '-rf', $var);
    mkdir $var; mkdir "$var/conf";
    open my $fh, '>', "$var/conf/local.conf" or die "$var/conf/local.conf: $!";
    print $fh $local;
    close $fh;
    return $var;
}

# Posts orders from `clients` forked clients at once, each `per_client` back to back on one
# kept-alive connection to the test server's hub as source demo. `order->(c, i)` gives each
# order's (reference, payload). Returns one line per order:
# "reference status answered-reference id version problem-type" ('-' where absent).
sub parallel_posts {
    my ($clients, $per_client, $order) = @_;
    my $url = 'http://' . Apache::TestRequest::hostport() . hub_url('/orders');
    my $key = key('demo');
    my $json = JSON::PP->new->canonical;
    pipe(my $res_r, my $res_w) or die "pipe: $!";
    my @pids;
    for my $c (1 .. $clients) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $res_r;
            my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 1);
            my $out = '';
            for my $i (1 .. $per_client) {
                my ($ref, $payload) = $order->($c, $i);
                my $r = $http->post($url, { content => $json->encode($payload), headers => {
                    Authorization => "Bearer $key", 'Content-Type' => 'application/json' } });
                my $d = eval { JSON::PP::decode_json($r->{content}) } || {};
                $out .= join(' ', $ref, $r->{status}, map { $d->{$_} // '-' }
                             qw(reference id version type)) . "\n";
            }
            syswrite($res_w, $out);
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $res_w;
    my @lines = map { chomp; $_ } <$res_r>;
    waitpid($_, 0) for @pids;
    return @lines;
}

# Runs `apache2 -t` on a small config made of the given body. Returns (exit code, output).
sub configtest {
    my ($body, %env) = @_;
    my $v = vars();
    my $dir = File::Temp::tempdir("cfgXXXX", DIR => $v->{t_logs}, CLEANUP => 1);
    my $mods = '/usr/lib/apache2/modules';
    my $mpm = $ENV{OS_TEST_MPM} || 'event';
    my $so = $ENV{OS_TEST_SO} or die "OS_TEST_SO not set";
    open my $fh, '>', "$dir/httpd.conf" or die $!;
    print $fh <<"CONF";
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:1
PidFile "$dir/httpd.pid"
DefaultRuntimeDir "$dir"
ErrorLog "$dir/error_log"
LoadModule mpm_${mpm}_module $mods/mod_mpm_${mpm}.so
LoadModule authz_core_module $mods/mod_authz_core.so
CONF
    $body =~ s/\@SO\@/$so/g;
    $body =~ s/\@DIR\@/$dir/g;
    $body =~ s/\@KEYS\@/$v->{serverroot}\/conf\/keys/g;
    print $fh $body;
    close $fh;
    local @ENV{keys %env} = values %env;
    my $out = `/usr/sbin/apache2 -t -f $dir/httpd.conf 2>&1`;
    return ($? >> 8, $out);
}

# A separate instance (build/instance.sh) under $var, for tests that kill or stop its
# processes: instance($var, 'start', $port) / instance($var, 'stop') return (exit code,
# output); start_instance($var) starts it on a free port (three tries) and returns the
# exit code, the output and the port.
sub free_port {    # a port the kernel just handed out, so nothing else holds it
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die $!;
    my $p = $s->sockport;
    close $s;
    return $p;
}

sub instance {
    my ($var, @args) = @_;
    local $ENV{OS_VAR} = $var;
    # the instance runs the module and the MPM the suite runs
    local $ENV{OS_MPM} = $ENV{OS_TEST_MPM} || 'event';
    local $ENV{OS_SO} = $ENV{OS_TEST_SO} if $ENV{OS_TEST_SO};    # the ASan build under make test-asan
    _record('log', "$var/logs/error_log") if ($args[0] // '') eq 'start';
    my $inst = vars()->{top_dir} . '/build/instance.sh';
    my $out = `bash $inst @args 2>&1`;
    return ($? >> 8, $out);
}

# Instances a test file started are stopped when it ends, however it ends (a failed test
# that dies before its own stop would otherwise leave a server and its simulator running).
my %STARTED;
END {
    local $?;    # the test file's exit status is its verdict
    for my $var (keys %STARTED) {
        instance($var, 'stop') if -f "$var/run/httpd.pid";
    }
}

sub start_instance {
    my $var = shift;
    my ($rc, $out, $port);
    my $all = '';
    for my $try (1 .. 3) {
        $port = free_port();
        ($rc, $out) = instance($var, 'start', $port);
        if ($rc == 0) {
            $STARTED{$var} = 1;
            return ($rc, $out, $port);
        }
        # whatever this try left behind (a server that came up late, its simulator) goes
        # before the next, which would otherwise find it "already running"
        my (undef, $stopped) = instance($var, 'stop');
        my $log = "$var/logs/error_log";
        my $tail = -f $log ? `tail -5 $log` : '';
        $all .= "try $try on port $port:\n$out$stopped" . ($tail ? "error_log:\n$tail" : '');
    }
    return ($rc, $all, $port);
}

# The Clougistic simulator (t/sim/clougistic.js) on a free port, for one test file: its log is
# t/logs/<name>.log. `entities` is "E1:KEY1,E2:KEY2"; `args` more options (--tls-port ...;
# @FREE_PORT@ in one becomes another free port).
# Returns { pid, port, url } once it answers; stop_sim($sim) ends it.
sub start_sim {
    my (%o) = @_;
    my $name = $o{name} || 'clougistic-sim';
    my $log = vars()->{t_logs} . "/$name.log";
    my $js = vars()->{top_dir} . '/t/sim/clougistic.js';
    for (1 .. 3) {
        my $port = free_port();
        my @args = map { (my $x = $_) =~ s/\@FREE_PORT\@/free_port()/ge; $x } @{ $o{args} || [] };
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open STDOUT, '>>', $log or POSIX::_exit(127);
            open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
            $ENV{CLOUGISTIC_SIM_ENTITIES} = $o{entities};
            exec 'node', $js, '--port', $port, @args or POSIX::_exit(127);
        }
        my $http = HTTP::Tiny->new(timeout => 1);
        for (1 .. 50) {
            return { pid => $pid, port => $port, url => "http://127.0.0.1:$port", args => \@args }
                if $http->get("http://127.0.0.1:$port/_sim/stats")->{status} == 200;
            last if waitpid($pid, POSIX::WNOHANG()) == $pid;
            select(undef, undef, undef, 0.1);
        }
        kill 'TERM', $pid;
        waitpid($pid, 0);
    }
    die "the Clougistic simulator did not start; see $log\n";
}

# A call to a simulator's URL (base) with an optional JSON body; the decoded JSON answer of
# a 2xx, else undef.
my $SIM_HTTP;
sub sim_call {
    my ($base, $m, $path, $body) = @_;
    require HTTP::Tiny;
    $SIM_HTTP ||= HTTP::Tiny->new(timeout => 10);
    my $res = $SIM_HTTP->request($m, "$base$path", defined $body
        ? { headers => { 'Content-Type' => 'application/json' }, content => JSON::PP::encode_json($body) } : {});
    return $res->{status} =~ /^2/ && length $res->{content} ? JSON::PP::decode_json($res->{content}) : undef;
}

# Polls $cond every 50 ms until it is true or $secs have passed; returns its last answer.
sub wait_until {
    my ($cond, $secs) = @_;
    my $until = Time::HiRes::time() + $secs;
    while (Time::HiRes::time() < $until) {
        return 1 if $cond->();
        Time::HiRes::sleep(0.05);
    }
    return $cond->();
}

sub stop_sim {
    my $sim = shift;
    kill 'TERM', $sim->{pid};
    waitpid($sim->{pid}, 0);
    return $? >> 8;
}

sub order_payload {
    my (%over) = @_;
    my $p = {
        reference => 'T-1', source_id => 'demo', status => 0, type => 0, currency => 'EUR',
        created_at => '2026-11-20 10:00:00',
        shipping_firstname => 'Ada', shipping_lastname => 'Lovelace',
        shipping_street => 'Keizersgracht', shipping_housenumber => '12',
        shipping_postcode => '1015 CX', shipping_city => 'Amsterdam', shipping_country => 'NL',
        items => [ { sku => 'SKU-1', description => 'Widget', qty => 2, unit_price => '9.95' } ],
    };
    $p->{$_} = $over{$_} for keys %over;
    delete $p->{$_} for grep { !defined $over{$_} && exists $over{$_} } keys %over;
    return $p;
}

1;
