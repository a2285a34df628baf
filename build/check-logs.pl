#!/usr/bin/perl
# Reads every error log a run of the Apache::Test suite produced and fails (exit 1) on an
# error no test announced, and on any sign of a crash.
#   build/check-logs.pl <label> <t/logs> <t/conf/expected_errors>
#
# The logs: t/logs/error_log (the test server's), and every other *error_log under t/logs:
# the separate instances of t/store/*.t (OSTest::start_instance) and the virtual hosts that
# have a log of their own. The configtest directories (t/logs/cfgXXXX) are skipped: they hold
# no running server.
#
# What a test may announce (OSTest::expect_error_log) is scoped: t/logs/expected_errors holds
#   window <file> <offset>   the file started when t/logs/error_log was <offset> bytes long
#   expect <file> <pattern>  a line matching <pattern> (case-insensitive) is expected from it
#   log    <file> <path>     the error log of a server that file started (an instance)
# so a pattern applies to the main log's lines from its file's start to the next file's, and
# to the logs of the instances that file started: one file's expected errors never hide
# another's, and a run of one file alone sees only its own. The configuration of the suite
# announces the errors that it causes by itself (a store that cannot be opened, for a
# virtual host that tests exactly that) in t/conf/expected_errors: "<log path under t/logs>
# <pattern>", tab-separated.
#
# Crash signs are never excused: a child killed by a signal httpd reports ("exit signal"),
# AddressSanitizer and UBSan reports, a segfault, a core dump.
use strict;
use warnings;
use File::Find ();
use Cwd ();

my ($label, $logs, $conf_expected) = @ARGV;
die "usage: $0 label t/logs t/conf/expected_errors\n" unless defined $logs;

my $ERROR = qr/\[(?:\w+:)?(?:emerg|alert|crit|error)\]/;
my $CRASH = qr/exit signal|AddressSanitizer|LeakSanitizer|runtime error:|Segmentation fault|dumped core|possible coredump/i;
my $fail = 0;

sub compile {    # a pattern that does not compile, or matches every line, is itself a failure
    my ($pat, $where) = @_;
    if ($pat !~ /\S/) { print STDERR "check-logs [$label]: empty pattern in $where\n"; $fail = 1; return }
    my $re = eval { qr/$pat/i };
    if (!$re) { print STDERR "check-logs [$label]: bad pattern '$pat' in $where: $@"; $fail = 1; return }
    if ('' =~ $re) { print STDERR "check-logs [$label]: pattern '$pat' in $where matches anything\n"; $fail = 1; return }
    return $re;
}

my (@windows, %expect, %owner);
if (open my $fh, '<', "$logs/expected_errors") {
    while (my $l = <$fh>) {
        chomp $l;
        my ($kind, $file, $arg) = split /\t/, $l, 3;
        next unless defined $arg;
        if ($kind eq 'window') { push @windows, [$arg, $file] }
        elsif ($kind eq 'expect') { my $re = compile($arg, "$file"); push @{ $expect{$file} }, $re if $re }
        elsif ($kind eq 'log') { $owner{Cwd::abs_path($arg) // $arg} = $file }
    }
}
@windows = sort { $a->[0] <=> $b->[0] } @windows;

my %conf;    # log path under t/logs => patterns
if (open my $fh, '<', $conf_expected) {
    while (my $l = <$fh>) {
        next if $l =~ /^\s*(#|$)/;
        chomp $l;
        my ($log, $pat) = split /\t+/, $l, 2;
        my $re = compile($pat // '', "$conf_expected: $l");
        push @{ $conf{$log} }, $re if $re;
    }
}

my @files;
File::Find::find({ no_chdir => 1, wanted => sub {
    if (-d $_ && m{/cfg\w{4}$}) { $File::Find::prune = 1; return }
    push @files, $_ if -f $_ && m{error_log$};
} }, $logs);

my $main = "$logs/error_log";
unless (-f $main) {
    print STDERR "check-logs [$label]: FAILED: $main does not exist\n";
    exit 1;
}

for my $f (sort @files) {
    (my $rel = $f) =~ s{^\Q$logs\E/}{};
    open my $fh, '<', $f or die "$f: $!";
    my (@bad, $w);
    my $file_of = sub { undef };
    if ($f eq $main) {
        $w = -1;
        $file_of = sub {    # the test file whose window holds this byte offset
            my $off = shift;
            $w++ while $w + 1 < @windows && $windows[$w + 1][0] <= $off;
            return $w >= 0 ? $windows[$w][1] : undef;
        };
    }
    else {
        my $own = $owner{Cwd::abs_path($f) // $f};
        $file_of = sub { $own };
    }
    my $off = 0;
    while (my $l = <$fh>) {
        my $at = $off;
        $off += length $l;
        if ($l =~ $CRASH) { push @bad, $l; next }
        next unless $l =~ $ERROR;
        my $t = $file_of->($at);
        next if grep { $l =~ $_ } @{ $conf{$rel} || [] }, ($t ? @{ $expect{$t} || [] } : ());
        push @bad, ($t ? "($t) " : '(no test running) ') . $l;
    }
    next unless @bad;
    $fail = 1;
    print STDERR "check-logs [$label]: unexpected errors in $f:\n";
    print STDERR "  $_" for @bad[0 .. ($#bad < 19 ? $#bad : 19)];
    print STDERR "  ... and " . (@bad - 20) . " more\n" if @bad > 20;
}
exit $fail;
